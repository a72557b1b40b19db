//! Notification rules (通知规则), without I/O: rendering a template, masking a phone number, the
//! retry schedule of a failed delivery, and what the case timeline says about deliveries.

use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};

/// The placeholders templates may use. Any other `{name}` is left in the text as written.
pub const PLACEHOLDERS: [&str; 7] = ["district", "case_no", "title", "unit_name", "milestone", "deadline", "text"];

/// Fills `{name}` placeholders from `vars`. A placeholder without a value — unknown, or not known
/// for this event — stays as written, so a template mistake is visible instead of silently empty.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        let name = &after[..name_len];
        let closed = after[name_len..].starts_with('}');
        match vars.iter().find(|(k, _)| *k == name) {
            Some((_, value)) if closed && !name.is_empty() => {
                out.push_str(value);
                rest = &after[name_len + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `{names}` of a template that are not [`PLACEHOLDERS`] (checked at start-up, to warn).
pub fn unknown_placeholders(template: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let name_len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        let name = &after[..name_len];
        if !name.is_empty() && after[name_len..].starts_with('}') && !PLACEHOLDERS.contains(&name) {
            unknown.push(name.to_string());
        }
        rest = after;
    }
    unknown
}

/// A deadline as people in the district read it: "2026-11-23 10:10", local time.
pub fn local_minute(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// Masks a phone number for storage and logs: the first three and last four digits stay
/// (138****8000, 010-****5678); a number too short to mask partly is masked entirely.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.trim().chars().collect();
    if chars.len() < 7 {
        return "*".repeat(chars.len());
    }
    let tail = chars.len() - 4;
    chars.iter().enumerate().map(|(i, &c)| if i < 3 || i >= tail || c == '-' { c } else { '*' }).collect()
}

/// A citizen's phone number, held only for the moment of a delivery. Its `Debug` is redacted and
/// it has no `Display`, so it cannot slip into a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// `None` for an empty number (the citizen left none).
    pub fn new(number: impl Into<String>) -> Option<Self> {
        let n = number.into().trim().to_string();
        (!n.is_empty()).then_some(Self(n))
    }

    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }

    /// The full number, for the one place that needs it: the body sent to the SMS gateway.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

/// Who a delivery is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipientKind {
    /// The citizen who filed the case (市民), reached by phone.
    Citizen,
    /// The handling unit (承办单位) the case was dispatched to.
    Unit,
    /// The supervisors (督办人员) who chase breached limits and review returns.
    Supervisor,
    /// A district leader a case is escalated to (包案领导).
    Leader,
}

impl RecipientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Citizen => "citizen",
            Self::Unit => "unit",
            Self::Supervisor => "supervisor",
            Self::Leader => "leader",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Citizen, Self::Unit, Self::Supervisor, Self::Leader].into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a delivery goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// The service's log: always on, so every notification is visible somewhere.
    Log,
    /// An HTTP endpoint (an SMS gateway, the units' work app…), when configured.
    Webhook,
}

impl Sink {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Log, Self::Webhook].into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Sent,
    /// Given up: out of attempts, or a failure no retry can fix.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Sent, Self::Failed].into_iter().find(|k| k.as_str() == s)
    }
}

/// Business retries of a delivery (in the database, not broker redeliveries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Wait after the n-th failed attempt; the last entry repeats.
    pub backoff: Vec<Duration>,
}

impl RetryPolicy {
    /// After `attempts` attempts of which the last failed: how long to wait before the next, or
    /// `None` to give up.
    pub fn delay_after(&self, attempts: u32) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let i = (attempts.max(1) - 1) as usize;
        Some(self.backoff.get(i).or(self.backoff.last()).copied().unwrap_or(Duration::from_secs(60)))
    }
}

/// What the timeline needs to know of one delivery row.
#[derive(Debug, Clone)]
pub struct DeliveryFacts {
    pub event_id: String,
    pub recipient_kind: RecipientKind,
    /// For a unit: its name, already looked up.
    pub recipient_name: String,
    pub case_no: String,
    /// Which notification it is (`case_dispatched`, `assist_added`, …).
    pub template: String,
    pub sink: Sink,
    pub status: Status,
    pub attempts: u32,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// One line of the case timeline (办理轨迹).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineItem {
    pub at: i64,
    /// `citizen_notified`, `unit_notified`, `supervisor_alerted`.
    pub event: &'static str,
    pub detail: String,
}

