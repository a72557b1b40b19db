use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{DomainError, Limit, ResolveLimits, TimeError, warning_point};

/// A milestone (节点) of a case that has its own clock: from the event that starts it to the event
/// that meets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    /// Received → dispatched to a handling unit (分拨).
    Dispatch,
    /// Dispatched → accepted by the unit (签收).
    Accept,
    /// Accepted → citizen contacted (联系).
    Contact,
    /// Dispatched → first reply to the citizen (回复).
    Reply,
    /// Dispatched → resolved (办结); the only milestone whose limit depends on [`Urgency`].
    Resolve,
    /// Received → still unresolved after the escalation limit, handed to a leader (包案).
    Escalate,
}

impl Milestone {
    /// Every milestone, in the order of the case's life.
    pub const ALL: [Milestone; 6] =
        [Milestone::Dispatch, Milestone::Accept, Milestone::Contact, Milestone::Reply, Milestone::Resolve, Milestone::Escalate];

    /// The `snake_case` name used in storage, events and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Dispatch => "dispatch",
            Milestone::Accept => "accept",
            Milestone::Contact => "contact",
            Milestone::Reply => "reply",
            Milestone::Resolve => "resolve",
            Milestone::Escalate => "escalate",
        }
    }
}

impl fmt::Display for Milestone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Milestone {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Milestone::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| DomainError::UnknownMilestone(s.to_owned()))
    }
}

pub use jiesu_reference::Urgency;

/// The SLA policy (时限标准) of a district: one limit per milestone, and the moment clocks turn
/// yellow. Read from `[sla_timer.policy]`; every key is optional and defaults to the figures in
/// the seeds (Dongmen "1030", Xin'an, the 50-working-day 包案 rule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Fraction of a clock's span after which it turns yellow (预警黄), strictly between 0 and 1.
    pub warn_at: f64,
    /// Received → dispatched (分拨).
    pub dispatch: Limit,
    /// Dispatched → accepted (签收).
    pub accept: Limit,
    /// Accepted → citizen contacted (联系).
    pub contact: Limit,
    /// Dispatched → first reply (回复).
    pub reply: Limit,
    /// Received → escalated to a leader if still unresolved (包案).
    pub escalate: Limit,
    /// Dispatched → resolved (办结), by urgency.
    pub resolve: ResolveLimits,
    /// `[sla_timer.policy.yellow]`: a milestone's own yellow point (预警点), instead of `warn_at`:
    /// a fraction (`"0.5"`) or a time before the deadline (`"2h before"`, `"30m before"`).
    pub yellow: BTreeMap<Milestone, YellowPoint>,
}

/// When a clock turns yellow (预警点).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum YellowPoint {
    /// This fraction of the span, strictly between 0 and 1.
    Fraction(f64),
    /// This long before the deadline (elapsed time); at the start if the span is shorter.
    Before(Limit),
}

impl FromStr for YellowPoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Some(span) = text.strip_suffix("before").map(str::trim) {
            let limit: Limit = span.parse().map_err(|e: TimeError| e.to_string())?;
            return match limit.elapsed() {
                Some(_) if !limit.is_immediate() => Ok(YellowPoint::Before(limit)),
                Some(_) => Err(format!("{text:?}: a yellow point at the deadline itself is no warning")),
                None => Err(format!("{text:?}: the time before the deadline is elapsed time (m, h, d), not working time")),
            };
        }
        match text.parse::<f64>() {
            Ok(f) if f > 0.0 && f < 1.0 => Ok(YellowPoint::Fraction(f)),
            _ => Err(format!("{text:?} is neither a fraction strictly between 0 and 1 nor a time \"before\" the deadline (\"2h before\")")),
        }
    }
}

impl TryFrom<String> for YellowPoint {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<YellowPoint> for String {
    fn from(y: YellowPoint) -> String {
        match y {
            YellowPoint::Fraction(f) => f.to_string(),
            YellowPoint::Before(l) => format!("{l} before"),
        }
    }
}

impl Serialize for YellowPoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from(*self))
    }
}

impl<'de> Deserialize<'de> for YellowPoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A bare number (yellow.accept = 0.5) is as welcome as a string.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(f) => f.to_string().parse().map_err(serde::de::Error::custom),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            warn_at: 0.8,
            dispatch: Limit::Hours(1),
            accept: Limit::Minutes(10),
            contact: Limit::Minutes(30),
            reply: Limit::Hours(72),
            escalate: Limit::WorkingDays(50),
            resolve: ResolveLimits::default(),
            yellow: BTreeMap::new(),
        }
    }
}

impl Policy {
    /// The limit of `milestone` for a case of `urgency` (urgency only matters for resolve).
    pub fn limit(&self, milestone: Milestone, urgency: Urgency) -> Limit {
        match milestone {
            Milestone::Dispatch => self.dispatch,
            Milestone::Accept => self.accept,
            Milestone::Contact => self.contact,
            Milestone::Reply => self.reply,
            Milestone::Escalate => self.escalate,
            Milestone::Resolve => self.resolve.of(urgency),
        }
    }

