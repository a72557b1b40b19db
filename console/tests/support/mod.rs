//! A district for the console's tests: the six services in-process as production runs them
//! (tokens on every call, mutual TLS, a real nats-server), and the console in front of them with
//! its own SQLite database and the accounts a test asks for.

#![allow(dead_code)]

use std::time::Duration;

use jiesu_console::{Console, accounts};
use jiesu_integration_tests::{Backend, District};
use jiesu_kit::auth::Role;
use jiesu_proto::v1::{CaseRef, CaseView, Citizen, Location, Submission, SubmitRequest, case_ref::Ref};

/// Every test account's password.
pub const PASSWORD: &str = "qiu-tian-2026!";

pub struct Desk {
    pub district: District,
    pub console: Console,
    _dir: tempfile::TempDir,
}

impl Desk {
    pub async fn start() -> Desk {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut jiesu_kit::DistrictConfig)) -> Desk {
        let district = District::start_secured(Backend::Sqlite).await.expect("the district starts");
        let dir = tempfile::tempdir().expect("a directory for the console");
        let mut config = district.console_config(dir.path());
        tweak(&mut config);
        let console = jiesu_console::start(&config).await.expect("the console starts");
        Desk { district, console, _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.console.addr)
    }

    /// An account with [`PASSWORD`].
    pub async fn account(&self, username: &str, name: &str, roles: &[Role], unit: Option<&str>, leader: Option<&str>) {
        let checked = accounts::Checked {
            username: username.into(),
            name: name.into(),
            roles: roles.to_vec(),
            unit: unit.map(str::to_string),
            leader: leader.map(str::to_string),
            password: Some(PASSWORD.into()),
        };
        let hash = accounts::hash_password(PASSWORD).unwrap();
        assert!(self.console.store.create_account(&checked, Some(&hash), 0).await.unwrap(), "{username} is new");
    }

    /// A request as the hotline takes it, entered by a centre agent over gRPC.
    pub async fn submit(&self, channel_ref: &str, title: &str, description: &str, street: &str, community: &str) -> String {
        let request = SubmitRequest {
            submission: Some(Submission {
                channel: "hotline".into(),
                channel_ref: channel_ref.into(),
                citizen: Some(Citizen { name: "张女士".into(), phone: "13800138000".into(), anonymous: false }),
                title: title.into(),
                description: description.into(),
                location: Some(Location { street: street.into(), community: community.into(), ..Default::default() }),
                ..Default::default()
            }),
        };
        let receipt = self.district.intake().await.submit(self.district.by(Role::CentreAgent, None, request)).await.unwrap().into_inner();
        receipt.case_no
    }

    /// The case as dispatch has it, once `ready` says so.
    pub async fn wait_case(&self, case_no: &str, what: &str, ready: impl Fn(&CaseView) -> bool) -> CaseView {
        let r = CaseRef { r#ref: Some(Ref::CaseNo(case_no.into())) };
        jiesu_testkit::eventually(what, Duration::from_secs(30), || {
            let r = r.clone();
            let ready = &ready;
            async move {
                let mut d = self.district.dispatch().await;
                let case = d.get_case(self.district.by(Role::CentreAgent, None, r)).await.ok()?.into_inner();
                ready(&case).then_some(case)
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A browser-like HTTP client: keeps cookies, does not follow redirects.
pub fn client() -> reqwest::Client {
    jiesu_kit::tls::install_crypto_provider();
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The value of `name="…" value="…"` in a page.
pub fn field(page: &str, name: &str) -> String {
    let start = format!("name=\"{name}\" value=\"");
    let from = page.find(&start).unwrap_or_else(|| panic!("no field {name} in:\n{page}")) + start.len();
    let to = page[from..].find('"').unwrap() + from;
    page[from..to].to_string()
}

/// Signs in over HTTP; the client keeps the session cookie.
pub async fn sign_in(desk: &Desk, http: &reqwest::Client, username: &str, password: &str) -> reqwest::Response {
    let page = http.get(desk.url("/signin")).send().await.unwrap().text().await.unwrap();
    let csrf = field(&page, "csrf");
    http.post(desk.url("/signin"))
        .form(&[("csrf", csrf.as_str()), ("next", "/"), ("username", username), ("password", password)])
        .send()
        .await
        .unwrap()
}
