//! # jiesu-notification — 通知
//!
//! Tells people what they must hear of: the citizen that their request was received and under
//! which number (`case.received`), the handling unit that a case is now theirs
//! (`case.dispatched`), the supervisors that a time limit was breached (`sla.breached`).
//!
//! Handling an event only renders the district's template and records one pending delivery per
//! sink (the log always, a webhook when configured) in the consumer's transaction. A delivery
//! worker sends them afterwards, outside any transaction, and retries failures on a schedule
//! kept in the database (business retries, not broker redeliveries). The citizen's phone number
//! is asked from intake (`GetContact`) at the moment of sending, put in the webhook's body and
//! nowhere else: the database and the logs only ever see it masked.

pub mod api;
pub mod consume;
pub mod domain;
mod error;
pub mod service;
pub mod store;
pub mod worker;

use std::{sync::Arc, time::Duration};

use jiesu_kit::{
    DistrictConfig,
    clock::SharedClock,
    host::{Host, Running},
};
use serde::Deserialize;
use tokio::sync::Notify;

use crate::domain::RetryPolicy;
pub use error::Error;
use jiesu_reference::Organisation;
pub use service::Notifier;

/// The service's name: its config section, durable consumer and database.
pub const SERVICE: &str = "notification";

/// `[notification]` of the district file.
#[derive(Clone, Deserialize)]
pub struct Settings {
    /// Intake's gRPC address (`http://127.0.0.1:50051`), asked for a citizen's phone number at
    /// delivery time.
    #[serde(default)]
    pub intake_url: String,
    /// The unit that hears of breached limits (督办), by id in the organisation file.
    #[serde(default = "default_supervisor")]
    pub supervisor: String,
    /// Deliveries are POSTed as JSON here when set; empty turns the webhook sink off. Plain
    /// `http://` only (put a local gateway or proxy in front of an HTTPS endpoint).
    #[serde(default)]
    pub webhook_url: String,
    /// Attempts per delivery, the first included, before it is marked failed.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait after each failed attempt ("5s", "30s", …); the last one repeats.
    #[serde(default = "default_backoff", deserialize_with = "jiesu_kit::time::de_durations")]
    pub retry_backoff: Vec<Duration>,
    #[serde(default)]
    pub templates: Templates,
}

fn default_supervisor() -> String {
    "centre".into()
}

fn default_max_attempts() -> u32 {
    8
}

fn default_backoff() -> Vec<Duration> {
    [5, 30, 120, 600, 3600].into_iter().map(Duration::from_secs).collect()
}

/// `[notification.templates]`: the texts people receive (Chinese), with `{placeholders}`:
/// `{district}`, `{case_no}`, `{title}`, `{unit_name}`, `{milestone}`, `{deadline}`, `{text}` (the
/// reason of a return, the explanation of an unreasonable request).
/// An empty template turns that notification off.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Templates {
    /// To the citizen, on `case.received` (受理告知).
    pub case_received: String,
    /// To the handling unit, on `case.dispatched` (派单通知).
    pub case_dispatched: String,
    /// To the supervisor, on `sla.breached` (超时警报).
    pub sla_breached: String,
    /// To the answerable unit, on `sla.warning` (预警黄): the limit is near.
    pub sla_warning_unit: String,
    /// To the answerable unit, on `sla.breached` (警报红): the limit has passed.
    pub sla_breached_unit: String,
    /// To an assisting unit called in, on `case.assist_added` (协办通知).
    pub assist_added: String,
    /// To the supervisor (the centre's desk), on `case.returned` (退回待审).
    pub case_returned: String,
    /// To the leader, on `case.escalated` (包案通知).
    pub case_escalated: String,
    /// To the citizen, when the centre closes a request as unreasonable (不合理诉求说明).
    pub closed_unreasonable: String,
}