/// One timeline line per notification (an event to a recipient), not per sink: when a webhook is
/// configured its status is what the recipient really got; the log sink stands for itself
/// otherwise. Ordered by time.
pub fn timeline(deliveries: &[DeliveryFacts]) -> Vec<TimelineItem> {
    let mut chosen: Vec<&DeliveryFacts> = Vec::new();
    for d in deliveries {
        match chosen.iter_mut().find(|c| c.event_id == d.event_id && c.recipient_kind == d.recipient_kind) {
            Some(c) if d.sink == Sink::Webhook => *c = d,
            Some(_) => {}
            None => chosen.push(d),
        }
    }
    let mut items: Vec<TimelineItem> = chosen
        .into_iter()
        .map(|d| {
            let (event, action) = match (d.recipient_kind, d.template.as_str()) {
                (RecipientKind::Citizen, "closed_unreasonable") => ("citizen_notified", "短信向市民说明不合理诉求的处理".to_string()),
                (RecipientKind::Citizen, _) => ("citizen_notified", format!("短信告知市民受理编号{}", d.case_no)),
                (RecipientKind::Unit, "assist_added") => ("unit_notified", format!("通知协办单位{}", d.recipient_name)),
                (RecipientKind::Unit, "sla_warning_unit") => ("unit_warned", format!("向{}发送时限预警", d.recipient_name)),
                (RecipientKind::Unit, "sla_breached_unit") => ("unit_alerted", format!("向{}发送超时警报", d.recipient_name)),
                (RecipientKind::Unit, _) => ("unit_notified", format!("通知承办单位{}", d.recipient_name)),
                (RecipientKind::Supervisor, "case_returned") => ("supervisor_alerted", "通知中心审核退回".to_string()),
                (RecipientKind::Supervisor, _) => ("supervisor_alerted", "向督办人员发送超时警报".to_string()),
                (RecipientKind::Leader, _) => ("leader_notified", format!("通知包案领导{}", d.recipient_name)),
            };
            let detail = match d.status {
                Status::Sent => format!("已{action}"),
                Status::Pending if d.attempts == 0 => format!("{action}：待发送"),
                Status::Pending => format!("{action}：待重试（已尝试{}次）", d.attempts),
                Status::Failed => format!("{action}：发送失败（已尝试{}次）", d.attempts),
            };
            TimelineItem { at: d.sent_at.unwrap_or(d.created_at), event, detail }
        })
        .collect();
    items.sort_by_key(|i| i.at);
    items
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        let vars = [
            ("district", "示范区"),
            ("case_no", "DM2026112300007"),
            ("title", "油烟扰民"),
            ("unit_name", "东门街道"),
            ("milestone", "签收"),
            ("deadline", "2026-11-23 10:10"),
            ("text", "属于物业管理范围"),
        ];
        let t = "{district}|{case_no}|{title}|{unit_name}|{milestone}|{deadline}|{text}";
        assert_eq!(render(t, &vars), "示范区|DM2026112300007|油烟扰民|东门街道|签收|2026-11-23 10:10|属于物业管理范围");
        for name in PLACEHOLDERS {
            assert!(vars.iter().any(|(k, _)| *k == name), "test covers {name}");
        }
    }

    #[test]
    fn demo_templates_render() {
        let t = "【{district}】您反映的诉求已受理，受理编号{case_no}。";
        assert_eq!(render(t, &[("district", "示范区"), ("case_no", "DM1")]), "【示范区】您反映的诉求已受理，受理编号DM1。");
    }

    #[test]
    fn unknown_or_unfilled_placeholders_stay_as_written() {
        assert_eq!(render("{case_no}{phone}", &[("case_no", "DM1")]), "DM1{phone}");
        assert_eq!(render("单位：{unit_name}", &[("case_no", "DM1")]), "单位：{unit_name}");
    }

    #[test]
    fn stray_braces_are_text() {
        let vars = [("case_no", "DM1")];
        assert_eq!(render("{", &vars), "{");
        assert_eq!(render("}{", &vars), "}{");
        assert_eq!(render("{{case_no}}", &vars), "{DM1}");
        assert_eq!(render("{case_no", &vars), "{case_no");
        assert_eq!(render("{}", &vars), "{}");
        assert_eq!(render("{编号}{case_no}", &vars), "{编号}DM1");
        assert_eq!(render("{ case_no }", &vars), "{ case_no }");
    }

    #[test]
    fn values_are_not_rendered_again() {
        assert_eq!(render("{title}", &[("title", "{case_no}"), ("case_no", "DM1")]), "{case_no}");
    }

    #[test]
    fn unknown_placeholders_are_found() {
        assert_eq!(unknown_placeholders("{case_no}{phone}{ x }{unit}"), vec!["phone", "unit"]);
        assert!(unknown_placeholders("【{district}】{case_no}{title}{unit_name}{milestone}{deadline}").is_empty());
    }

    #[test]
    fn deadlines_in_local_time() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 2, 10, 59).unwrap();
        assert_eq!(local_minute(t, chrono_tz::Asia::Shanghai), "2026-11-23 10:10");
        let late = Utc.with_ymd_and_hms(2026, 11, 23, 16, 5, 0).unwrap();
        assert_eq!(local_minute(late, chrono_tz::Asia::Shanghai), "2026-11-24 00:05");
    }

    #[test]
    fn phones_are_masked() {
        assert_eq!(mask_phone("13800138000"), "138****8000");
        assert_eq!(mask_phone(" 13800138000 "), "138****8000");
        assert_eq!(mask_phone("010-12345678"), "010-****5678");
        assert_eq!(mask_phone("123456"), "******");
        assert_eq!(mask_phone(""), "");
        let p = Phone::new("13800138000").unwrap();
        assert_eq!(format!("{p:?}"), "Phone(138****8000)");
        assert_eq!(p.expose(), "13800138000");
        assert!(Phone::new("  ").is_none());
    }

    #[test]
    fn backoff_schedule() {
        let s = |n| Duration::from_secs(n);
        let policy = RetryPolicy { max_attempts: 8, backoff: vec![s(5), s(30), s(120), s(600), s(3600)] };
        let schedule: Vec<_> = (1..=8).map(|n| policy.delay_after(n)).collect();
        assert_eq!(schedule, vec![Some(s(5)), Some(s(30)), Some(s(120)), Some(s(600)), Some(s(3600)), Some(s(3600)), Some(s(3600)), None]);
        assert_eq!(policy.delay_after(9), None);
        let once = RetryPolicy { max_attempts: 1, backoff: vec![s(5)] };
        assert_eq!(once.delay_after(1), None);
    }

    #[test]
    fn names_round_trip() {
        for k in [RecipientKind::Citizen, RecipientKind::Unit, RecipientKind::Supervisor, RecipientKind::Leader] {
            assert_eq!(RecipientKind::parse(k.as_str()), Some(k));
        }
        for s in [Sink::Log, Sink::Webhook] {
            assert_eq!(Sink::parse(s.as_str()), Some(s));
        }
        for s in [Status::Pending, Status::Sent, Status::Failed] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("done"), None);
    }

    fn facts(event: &str, kind: RecipientKind, sink: Sink, status: Status, attempts: u32, at: i64) -> DeliveryFacts {
        DeliveryFacts {
            event_id: event.into(),
            recipient_kind: kind,
            recipient_name: "东门街道".into(),
            case_no: "DM1".into(),
            template: String::new(),
            sink,
            status,
            attempts,
            created_at: at,
            sent_at: (status == Status::Sent).then_some(at + 5),
        }
    }

    #[test]
    fn timeline_has_one_line_per_notification_and_the_webhook_decides() {
        use RecipientKind::*;
        let rows = [
            facts("e1", Citizen, Sink::Log, Status::Sent, 1, 100),
            facts("e1", Citizen, Sink::Webhook, Status::Sent, 2, 100),
            facts("e2", Unit, Sink::Log, Status::Sent, 1, 200),
            facts("e2", Unit, Sink::Webhook, Status::Pending, 1, 200),
            facts("e3", Supervisor, Sink::Webhook, Status::Failed, 8, 300),
            facts("e3", Supervisor, Sink::Log, Status::Sent, 1, 300),
            facts("e4", Unit, Sink::Log, Status::Pending, 0, 50),
        ];
        let t = timeline(&rows);
        let details: Vec<_> = t.iter().map(|i| (i.event, i.detail.as_str())).collect();
        assert_eq!(
            details,
            vec![
                ("unit_notified", "通知承办单位东门街道：待发送"),
                ("citizen_notified", "已短信告知市民受理编号DM1"),
                ("unit_notified", "通知承办单位东门街道：待重试（已尝试1次）"),
                ("supervisor_alerted", "向督办人员发送超时警报：发送失败（已尝试8次）"),
            ]
        );
        assert_eq!(t[1].at, 105, "a sent notification is dated when it was sent");
    }
}
