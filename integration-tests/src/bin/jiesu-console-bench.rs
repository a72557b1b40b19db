//! `jiesu-console-bench` — how fast the console's pages answer with thousands of open cases.
//!
//! Starts a whole district in this process as production runs it (tokens, mutual TLS, a real
//! nats-server, SQLite files or PostgreSQL databases), puts N cases through the pipeline and
//! leaves them open, starts the console, signs in a centre agent and a unit handler over HTTP,
//! and times R loads of each page: the centre's desk (six queues), a unit's desk (three), a case
//! page (five services asked at once) and the dashboard. Prints the median and p90 of each. Run
//! it in release mode:
//!
//! ```text
//! cargo build --release -p jiesu-integration-tests --bin jiesu-console-bench
//! target/release/jiesu-console-bench --cases 3000 --loads 30 [--backend postgres]
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use jiesu_integration_tests::{Backend, District};
use jiesu_kit::auth::Role;
use jiesu_proto::v1::{Citizen, CountCasesRequest, Location, Submission, SubmitRequest};

const TEXTS: [(&str, &str); 6] = [
    ("小区门口私装地锁", "小区门口有人私装地锁，占用公共车位，希望尽快拆除。"),
    ("夜间施工噪音", "工地夜间施工噪音太大，晚上十一点还在打桩，影响休息。"),
    ("路灯不亮", "小区旁边道路的路灯坏了一个多月，晚上出行不安全。"),
    ("垃圾清运不及时", "小区垃圾桶满了好几天没人清运，臭味很大。"),
    ("占道经营", "菜市场门口流动摊贩占道经营，车辆无法通行。"),
    ("孩子入学学位问题", "孩子今年上一年级，划片学校说学位已满不给办理入学。"),
];

struct Args {
    cases: usize,
    loads: usize,
    backend: Backend,
}

fn args() -> Result<Args> {
    let mut a = Args { cases: 2000, loads: 30, backend: Backend::Sqlite };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--cases" => a.cases = value()?.parse()?,
            "--loads" => a.loads = value()?.parse()?,
            "--backend" => {
                a.backend = match value()?.as_str() {
                    "sqlite" => Backend::Sqlite,
                    "postgres" => Backend::Postgres,
                    other => bail!("--backend is sqlite or postgres, not {other}"),
                }
            }
            "--help" | "-h" => {
                println!("jiesu-console-bench [--cases N] [--loads R] [--backend sqlite|postgres]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Signs in over HTTP as the console's sign-in form is used.
async fn sign_in(http: &reqwest::Client, base: &str, username: &str, password: &str) -> Result<()> {
    let page = http.get(format!("{base}/signin")).send().await?.text().await?;
    let start = page.find("name=\"csrf\" value=\"").context("the sign-in form")? + 19;
    let csrf = &page[start..start + page[start..].find('"').context("the token")?];
    let r = http
        .post(format!("{base}/signin"))
        .form(&[("csrf", csrf), ("next", "/"), ("username", username), ("password", password)])
        .send()
        .await?;
    if r.status() != reqwest::StatusCode::SEE_OTHER {
        bail!("{username} could not sign in: {}", r.status());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let d = District::start_secured(a.backend).await?;
    let dir = tempfile::tempdir()?;
    let config = d.console_config(dir.path());

    // N open cases, through the whole pipeline.
    let started = Instant::now();
    let mut in_flight = futures::stream::FuturesUnordered::new();
    use futures::StreamExt;
    for i in 0..a.cases {
        let (title, description) = TEXTS[i % TEXTS.len()];
        let s = Submission {
            channel: "hotline".into(),
            channel_ref: format!("console-bench-{i}"),
            citizen: Some(Citizen { name: "市民".into(), phone: format!("139{i:08}"), anonymous: false }),
            title: title.into(),
            description: description.into(),
            location: Some(Location { street: if i % 2 == 0 { "st-dongmen" } else { "st-xinan" }.into(), ..Default::default() }),
            ..Default::default()
        };
        let mut intake = d.intake().await;
        let request = d.by(Role::CentreAgent, None, SubmitRequest { submission: Some(s) });
        in_flight.push(async move { intake.submit(request).await.map(|r| r.into_inner().case_no) });
        if in_flight.len() >= 32 {
            in_flight.next().await.context("a submission")??;
        }
    }
    let mut last = String::new();
    while let Some(r) = in_flight.next().await {
        last = r?;
    }
    let mut dispatch = d.dispatch().await;
    loop {
        let counts = dispatch.count_cases(d.by(Role::CentreAgent, None, CountCasesRequest::default())).await?.into_inner();
        let held: u32 = counts.counts.iter().map(|c| c.count).sum::<u32>() + counts.manual_queue;
        if held as usize >= a.cases {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("{} open cases in dispatch after {:.1} s", a.cases, started.elapsed().as_secs_f64());

    let console = jiesu_console::start(&config).await?;
    let password = "bench-password-2026";
    let hash = jiesu_console::accounts::hash_password(password)?;
    for (username, roles, unit) in [("agent", vec![Role::CentreAgent], None), ("dongmen", vec![Role::UnitHandler], Some("st-dongmen"))] {
        let account = jiesu_console::accounts::Checked {
            username: username.into(),
            name: username.into(),
            roles,
            unit: unit.map(str::to_string),
            leader: None,
            password: None,
        };
        console.store.create_account(&account, Some(&hash), 0).await?;
    }
    let base = format!("http://{}", console.addr);
    let agent = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
    let unit = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
    sign_in(&agent, &base, "agent", password).await?;
    sign_in(&unit, &base, "dongmen", password).await?;

    let pages: [(&str, &reqwest::Client, String); 4] = [
        ("centre desk (6 queues)", &agent, format!("{base}/")),
        ("unit desk (3 queues)", &unit, format!("{base}/")),
        ("case page", &agent, format!("{base}/case/{last}")),
        ("dashboard (today)", &agent, format!("{base}/dashboard")),
    ];
    println!("{:<24} {:>10} {:>10} {:>10}", "page", "median ms", "p90 ms", "bytes");
    for (name, client, url) in pages {
        // One load to warm the connections.
        client.get(&url).send().await?.bytes().await?;
        let mut times = Vec::with_capacity(a.loads);
        let mut bytes = 0;
        for _ in 0..a.loads {
            let t = Instant::now();
            let r = client.get(&url).send().await?;
            if r.status() != reqwest::StatusCode::OK {
                bail!("{name}: {}", r.status());
            }
            bytes = r.bytes().await?.len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!("{name:<24} {:>10.1} {:>10.1} {bytes:>10}", percentile(&times, 0.5), percentile(&times, 0.9));
    }
    console.shutdown().await;
    d.shutdown().await;
    Ok(())
}