impl Default for Templates {
    fn default() -> Self {
        Self {
            case_received: "【{district}】您反映的诉求已受理，受理编号{case_no}。我们将按时限办理并答复您，请保持电话畅通。".into(),
            case_dispatched: "【派单】{unit_name}：新诉求{case_no}（{title}）已派至你单位，请及时签收办理。".into(),
            sla_breached: "【超时警报】诉求{case_no}的“{milestone}”环节已超过时限（{deadline}），承办单位：{unit_name}。请督办。".into(),
            sla_warning_unit: "【预警】{unit_name}：诉求{case_no}的“{milestone}”环节将于{deadline}到期，请抓紧办理。".into(),
            sla_breached_unit: "【超时】{unit_name}：诉求{case_no}的“{milestone}”环节已超过时限（{deadline}），请立即办理并说明原因。"
                .into(),
            assist_added: "【协办】{unit_name}：诉求{case_no}需你单位协办，请于{deadline}前答复主办单位。".into(),
            case_returned: "【退回待审】{unit_name}申请退回诉求{case_no}：{text}。请审核。".into(),
            case_escalated: "【领导包案】诉求{case_no}（承办单位：{unit_name}）已提级由您包案：{text}".into(),
            closed_unreasonable: "【{district}】关于您反映的诉求（受理编号{case_no}）：{text}".into(),
        }
    }
}

/// The webhook URL may carry a gateway's key (user info, query string): never shown whole.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("intake_url", &self.intake_url)
            .field("supervisor", &self.supervisor)
            .field("webhook_url", &redact_url(&self.webhook_url))
            .field("max_attempts", &self.max_attempts)
            .field("retry_backoff", &self.retry_backoff)
            .field("templates", &self.templates)
            .finish()
    }
}

/// A URL without its user info and query string, for messages and `Debug`.
fn redact_url(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let mut out = if scheme.is_empty() { host.to_string() } else { format!("{scheme}://{host}") };
    if !path.is_empty() {
        out.push('/');
        out.push_str(path);
    }
    if url.contains('?') || authority.contains('@') {
        out.push_str(" (credentials hidden)");
    }
    out
}

impl Settings {
    /// Every problem with the settings, in one message.
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if self.intake_url.trim().is_empty() {
            problems.push("notification.intake_url is required: intake's gRPC address, e.g. \"http://127.0.0.1:50051\"".to_string());
        } else if !(self.intake_url.starts_with("http://") || self.intake_url.starts_with("https://")) {
            problems.push(format!("notification.intake_url {:?} must start with http:// or https://", self.intake_url));
        }
        let hook = self.webhook_url.trim();
        let shown = redact_url(hook);
        if hook.starts_with("https://") {
            problems.push(format!(
                "notification.webhook_url {shown:?}: HTTPS is not supported by this build (no TLS); \
                 use an http:// URL, e.g. a local gateway or proxy in front of the HTTPS endpoint"
            ));
        } else if !hook.is_empty() && !hook.starts_with("http://") {
            problems.push(format!("notification.webhook_url {shown:?} must be empty or an http:// URL"));
        }
        if self.supervisor.trim().is_empty() {
            problems.push("notification.supervisor must name the unit that hears of breached limits".to_string());
        }
        if self.max_attempts < 1 {
            problems.push("notification.max_attempts must be at least 1".to_string());
        }
        if self.retry_backoff.is_empty() {
            problems.push("notification.retry_backoff must list at least one duration, e.g. [\"5s\", \"30s\"]".to_string());
        }
        if problems.is_empty() { Ok(()) } else { Err(Error::Settings(problems.join("; "))) }
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { max_attempts: self.max_attempts, backoff: self.retry_backoff.clone() }
    }

    /// Whether deliveries also go to the webhook.
    pub fn webhook_enabled(&self) -> bool {
        !self.webhook_url.trim().is_empty()
    }
}

pub type Config = jiesu_kit::ServiceConfig<Settings>;

