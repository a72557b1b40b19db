//! `jiesu-console account add`: an account from the command line, checked as the administrator's
//! page checks one, against the district's organisation file.

use std::{io::BufRead, path::PathBuf, process::ExitCode};

use jiesu_kit::DistrictConfig;

use crate::{
    Settings,
    accounts::{self, Draft, Known},
    store::Store,
};

const USAGE: &str = "usage: jiesu-console account add [--config PATH] --username NAME --name 姓名 --role ROLE [--role ROLE…] [--unit UNIT] [--leader LEADER]
       the password comes from $JIESU_CONSOLE_PASSWORD, else the first line of standard input;
       roles: centre_agent centre_supervisor unit_handler unit_head leader revisit_agent auditor administrator";

fn fail(problem: &str) -> ExitCode {
    eprintln!("jiesu-console: {problem}\n{USAGE}");
    ExitCode::from(2)
}

/// `account …`
pub fn account(args: &[String]) -> ExitCode {
    if args.first().map(String::as_str) != Some("add") {
        return fail("the account command knows `add`");
    }
    let mut path = std::env::var("JIESU_CONFIG").map(PathBuf::from).unwrap_or_else(|_| jiesu_kit::cli::DEFAULT_CONFIG.into());
    let mut draft = Draft::default();
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else { return fail(&format!("{flag} needs a value")) };
        match flag.as_str() {
            "--config" | "-c" => path = value.into(),
            "--username" => draft.username = value.clone(),
            "--name" => draft.name = value.clone(),
            "--role" => draft.roles.push(value.clone()),
            "--unit" => draft.unit = value.clone(),
            "--leader" => draft.leader = value.clone(),
            other => return fail(&format!("unknown argument {other:?}")),
        }
    }
    draft.password = match std::env::var("JIESU_CONSOLE_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            if std::io::stdin().lock().read_line(&mut line).is_err() {
                return fail("cannot read the password from standard input");
            }
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    let district = match DistrictConfig::load(&path) {
        Ok(d) => d,
        Err(e) => return fail(&e.to_string()),
    };
    let known = match known(&district) {
        Ok(k) => k,
        Err(e) => return fail(&e),
    };
    let checked = match accounts::check_draft(&draft, &known) {
        Ok(c) => c,
        Err(errors) => {
            let text: Vec<String> = errors.iter().map(|(field, why)| format!("{field}: {why}")).collect();
            return fail(&text.join("; "));
        }
    };
    let settings: Settings = match district.part(crate::NAME) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    let outcome = runtime.block_on(async {
        let store = Store::open(&settings.database_url).await.map_err(|e| e.to_string())?;
        let hash = match &checked.password {
            Some(p) => Some(accounts::hash_password(p).map_err(|e| e.to_string())?),
            None => None,
        };
        let now = chrono::Utc::now().timestamp_millis();
        let created = store.create_account(&checked, hash.as_deref(), now).await.map_err(|e| e.to_string())?;
        if created {
            let _ = store.audit(now, "(command line)", "account_created", &checked.username, "jiesu-console account add", "").await;
        }
        store.close().await;
        Ok::<bool, String>(created)
    });
    match outcome {
        Ok(true) => {
            println!("created account {} ({})", checked.username, checked.roles.iter().map(|r| r.name_zh()).collect::<Vec<_>>().join("、"));
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("jiesu-console: the username {} is taken; nothing changed", checked.username);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("jiesu-console: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The units and leaders of the district's organisation file (`[reference] organisation`).
fn known(district: &DistrictConfig) -> Result<Known, String> {
    let reference: toml::Table = district.part("reference").map_err(|e| e.to_string())?;
    let Some(file) = reference.get("organisation").and_then(|v| v.as_str()) else { return Ok(Known::default()) };
    let path = district.base_dir().join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let org: jiesu_reference::Organisation = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Known { units: org.units.iter().map(|u| u.id.clone()).collect(), leaders: org.leaders.iter().map(|l| l.id.clone()).collect() })
}
