use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{DomainError, Limit, ResolveLimits, TimeError, warning_point};

/// A milestone (节点) of a case that has its own clock: from the event that starts it to the event
/// that meets it. The built-in ones are the seeds' (DOMAIN.md); a district adds its own as data
/// (`[sla_timer.policy.milestones.<name>]`), which are [`Milestone::Custom`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Milestone {
    /// Received → dispatched to a handling unit (分拨).
    Dispatch,
    /// Dispatched → accepted by the unit (签收).
    Accept,
    /// Accepted → citizen contacted (联系).
    Contact,
    /// Accepted → facts verified on site (核实, the "30" of "1030").
    Verify,
    /// Dispatched → first reply to the citizen (回复).
    Reply,
    /// Dispatched → resolved (办结); its limit depends on [`Urgency`].
    Resolve,
    /// Dispatched → the written response filed (处理意见书: verification, handling, next steps).
    Response,
    /// Received → still unresolved after the escalation limit, handed to a leader (包案).
    Escalate,
    /// An assisting unit's part (协办): one clock per part, to the deadline the lead unit gave.
    Assist,
    /// A milestone the district defined, by its name.
    Custom(&'static str),
}

impl Milestone {
    /// The built-in milestones, in the order of the case's life.
    pub const BUILT_IN: [Milestone; 9] = [
        Milestone::Dispatch,
        Milestone::Accept,
        Milestone::Contact,
        Milestone::Verify,
        Milestone::Reply,
        Milestone::Resolve,
        Milestone::Response,
        Milestone::Escalate,
        Milestone::Assist,
    ];

    /// The `snake_case` name used in storage, events and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Dispatch => "dispatch",
            Milestone::Accept => "accept",
            Milestone::Contact => "contact",
            Milestone::Verify => "verify",
            Milestone::Reply => "reply",
            Milestone::Resolve => "resolve",
            Milestone::Response => "response_document",
            Milestone::Escalate => "escalate",
            Milestone::Assist => "assist",
            Milestone::Custom(name) => name,
        }
    }

    /// Whether the clock follows its own rules in [`plan`](super::plan) (dispatch, accept,
    /// contact, reply, resolve, escalate, assist); the others follow their start and stop events.
    pub fn has_own_rules(self) -> bool {
        !matches!(self, Milestone::Verify | Milestone::Response | Milestone::Custom(_))
    }
}

/// Names of district milestones, kept for the life of the process so that [`Milestone`] stays
/// `Copy`: there are as many as the policy and the table name, a handful.
fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::OnceLock<std::sync::Mutex<std::collections::BTreeSet<&'static str>>> = std::sync::OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

impl fmt::Display for Milestone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Milestone {
    type Err = DomainError;

    /// A built-in name, or a district's: lower-case letters, digits and `_`, starting with a
    /// letter, at most 32 characters.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(m) = Milestone::BUILT_IN.into_iter().find(|m| m.as_str() == s) {
            return Ok(m);
        }
        let well_formed = (1..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if well_formed { Ok(Milestone::Custom(intern(s))) } else { Err(DomainError::UnknownMilestone(s.to_owned())) }
    }
}