    /// When the clock of `milestone` spanning `start`..`deadline` turns yellow: its own yellow
    /// point, else `warn_at` of the span; never before the start nor after the deadline.
    pub fn yellow_at(&self, milestone: Milestone, start: DateTime<Utc>, deadline: DateTime<Utc>) -> DateTime<Utc> {
        match self.yellow.get(&milestone) {
            Some(YellowPoint::Fraction(f)) => warning_point(start, deadline, *f),
            Some(YellowPoint::Before(span)) => {
                let span = span.elapsed().unwrap_or_default();
                deadline.checked_sub_signed(span).unwrap_or(start).clamp(start, deadline)
            }
            None => warning_point(start, deadline, self.warn_at),
        }
    }

    /// Checks the policy as a whole, listing every problem so that one start-up shows them all.
    ///
    /// A zero limit is refused too: its clock would be red the moment it is armed, so every case
    /// would count as overdue; "at once" (立即) is better expressed as a short limit.
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut problems = Vec::new();
        // Written as a negation so that NaN is refused as well.
        if !(self.warn_at > 0.0 && self.warn_at < 1.0) {
            problems.push(format!("warn_at must be strictly between 0 and 1, not {}", self.warn_at));
        }
        let limits = [
            ("dispatch", self.dispatch),
            ("accept", self.accept),
            ("contact", self.contact),
            ("reply", self.reply),
            ("escalate", self.escalate),
            ("resolve.emergency", self.resolve.emergency),
            ("resolve.normal", self.resolve.normal),
            ("resolve.complex", self.resolve.complex),
        ];
        for (key, limit) in limits {
            if limit.is_immediate() {
                problems.push(format!("{key} is {limit}: its clock would be red as soon as it starts"));
            }
        }
        // A yellow point as long before the deadline as the whole limit would be yellow at once.
        for (milestone, point) in &self.yellow {
            let YellowPoint::Before(before) = point else { continue };
            for urgency in [Urgency::Emergency, Urgency::Normal, Urgency::Complex] {
                let limit = self.limit(*milestone, urgency);
                if let (Some(span), Some(ahead)) = (limit.elapsed(), before.elapsed())
                    && ahead >= span
                {
                    problems.push(format!(
                        "yellow.{milestone} \"{before} before\" is not shorter than the {milestone} limit {limit}{}: the clock would be yellow at once",
                        if *milestone == Milestone::Resolve { format!(" ({})", urgency.key()) } else { String::new() }
                    ));
                    break;
                }
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(DomainError::InvalidPolicy(problems)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDS: &str = r#"
        warn_at = 0.8            # fraction of the span after which the clock turns yellow (预警黄)
        dispatch = "1h"
        accept = "10m"
        contact = "30m"
        reply = "72h"
        escalate = "50wd"
        [resolve]
        emergency = "2h"
        normal = "24h"
        complex = "3wd"
    "#;

    #[test]
    fn milestone_names_round_trip() {
        #[derive(Deserialize)]
        struct T {
            m: Milestone,
        }
        let names = ["dispatch", "accept", "contact", "reply", "resolve", "escalate"];
        for (m, name) in Milestone::ALL.into_iter().zip(names) {
            assert_eq!(m.as_str(), name);
            assert_eq!(m.to_string(), name);
            assert_eq!(name.parse::<Milestone>().unwrap(), m);
            let t: T = toml::from_str(&format!("m = \"{name}\"")).unwrap();
            assert_eq!(t.m, m, "serde and as_str agree");
        }
        for bad in ["", "Dispatch", "resolved", " dispatch"] {
            assert_eq!(bad.parse::<Milestone>(), Err(DomainError::UnknownMilestone(bad.to_owned())));
        }
    }

    #[test]
    fn urgency_in_the_policy_file_uses_the_shared_keys() {
        #[derive(Deserialize)]
        struct T {
            u: Urgency,
        }
        for u in Urgency::ALL {
            let t: T = toml::from_str(&format!("u = \"{}\"", u.key())).unwrap();
            assert_eq!(t.u, u);
        }
    }

    #[test]
    fn defaults_are_the_seed_figures() {
        let p = Policy::default();
        assert_eq!(p.warn_at, 0.8);
        assert_eq!(p.dispatch, Limit::Hours(1));
        assert_eq!(p.accept, Limit::Minutes(10));
        assert_eq!(p.contact, Limit::Minutes(30));
        assert_eq!(p.reply, Limit::Hours(72));
        assert_eq!(p.escalate, Limit::WorkingDays(50));
        assert_eq!(p.resolve.emergency, Limit::Hours(2));
        assert_eq!(p.resolve.normal, Limit::Hours(24));
        assert_eq!(p.resolve.complex, Limit::WorkingDays(3));
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn the_documented_table_equals_the_defaults() {
        let p: Policy = toml::from_str(SEEDS).unwrap();
        assert_eq!(p, Policy::default());
    }

    #[test]
    fn an_empty_table_gives_the_defaults() {
        assert_eq!(toml::from_str::<Policy>("").unwrap(), Policy::default());
        assert_eq!(toml::from_str::<Policy>("[resolve]").unwrap(), Policy::default());
    }

    #[test]
    fn keys_override_one_by_one() {
        let p: Policy = toml::from_str("dispatch = \"3h\"\nresolve.complex = \"5wd\"").unwrap();
        assert_eq!(p.dispatch, Limit::Hours(3));
        assert_eq!(p.resolve.complex, Limit::WorkingDays(5));
        assert_eq!(p.resolve.normal, Limit::Hours(24));
        assert_eq!(p.accept, Limit::Minutes(10));
    }

    #[test]
    fn typos_and_bad_limits_are_refused_when_read() {
        let err = toml::from_str::<Policy>("dispach = \"1h\"").unwrap_err().to_string();
        assert!(err.contains("dispach"), "{err}");
        let err = toml::from_str::<Policy>("[resolve]\nurgent = \"1h\"").unwrap_err().to_string();
        assert!(err.contains("urgent"), "{err}");
        let err = toml::from_str::<Policy>("reply = \"3 days\"").unwrap_err().to_string();
        assert!(err.contains("unknown unit"), "{err}");
    }

    #[test]
    fn limit_picks_the_milestone_and_only_resolve_looks_at_urgency() {
        let p = Policy::default();
        for u in Urgency::ALL {
            assert_eq!(p.limit(Milestone::Dispatch, u), Limit::Hours(1));
            assert_eq!(p.limit(Milestone::Accept, u), Limit::Minutes(10));
            assert_eq!(p.limit(Milestone::Contact, u), Limit::Minutes(30));
            assert_eq!(p.limit(Milestone::Reply, u), Limit::Hours(72));
            assert_eq!(p.limit(Milestone::Escalate, u), Limit::WorkingDays(50));
        }
        assert_eq!(p.limit(Milestone::Resolve, Urgency::Emergency), Limit::Hours(2));
        assert_eq!(p.limit(Milestone::Resolve, Urgency::Normal), Limit::Hours(24));
        assert_eq!(p.limit(Milestone::Resolve, Urgency::Complex), Limit::WorkingDays(3));
    }

    #[test]
    fn validate_refuses_warn_at_outside_the_open_interval() {
        for bad in [0.0, 1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
            let p = Policy { warn_at: bad, ..Policy::default() };
            match p.validate() {
                Err(DomainError::InvalidPolicy(problems)) => {
                    assert_eq!(problems.len(), 1, "{problems:?}");
                    assert!(problems[0].contains("warn_at"));
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        for good in [0.01, 0.5, 0.99] {
            assert_eq!(Policy { warn_at: good, ..Policy::default() }.validate(), Ok(()));
        }
    }

    #[test]
    fn validate_reports_every_problem() {
        let p: Policy = toml::from_str("warn_at = 1.2\naccept = \"0\"\n[resolve]\nemergency = \"0m\"").unwrap();
        let err = p.validate().unwrap_err();
        let DomainError::InvalidPolicy(problems) = &err else { panic!("{err:?}") };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("warn_at"));
        assert!(problems[1].starts_with("accept is 0m"));
        assert!(problems[2].starts_with("resolve.emergency is 0m"));
        assert!(err.to_string().starts_with("invalid SLA policy: warn_at must be"));
    }

    #[test]
    fn a_milestone_may_have_its_own_yellow_point() {
        let p: Policy = toml::from_str(
            r#"
            [yellow]
            accept = "2m before"
            resolve = 0.5
            "#,
        )
        .unwrap();
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let (start, end) = (t("2026-03-02T01:00:00Z"), t("2026-03-02T01:10:00Z"));
        assert_eq!(p.yellow_at(Milestone::Accept, start, end), t("2026-03-02T01:08:00Z"));
        assert_eq!(p.yellow_at(Milestone::Resolve, start, end), t("2026-03-02T01:05:00Z"));
        assert_eq!(p.yellow_at(Milestone::Contact, start, end), t("2026-03-02T01:08:00Z"), "warn_at 0.8 for the rest");
        // A span shorter than the time before: yellow at once.
        let short = YellowPoint::Before(Limit::Hours(1));
        let q = Policy { yellow: BTreeMap::from([(Milestone::Accept, short)]), ..Policy::default() };
        assert_eq!(q.yellow_at(Milestone::Accept, start, end), start);
        for (text, ok) in [
            ("0.25", true),
            ("30m before", true),
            ("1d before", true),
            ("1.5", false),
            ("0", false),
            ("3wd before", false),
            ("0m before", false),
            ("soon", false),
        ] {
            assert_eq!(text.parse::<YellowPoint>().is_ok(), ok, "{text}");
        }
        let err = toml::from_str::<Policy>("[yellow]\nnowhere = 0.5\n").unwrap_err().to_string();
        assert!(err.contains("nowhere"), "{err}");
        assert_eq!(String::from(YellowPoint::Before(Limit::Minutes(30))), "30m before");
        // As long before the deadline as an emergency's whole resolve limit: refused at start.
        let p: Policy = toml::from_str("[yellow]\nresolve = \"4h before\"\n").unwrap();
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("yellow.resolve \"4h before\" is not shorter than the resolve limit 2h (emergency)"), "{err}");
        assert!(Policy::default().validate().is_ok());
    }
}