/// Starts notification: its consumer, its delivery worker and its gRPC API.
pub async fn start(district: &DistrictConfig, clock: SharedClock) -> Result<Running, Error> {
    let config: Config = district.service(SERVICE)?;
    let settings = config.settings.clone();
    settings.validate()?;
    let organisation = match config.reference::<Organisation>("organisation")? {
        Some(org) => org,
        None => {
            tracing::warn!("no [reference] organisation file: units are named by their ids");
            Organisation::default()
        }
    };
    let units = Arc::new(organisation);
    if !units.units.is_empty() && !units.contains(&settings.supervisor) {
        tracing::warn!(supervisor = %settings.supervisor, "notification.supervisor is not a unit of the organisation file");
    }
    for (name, text) in [
        ("case_received", &settings.templates.case_received),
        ("case_dispatched", &settings.templates.case_dispatched),
        ("sla_breached", &settings.templates.sla_breached),
    ] {
        let unknown = domain::unknown_placeholders(text);
        if !unknown.is_empty() {
            tracing::warn!(template = name, ?unknown, "template has placeholders that are never filled; they stay as written");
        }
    }
    let mut host = Host::start(&config, &jiesu_kit::migrations!(), clock.clone()).await?;
    let intake = worker::intake_client(&settings.intake_url, host.tls.as_ref(), host.service_credentials())?;
    let wake = Arc::new(Notify::new());
    let notifier = Arc::new(Notifier {
        settings: settings.clone(),
        district_name: config.district.name.clone(),
        timezone: config.timezone(),
        units: units.clone(),
    });
    host.consume(Arc::new(consume::Events { notifier, wake: wake.clone() }));

    let metrics = worker::DeliveryMetrics::default();
    metrics.register(&host.metrics);
    let worker = worker::Worker::new(host.db.clone(), clock, intake, &settings, wake, metrics)?;
    host.spawn("delivery worker", |cancel| worker.run(cancel));

    let webhook = match settings.webhook_url.trim() {
        "" => None,
        url => Some((worker::webhook_client()?, url.to_string())),
    };
    let api = api::NotificationApi {
        db: host.db.clone(),
        units,
        webhook,
        district_name: config.district.name.clone(),
        codes_sent: Default::default(),
    };
    Ok(host.serve(jiesu_proto::v1::notification_service_server::NotificationServiceServer::new(api))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Settings {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/districts/demo/jiesu.toml");
        let district = DistrictConfig::load(path).unwrap();
        district.service::<Settings>(SERVICE).unwrap().settings
    }

    #[test]
    fn the_demo_settings_are_read_and_valid() {
        let s = demo();
        assert_eq!(s.intake_url, "https://127.0.0.1:50051");
        assert_eq!(s.supervisor, "centre");
        assert!(!s.webhook_enabled());
        assert_eq!(s.max_attempts, 8);
        assert_eq!(s.retry_backoff.first(), Some(&Duration::from_secs(5)));
        assert_eq!(s.retry_backoff.last(), Some(&Duration::from_secs(3600)));
        assert!(s.templates.case_received.contains("{case_no}"));
        s.validate().unwrap();
    }

    #[test]
    fn webhook_credentials_are_never_shown() {
        assert_eq!(redact_url("http://gw.local:8080/sms"), "http://gw.local:8080/sms");
        assert_eq!(redact_url("http://gw.local/sms?key=s3cret"), "http://gw.local/sms (credentials hidden)");
        assert_eq!(redact_url("http://user:s3cret@gw.local/sms"), "http://gw.local/sms (credentials hidden)");
        let mut s = demo();
        s.webhook_url = "https://user:s3cret@gw.example.org/send?token=s3cret".into();
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(!s.validate().unwrap_err().to_string().contains("s3cret"));
    }

    #[test]
    fn every_settings_problem_is_reported() {
        let mut s = demo();
        s.intake_url = String::new();
        s.webhook_url = "https://sms.example.org/send".into();
        s.max_attempts = 0;
        s.retry_backoff.clear();
        let err = s.validate().unwrap_err().to_string();
        for needle in ["intake_url", "HTTPS is not supported", "max_attempts", "retry_backoff"] {
            assert!(err.contains(needle), "{needle} missing from: {err}");
        }
    }
}