impl Serialize for Milestone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Milestone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A case event a milestone can start, stop, pause or resume on (`start = ["accepted"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// `case.received` (受理).
    Received,
    /// `case.dispatched`, also a transfer or a re-dispatch (派单).
    Dispatched,
    /// `case.accepted` (签收).
    Accepted,
    /// `case.contacted` (联系).
    Contacted,
    /// `case.verified` (核实).
    Verified,
    /// `case.replied`: the written response (答复, 处理意见书).
    Replied,
    /// `case.staged` (阶段性办结).
    Staged,
    /// `case.resolved` (办结).
    Resolved,
    /// `case.reopened` (重办).
    Reopened,
    /// `case.returned`: the unit sent it back (退回).
    Returned,
    /// `case.return_reviewed`: the centre ruled on the return (退回审核).
    ReturnReviewed,
    /// `case.extension_requested` (延期申请).
    ExtensionRequested,
    /// `case.extension_decided`, approved or refused (延期审批).
    ExtensionDecided,
    /// `case.escalated` (包案, 提级).
    Escalated,
    /// `case.closed` (结案).
    Closed,
}

impl Trigger {
    /// The name used in configuration: the event's name after `case.`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Received => "received",
            Trigger::Dispatched => "dispatched",
            Trigger::Accepted => "accepted",
            Trigger::Contacted => "contacted",
            Trigger::Verified => "verified",
            Trigger::Replied => "replied",
            Trigger::Staged => "staged",
            Trigger::Resolved => "resolved",
            Trigger::Reopened => "reopened",
            Trigger::Returned => "returned",
            Trigger::ReturnReviewed => "return_reviewed",
            Trigger::ExtensionRequested => "extension_requested",
            Trigger::ExtensionDecided => "extension_decided",
            Trigger::Escalated => "escalated",
            Trigger::Closed => "closed",
        }
    }
}

/// The facts about a case that choose its limits (channel × urgency × request type × category).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The channel it came by (`hotline`, `secretary_mailbox`, …); empty if not yet known.
    pub channel: String,
    pub urgency: Urgency,
    /// 咨询 / 求助 / 投诉 / 举报 / 建议, as the classifier's key; empty if not known.
    pub request_type: String,
    /// The sub-item (`"01.03"`) or, failing that, the category (`"01"`); empty if not known.
    pub category: String,
}

impl Facts {
    /// An ordinary case of `urgency` whose other facts are not known.
    pub fn of(urgency: Urgency) -> Facts {
        Facts { urgency, ..Facts::default() }
    }
}

/// `[sla_timer.policy.milestones.<name>]`: a built-in milestone's own settings, or a new one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MilestoneSpec {
    /// The limit; for a built-in milestone, instead of the flat key.
    pub limit: Option<Limit>,
    /// The events that arm the clock (again, one version up, once it has stopped in an
    /// earlier round). Only for milestones without rules of their own.
    pub start: Vec<Trigger>,
    /// The events that meet it.
    pub stop: Vec<Trigger>,
    /// The events that pause it (挂起): its time does not count until one of `resume`.
    pub pause: Vec<Trigger>,
    /// The events that resume a paused clock; its deadline moves by the time the limit would
    /// have counted meanwhile.
    pub resume: Vec<Trigger>,
    /// Its own yellow point (预警点), like `[sla_timer.policy.yellow]`.
    pub yellow: Option<YellowPoint>,
    /// Red for this long without being met → escalated to a leader (红灯后 N 个工作日提级).
    pub escalate_after_red: Option<Limit>,
    /// `false` switches the milestone off: no clock is armed for it.
    pub enabled: Option<bool>,
    /// What clerks read (`"回访"`), for a district's own milestone; the built-in ones have theirs.
    pub name: Option<String>,
}

/// `[[sla_timer.policy.rules]]`: other limits for the cases a selector picks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRule {
    /// Which cases; an empty selector picks every case.
    #[serde(default)]
    pub when: Selector,
    /// Milestone name → limit, for those cases.
    pub limits: BTreeMap<Milestone, Limit>,
}

/// Which cases a [`LimitRule`] applies to; a key left out matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Selector {
    pub channel: Option<String>,
    pub urgency: Option<Urgency>,
    pub request_type: Option<String>,
    /// A category (`"01"`, all its sub-items) or one sub-item (`"01.03"`).
    pub category: Option<String>,
}

impl Selector {
    /// How specific the selector is when it matches `facts`, or `None` if it does not: one
    /// point per key, and one more for a sub-item over its category.
    pub fn specificity(&self, facts: &Facts) -> Option<u32> {
        let mut score = 0;
        if let Some(c) = &self.channel {
            (c == &facts.channel).then_some(())?;
            score += 2;
        }
        if let Some(u) = self.urgency {
            (u == facts.urgency).then_some(())?;
            score += 2;
        }
        if let Some(t) = &self.request_type {
            (t == &facts.request_type).then_some(())?;
            score += 2;
        }
        if let Some(c) = &self.category {
            let of_category = facts.category == *c || facts.category.strip_prefix(c.as_str()).is_some_and(|rest| rest.starts_with('.'));
            of_category.then_some(())?;
            score += if c.contains('.') { 3 } else { 2 };
        }
        Some(score)
    }
}

pub use jiesu_reference::Urgency;

/// The SLA policy (时限标准) of a district: one limit per milestone, the moment clocks turn
/// yellow, the milestones a district adds, and other limits for the cases rules select. Read
/// from `[sla_timer.policy]`; every key is optional and defaults to the figures in the seeds
/// (Dongmen "1030", Xin'an, the 3-working-day written response, the 50-working-day 包案 rule).
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
    /// Accepted → facts verified (核实).
    pub verify: Limit,
    /// Dispatched → first reply (回复).
    pub reply: Limit,
    /// Dispatched → written response filed (处理意见书).
    pub response_document: Limit,
    /// Received → escalated to a leader if still unresolved (包案).
    pub escalate: Limit,
    /// Dispatched → resolved (办结), by urgency.
    pub resolve: ResolveLimits,
    /// `[sla_timer.policy.yellow]`: a milestone's own yellow point (预警点), instead of `warn_at`:
    /// a fraction (`"0.5"`) or a time before the deadline (`"2h before"`, `"30m before"`).
    pub yellow: BTreeMap<Milestone, YellowPoint>,
    /// `[sla_timer.policy.milestones.<name>]`: the built-in milestones' pauses, ladders and
    /// switches, and the district's own milestones.
    pub milestones: BTreeMap<Milestone, MilestoneSpec>,
    /// `[[sla_timer.policy.rules]]`: other limits for the cases a selector picks; the most
    /// specific matching rule wins, the earlier one on a tie.
    pub rules: Vec<LimitRule>,
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
            verify: Limit::Minutes(30),
            reply: Limit::Hours(72),
            response_document: Limit::WorkingDays(3),
            escalate: Limit::WorkingDays(50),
            resolve: ResolveLimits::default(),
            yellow: BTreeMap::new(),
            milestones: BTreeMap::new(),
            rules: Vec::new(),
        }
    }
}

impl Policy {
    /// The limit of `milestone` for a case of `urgency` whose other facts are not known.
    pub fn limit(&self, milestone: Milestone, urgency: Urgency) -> Limit {
        self.limit_for(milestone, &Facts::of(urgency))
    }

    /// The limit of `milestone` for a case with these `facts`: the most specific rule that
    /// names the milestone, else the milestone's own limit, else the flat key.
    pub fn limit_for(&self, milestone: Milestone, facts: &Facts) -> Limit {
        let mut best: Option<(u32, Limit)> = None;
        for rule in &self.rules {
            let (Some(limit), Some(score)) = (rule.limits.get(&milestone), rule.when.specificity(facts)) else { continue };
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, *limit));
            }
        }
        if let Some((_, limit)) = best {
            return limit;
        }
        if let Some(limit) = self.milestones.get(&milestone).and_then(|s| s.limit) {
            return limit;
        }
        match milestone {
            Milestone::Dispatch => self.dispatch,
            Milestone::Accept => self.accept,
            Milestone::Contact => self.contact,
            Milestone::Verify => self.verify,
            Milestone::Reply => self.reply,
            Milestone::Response => self.response_document,
            Milestone::Escalate => self.escalate,
            // An assisting part normally has the deadline the lead gave it; without one it has
            // the case's own.
            Milestone::Resolve | Milestone::Assist => self.resolve.of(facts.urgency),
            // Validation makes sure a district milestone has a limit.
            Milestone::Custom(_) => Limit::IMMEDIATE,
        }
    }

    /// Whether clocks are armed for `milestone`: a built-in one unless switched off, a
    /// district's if defined and not switched off.
    pub fn enabled(&self, milestone: Milestone) -> bool {
        match self.milestones.get(&milestone) {
            Some(spec) => spec.enabled.unwrap_or(true),
            None => !matches!(milestone, Milestone::Custom(_)),
        }
    }

    /// The milestones without rules of their own that are switched on, in order: verify,
    /// response, then the district's.
    pub fn event_driven(&self) -> impl Iterator<Item = Milestone> + '_ {
        [Milestone::Verify, Milestone::Response]
            .into_iter()
            .chain(self.milestones.keys().copied().filter(|m| matches!(m, Milestone::Custom(_))))
            .filter(|m| self.enabled(*m))
    }

    /// The events that start and stop `milestone` (only meaningful without rules of its own):
    /// the district's lists, else the built-in ones of verify and response.
    pub fn start_stop(&self, milestone: Milestone) -> (Vec<Trigger>, Vec<Trigger>) {
        use Trigger::*;
        let spec = self.milestones.get(&milestone);
        let (default_start, default_stop) = match milestone {
            Milestone::Verify => (vec![Accepted], vec![Verified, Replied, Staged, Resolved]),
            Milestone::Response => (vec![Dispatched, Reopened], vec![Replied, Staged, Resolved]),
            _ => (Vec::new(), Vec::new()),
        };
        let pick = |own: Option<&Vec<Trigger>>, default: Vec<Trigger>| own.filter(|v| !v.is_empty()).cloned().unwrap_or(default);
        (pick(spec.map(|s| &s.start), default_start), pick(spec.map(|s| &s.stop), default_stop))
    }

    /// The milestone's name as clerks read it: the district's `name`, else the built-in Chinese
    /// name, else its key.
    pub fn display_name<'a>(&'a self, milestone: &'a str) -> &'a str {
        let own = milestone.parse::<Milestone>().ok().and_then(|m| self.milestones.get(&m)).and_then(|s| s.name.as_deref());
        own.unwrap_or_else(|| jiesu_reference::milestone_zh(milestone))
    }

    /// Whether `trigger` pauses, resp. resumes, the clocks of `milestone`.
    pub fn pauses(&self, milestone: Milestone, trigger: Trigger) -> (bool, bool) {
        self.milestones.get(&milestone).map_or((false, false), |s| (s.pause.contains(&trigger), s.resume.contains(&trigger)))
    }

    /// How long after its deadline an unmet clock of `milestone` is escalated, if it is.
    pub fn escalate_after_red(&self, milestone: Milestone) -> Option<Limit> {
        self.milestones.get(&milestone).and_then(|s| s.escalate_after_red)
    }

    /// When the clock of `milestone` spanning `start`..`deadline` turns yellow: its own yellow
    /// point, else `warn_at` of the span; never before the start nor after the deadline.
    pub fn yellow_at(&self, milestone: Milestone, start: DateTime<Utc>, deadline: DateTime<Utc>) -> DateTime<Utc> {
        let own = self.milestones.get(&milestone).and_then(|s| s.yellow).or_else(|| self.yellow.get(&milestone).copied());
        match own {
            Some(YellowPoint::Fraction(f)) => warning_point(start, deadline, f),
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
        let mut limits = vec![
            ("dispatch".to_string(), self.dispatch),
            ("accept".to_string(), self.accept),
            ("contact".to_string(), self.contact),
            ("verify".to_string(), self.verify),
            ("reply".to_string(), self.reply),
            ("response_document".to_string(), self.response_document),
            ("escalate".to_string(), self.escalate),
            ("resolve.emergency".to_string(), self.resolve.emergency),
            ("resolve.normal".to_string(), self.resolve.normal),
            ("resolve.complex".to_string(), self.resolve.complex),
        ];
        for (m, spec) in &self.milestones {
            let key = format!("milestones.{m}");
            limits.extend(spec.limit.map(|l| (format!("{key}.limit"), l)));
            limits.extend(spec.escalate_after_red.map(|l| (format!("{key}.escalate_after_red"), l)));
            problems.extend(spec.problems(&key, *m));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let key = format!("rules[{i}]");
            for (m, limit) in &rule.limits {
                limits.push((format!("{key}.limits.{m}"), *limit));
                if !self.enabled(*m) && matches!(m, Milestone::Custom(_)) {
                    problems.push(format!("{key} sets a limit for \"{m}\", which is no milestone of this policy"));
                }
            }
            if rule.limits.is_empty() {
                problems.push(format!("{key} sets no limits"));
            }
            if let Some(j) = self.rules[..i].iter().position(|r| r.when == rule.when) {
                problems.push(format!("{key} selects the same cases as rules[{j}]: merge them"));
            }
            for (name, value) in
                [("channel", &rule.when.channel), ("request_type", &rule.when.request_type), ("category", &rule.when.category)]
            {
                if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                    problems.push(format!("{key}.when.{name} is empty: leave it out to match every case"));
                }
            }
        }
        for m in self.yellow.keys().filter(|m| matches!(m, Milestone::Custom(_)) && !self.milestones.contains_key(m)) {
            problems.push(format!("yellow.{m}: \"{m}\" is no milestone of this policy"));
        }
        for (key, limit) in limits {
            if limit.is_immediate() {
                problems.push(format!("{key} is {limit}: its clock would be red as soon as it starts"));
            }
        }
        // A yellow point as long before the deadline as the whole limit would be yellow at once.
        let own_yellow = self.milestones.iter().filter_map(|(m, s)| s.yellow.map(|y| (*m, y)));
        for (milestone, point) in self.yellow.iter().map(|(m, y)| (*m, *y)).chain(own_yellow) {
            let YellowPoint::Before(before) = point else { continue };
            for urgency in [Urgency::Emergency, Urgency::Normal, Urgency::Complex] {
                let limit = self.limit(milestone, urgency);
                if let (Some(span), Some(ahead)) = (limit.elapsed(), before.elapsed())
                    && ahead >= span
                {
                    problems.push(format!(
                        "yellow.{milestone} \"{before} before\" is not shorter than the {milestone} limit {limit}{}: the clock would be yellow at once",
                        if milestone == Milestone::Resolve { format!(" ({})", urgency.key()) } else { String::new() }
                    ));
                    break;
                }
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(DomainError::InvalidPolicy(problems)) }
    }
}

impl MilestoneSpec {
    fn problems(&self, key: &str, milestone: Milestone) -> Vec<String> {
        let mut problems = Vec::new();
        let custom = matches!(milestone, Milestone::Custom(_));
        if milestone.has_own_rules() && !(self.start.is_empty() && self.stop.is_empty()) {
            problems.push(format!("{key}: {milestone} starts and stops by rules of its own; only its limit, pause, resume, yellow, escalate_after_red and enabled can be set"));
        }
        if custom {
            if self.limit.is_none() {
                problems.push(format!("{key} has no limit"));
            }
            if self.start.is_empty() || self.stop.is_empty() {
                problems.push(format!("{key} needs the events that start and stop it (start = [\"accepted\"], stop = [\"verified\"])"));
            }
        }
        if self.pause.is_empty() != self.resume.is_empty() {
            problems.push(format!("{key}: a clock that pauses must have events that resume it, and the other way round"));
        }
        let lists = [("start", &self.start), ("stop", &self.stop), ("pause", &self.pause), ("resume", &self.resume)];
        for (i, (a, la)) in lists.iter().enumerate() {
            for (b, lb) in &lists[i + 1..] {
                if let Some(t) = la.iter().find(|t| lb.contains(t)) {
                    problems.push(format!("{key}: {:?} is both in {a} and in {b}", t.as_str()));
                }
            }
        }
        problems
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
        verify = "30m"
        reply = "72h"
        response_document = "3wd"
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
        let names = ["dispatch", "accept", "contact", "verify", "reply", "resolve", "response_document", "escalate", "assist"];
        assert_eq!(names.len(), Milestone::BUILT_IN.len());
        for (m, name) in Milestone::BUILT_IN.into_iter().zip(names) {
            assert_eq!(m.as_str(), name);
            assert_eq!(m.to_string(), name);
            assert_eq!(name.parse::<Milestone>().unwrap(), m);
            let t: T = toml::from_str(&format!("m = \"{name}\"")).unwrap();
            assert_eq!(t.m, m, "serde and as_str agree");
        }
        for bad in ["", "Dispatch", "1st", " dispatch", "call-back", "a_name_that_is_far_too_long_for_one"] {
            assert_eq!(bad.parse::<Milestone>(), Err(DomainError::UnknownMilestone(bad.to_owned())));
        }
        // A district's own name, interned once.
        let a: Milestone = "callback".parse().unwrap();
        assert_eq!(a, Milestone::Custom("callback"));
        assert_eq!((a.as_str(), a.has_own_rules()), ("callback", false));
        let Milestone::Custom(again) = "callback".parse::<Milestone>().unwrap() else { panic!() };
        let Milestone::Custom(first) = a else { panic!() };
        assert!(std::ptr::eq(first, again));
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
        let err = toml::from_str::<Policy>("[yellow]\nnowhere = 0.5\n").unwrap().validate().unwrap_err().to_string();
        assert!(err.contains("yellow.nowhere: \"nowhere\" is no milestone"), "{err}");
        assert_eq!(String::from(YellowPoint::Before(Limit::Minutes(30))), "30m before");
        // As long before the deadline as an emergency's whole resolve limit: refused at start.
        let p: Policy = toml::from_str("[yellow]\nresolve = \"4h before\"\n").unwrap();
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("yellow.resolve \"4h before\" is not shorter than the resolve limit 2h (emergency)"), "{err}");
        assert!(Policy::default().validate().is_ok());
    }
}
