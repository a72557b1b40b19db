//! Dispatch's rules (派单与办理规则), without I/O: which unit a case goes to under the
//! responsibility matrix (职责清单), and the handling loop's state machine — 派单 → 签收 → 办结 →
//! 回访 → 结案, or back to 重新办理 when the revisit finds the citizen dissatisfied.

use std::fmt;

use jiesu_kit::text::has_control;
use jiesu_proto::v1::{self as pb, Satisfaction};
pub use jiesu_reference::{Organisation, Unit, UnitKind};
use serde::Deserialize;

/// A matrix entry's placeholder for "the street office of the place the case is about" (属地管理).
pub const AT_STREET: &str = "@street";
/// A matrix entry's wildcard: any sub-item, any street.
pub const ANY: &str = "*";
/// Longest reply to the citizen (答复内容) a unit may file, in characters.
pub const MAX_REPLY_CHARS: usize = 2_000;
/// Longest note a unit may add when it reports contacting the citizen, in characters.
pub const MAX_NOTE_CHARS: usize = 500;
/// Longest name of the person who signs for or resolves a case, in characters.
pub const MAX_PERSON_CHARS: usize = 50;

/// Where a case is, as far as routing cares (from the case's `Location`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    pub street: String,
    pub community: String,
}

// ------------------------------------------------------------------ the matrix (职责清单)

/// One `[[dispatch.matrix]]` rule: sub-item × street → lead and assisting units.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A sub-item ("01.03"), a category ("01") or "*".
    pub sub_item: String,
    /// A street unit id or "*".
    pub street: String,
    /// The lead unit (主办), or "@street".
    pub lead: String,
    /// Assisting units (协办), each a unit id or "@street".
    #[serde(default)]
    pub assisting: Vec<String>,
}

/// The responsibility matrix and where a case goes when no rule fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    pub rules: Vec<Rule>,
    /// Usually the service centre, which triages such a case by hand.
    pub fallback_unit: String,
}

impl Matrix {
    /// Every problem of the matrix against the organisation, each as a sentence.
    pub fn problems(&self, org: &Organisation) -> Vec<String> {
        let mut problems = Vec::new();
        let fallback = self.fallback_unit.trim();
        if fallback.is_empty() {
            problems.push("dispatch.fallback_unit must name a unit".to_string());
        } else if fallback == AT_STREET {
            problems.push("dispatch.fallback_unit cannot be \"@street\": it is where cases without a known street go".to_string());
        } else if org.unit(fallback).is_none() {
            problems.push(format!("dispatch.fallback_unit {fallback:?} is not a unit of the organisation"));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("[[dispatch.matrix]] #{} (sub_item {:?}, street {:?})", i + 1, rule.sub_item, rule.street);
            if !is_code_pattern(&rule.sub_item) {
                problems.push(format!("{at}: sub_item must be a sub-item like \"01.03\", a category like \"01\", or \"*\""));
            }
            if rule.street != ANY && !org.is_street(&rule.street) {
                problems.push(format!("{at}: street must be \"*\" or the id of a street unit of the organisation"));
            }
            if rule.lead != AT_STREET && org.unit(&rule.lead).is_none() {
                problems.push(format!("{at}: lead {:?} is not a unit of the organisation (nor \"@street\")", rule.lead));
            }
            for a in &rule.assisting {
                if a != AT_STREET && org.unit(a).is_none() {
                    problems.push(format!("{at}: assisting unit {a:?} is not a unit of the organisation (nor \"@street\")"));
                }
            }
            if let Some(j) = self.rules[..i].iter().position(|r| r.sub_item == rule.sub_item && r.street == rule.street) {
                problems
                    .push(format!("{at}: repeats rule #{} for the same sub_item and street; which one applies would be ambiguous", j + 1));
            }
        }
        problems
    }
}

fn is_code_pattern(code: &str) -> bool {
    code == ANY
        || (!code.is_empty()
            && code.split('.').count() <= 2
            && code.split('.').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric())))
}

/// The category of a sub-item code: "01" of "01.03".
pub fn category_of(code: &str) -> &str {
    code.split('.').next().unwrap_or_default()
}

/// Where a case goes (派单结果).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The lead unit (主办单位): it owns the case to the end (首问首办).
    pub lead: String,
    /// Assisting units (协办单位): deduplicated, never the lead.
    pub assisting: Vec<String>,
    /// The matrix rule that decided (index into `Matrix::rules`), `None` when none fitted.
    pub rule: Option<usize>,
}

/// Routes a case of sub-item `sub_item` (or a bare category) at `place` through the matrix.
///
/// The most specific rule wins: an exact sub-item before its category before "*", and among
/// those a rule for the case's street before one for "*". "@street" is the street office of the
/// place (its street, else its community's street); a lead of "@street" with no known street,
/// or no rule at all, sends the case to the fallback unit. An assisting "@street" without a
/// known street is left out: the centre is no help as an assisting unit.
pub fn route(matrix: &Matrix, org: &Organisation, sub_item: &str, place: &Place) -> Route {
    let street = org.street_of(&place.street, &place.community);
    let mut best: Option<((u8, u8), usize)> = None;
    for (i, rule) in matrix.rules.iter().enumerate() {
        let Some(rank) = sub_item_rank(&rule.sub_item, sub_item).zip(street_rank(&rule.street, street)) else { continue };
        // Strictly better only: among equals the first rule in the file stands.
        if best.is_none_or(|(r, _)| rank > r) {
            best = Some((rank, i));
        }
    }
    let fallback = matrix.fallback_unit.trim().to_string();
    let Some((_, i)) = best else {
        return Route { lead: fallback, assisting: vec![], rule: None };
    };
    let rule = &matrix.rules[i];
    let resolve = |id: &str| if id == AT_STREET { street.map(str::to_string) } else { Some(id.to_string()) };
    let lead = resolve(&rule.lead).unwrap_or(fallback);
    let mut assisting: Vec<String> = Vec::new();
    for a in rule.assisting.iter().filter_map(|a| resolve(a)) {
        if a != lead && !assisting.contains(&a) {
            assisting.push(a);
        }
    }
    Route { lead, assisting, rule: Some(i) }
}

/// A rule as the district file writes it, for people: `dispatch.matrix[3]: 01.03 × * → @street (+ dept-x)`.
pub fn describe_rule(index: usize, rule: &Rule) -> String {
    let assisting = if rule.assisting.is_empty() { String::new() } else { format!(" (+ {})", rule.assisting.join(", ")) };
    format!("dispatch.matrix[{index}]: {} × {} → {}{assisting}", rule.sub_item, rule.street, rule.lead)
}

fn sub_item_rank(rule: &str, code: &str) -> Option<u8> {
    if rule == ANY {
        Some(0)
    } else if rule == code {
        Some(2)
    } else if !code.is_empty() && rule == category_of(code) {
        Some(1)
    } else {
        None
    }
}

fn street_rank(rule: &str, street: Option<&str>) -> Option<u8> {
    if rule == ANY {
        Some(0)
    } else if street == Some(rule) {
        Some(1)
    } else {
        None
    }
}

// ------------------------------------------------------------------ the handling loop

/// Where a case stands in the handling loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStatus {
    /// 已派单: waiting for the unit to sign for it.
    Dispatched,
    /// 已签收
    Accepted,
    /// 已办结: replied, waiting for the revisit.
    Resolved,
    /// 重新办理: the revisit found it unsolved or the citizen dissatisfied.
    Reopened,
    /// 已结案
    Closed,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 5] =
        [CaseStatus::Dispatched, CaseStatus::Accepted, CaseStatus::Resolved, CaseStatus::Reopened, CaseStatus::Closed];

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Dispatched => "dispatched",
            CaseStatus::Accepted => "accepted",
            CaseStatus::Resolved => "resolved",
            CaseStatus::Reopened => "reopened",
            CaseStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn to_proto(self) -> pb::CaseStatus {
        match self {
            CaseStatus::Dispatched => pb::CaseStatus::Dispatched,
            CaseStatus::Accepted => pb::CaseStatus::Accepted,
            CaseStatus::Resolved => pb::CaseStatus::Resolved,
            CaseStatus::Reopened => pb::CaseStatus::Reopened,
            CaseStatus::Closed => pb::CaseStatus::Closed,
        }
    }

    /// `None` for `CASE_STATUS_UNSPECIFIED`.
    pub fn from_proto(s: pb::CaseStatus) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.to_proto() == s)
    }
}

impl fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the state machine needs to know of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseState {
    pub case_no: String,
    pub status: CaseStatus,
    /// The owning unit (首问首办: it keeps the case through every round).
    pub unit_id: String,
    /// 1 for the first handling; each reopening starts the next.
    pub round: u32,
}

/// The result of a transition that may already have happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The case's new state.
    Applied(CaseState),
    /// Nothing to do: the transition had already happened (a repeated command or event).
    Unchanged,
}

/// Why a transition is refused. Each says why, for the integrator reading the gRPC status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("unit {unit} does not own case {case_no}; it is owned by {owner}")]
    NotOwner { case_no: String, unit: String, owner: String },
    #[error("case {case_no} has not been accepted yet: unit {owner} must accept it before resolving it")]
    NotAccepted { case_no: String, owner: String },
    #[error("case {case_no} is already resolved and waits for its revisit")]
    AlreadyResolved { case_no: String },
    #[error("case {case_no} is already closed")]
    AlreadyClosed { case_no: String },
    #[error("case {case_no} cannot be {action}: it is {status}, not resolved")]
    NotResolved { case_no: String, status: CaseStatus, action: &'static str },
    #[error("case {case_no} is in round {current}; round {requested} does not follow from it")]
    RoundMismatch { case_no: String, current: u32, requested: u32 },
    #[error("case {case_no} must be accepted before the citizen is contacted: unit {owner} has not signed for it")]
    NotAcceptedForContact { case_no: String, owner: String },
    #[error("note is {chars} characters long; at most {max} are allowed")]
    NoteTooLong { chars: usize, max: usize },
    #[error("reply is required: the answer to the citizen (答复内容) must not be empty")]
    ReplyMissing,
    #[error("reply is {chars} characters long; at most {max} are allowed")]
    ReplyTooLong { chars: usize, max: usize },
    #[error("{field} contains control characters (line breaks and tabs are fine)")]
    ControlCharacters { field: &'static str },
}

impl TransitionError {
    /// The request itself is bad (as opposed to the case being in the wrong state or unit).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            TransitionError::ReplyMissing
                | TransitionError::ReplyTooLong { .. }
                | TransitionError::NoteTooLong { .. }
                | TransitionError::ControlCharacters { .. }
        )
    }
}

impl CaseState {
    fn with_status(&self, status: CaseStatus) -> CaseState {
        CaseState { status, ..self.clone() }
    }

    fn check_owner(&self, unit: &str) -> Result<(), TransitionError> {
        if unit == self.unit_id {
            Ok(())
        } else {
            Err(TransitionError::NotOwner { case_no: self.case_no.clone(), unit: unit.to_string(), owner: self.unit_id.clone() })
        }
    }

    /// 签收: the owning unit signs for a dispatched or reopened case. Signing again is a no-op.
    pub fn accept(&self, unit: &str) -> Result<Change, TransitionError> {
        self.check_owner(unit)?;
        match self.status {
            CaseStatus::Dispatched | CaseStatus::Reopened => Ok(Change::Applied(self.with_status(CaseStatus::Accepted))),
            CaseStatus::Accepted => Ok(Change::Unchanged),
            CaseStatus::Resolved => Err(TransitionError::AlreadyResolved { case_no: self.case_no.clone() }),
            CaseStatus::Closed => Err(TransitionError::AlreadyClosed { case_no: self.case_no.clone() }),
        }
    }

    /// 联系: the owning unit reached the citizen. Allowed while it handles the case (accepted or
    /// reopened); it changes no status. Returns the trimmed note.
    pub fn contact(&self, unit: &str, note: &str) -> Result<String, TransitionError> {
        self.check_owner(unit)?;
        let note = note.trim();
        let chars = note.chars().count();
        if chars > MAX_NOTE_CHARS {
            return Err(TransitionError::NoteTooLong { chars, max: MAX_NOTE_CHARS });
        }
        if has_control(note, true) {
            return Err(TransitionError::ControlCharacters { field: "note" });
        }
        match self.status {
            CaseStatus::Accepted | CaseStatus::Reopened => Ok(note.to_string()),
            CaseStatus::Dispatched => {
                Err(TransitionError::NotAcceptedForContact { case_no: self.case_no.clone(), owner: self.unit_id.clone() })
            }
            CaseStatus::Resolved => Err(TransitionError::AlreadyResolved { case_no: self.case_no.clone() }),
            CaseStatus::Closed => Err(TransitionError::AlreadyClosed { case_no: self.case_no.clone() }),
        }
    }

    /// 办结: the owning unit resolves an accepted (or reopened) case with its reply to the
    /// citizen; returns the new state and the trimmed reply.
    pub fn resolve(&self, unit: &str, reply: &str) -> Result<(CaseState, String), TransitionError> {
        self.check_owner(unit)?;
        match self.status {
            CaseStatus::Accepted | CaseStatus::Reopened => {
                let reply = validate_reply(reply)?;
                Ok((self.with_status(CaseStatus::Resolved), reply))
            }
            CaseStatus::Dispatched => Err(TransitionError::NotAccepted { case_no: self.case_no.clone(), owner: self.unit_id.clone() }),
            CaseStatus::Resolved => Err(TransitionError::AlreadyResolved { case_no: self.case_no.clone() }),
            CaseStatus::Closed => Err(TransitionError::AlreadyClosed { case_no: self.case_no.clone() }),
        }
    }

    /// 重新办理: the revisit reopened a resolved (or closed) case into round `round`; the same
    /// unit keeps it. A reopening into a round already reached is a repeat: no-op.
    pub fn reopen(&self, round: u32) -> Result<Change, TransitionError> {
        if round <= self.round {
            return Ok(Change::Unchanged);
        }
        if round != self.round + 1 {
            return Err(TransitionError::RoundMismatch { case_no: self.case_no.clone(), current: self.round, requested: round });
        }
        match self.status {
            CaseStatus::Resolved | CaseStatus::Closed => {
                Ok(Change::Applied(CaseState { status: CaseStatus::Reopened, round, ..self.clone() }))
            }
            status => Err(TransitionError::NotResolved { case_no: self.case_no.clone(), status, action: "reopened" }),
        }
    }

    /// 结案: the revisit of round `round` confirmed the outcome. A verdict on an earlier round
    /// is stale and a repeated one changes nothing.
    pub fn close(&self, round: u32) -> Result<Change, TransitionError> {
        if round < self.round {
            return Ok(Change::Unchanged);
        }
        if round > self.round {
            return Err(TransitionError::RoundMismatch { case_no: self.case_no.clone(), current: self.round, requested: round });
        }
        match self.status {
            CaseStatus::Resolved => Ok(Change::Applied(self.with_status(CaseStatus::Closed))),
            CaseStatus::Closed => Ok(Change::Unchanged),
            status => Err(TransitionError::NotResolved { case_no: self.case_no.clone(), status, action: "closed" }),
        }
    }
}

/// A reply to the citizen, trimmed: required, at most [`MAX_REPLY_CHARS`] characters.
pub fn validate_reply(reply: &str) -> Result<String, TransitionError> {
    let reply = reply.trim();
    let chars = reply.chars().count();
    if chars == 0 {
        Err(TransitionError::ReplyMissing)
    } else if chars > MAX_REPLY_CHARS {
        Err(TransitionError::ReplyTooLong { chars, max: MAX_REPLY_CHARS })
    } else if has_control(reply, true) {
        Err(TransitionError::ControlCharacters { field: "reply" })
    } else {
        Ok(reply.to_string())
    }
}

/// The person signing or resolving (签收人/办理人), trimmed: required, at most
/// [`MAX_PERSON_CHARS`] characters. `field` names the request field in the message.
pub fn validate_person(field: &str, name: &str) -> Result<String, String> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 {
        Err(format!("{field} is required: who is doing this, for the case's record"))
    } else if chars > MAX_PERSON_CHARS {
        Err(format!("{field} is {chars} characters long; at most {MAX_PERSON_CHARS} are allowed"))
    } else if has_control(name, false) {
        Err(format!("{field} contains control characters"))
    } else {
        Ok(name.to_string())
    }
}

// ------------------------------------------------------------------ the timeline (办理记录)

/// "派单至东门街道（协办：城市管理委员会、海滨社区）"
pub fn dispatched_detail(lead_name: &str, assisting_names: &[&str]) -> String {
    if assisting_names.is_empty() {
        format!("派单至{lead_name}")
    } else {
        format!("派单至{lead_name}（协办：{}）", assisting_names.join("、"))
    }
}

/// "东门街道已签收（签收人：王五）"
pub fn accepted_detail(unit_name: &str, accepted_by: &str) -> String {
    format!("{unit_name}已签收（签收人：{accepted_by}）")
}

/// "已办结，答复：…"
pub fn contacted_detail(contacted_by: &str, note: &str) -> String {
    if note.is_empty() {
        format!("已联系市民（联系人：{contacted_by}）")
    } else {
        format!("已联系市民（联系人：{contacted_by}）：{note}")
    }
}

pub fn resolved_detail(reply: &str) -> String {
    format!("已办结，答复：{reply}")
}

/// "回访不满意，重新办理（第2轮）"; `reason` is the revisit's, e.g. "回访不满意".
pub fn reopened_detail(reason: &str, round: u32) -> String {
    let reason = reason.trim();
    let reason = if reason.is_empty() { "回访不满意" } else { reason };
    format!("{reason}，重新办理（第{round}轮）")
}

/// "回访满意，已结案"
pub fn closed_detail(satisfaction: Satisfaction) -> String {
    match satisfaction {
        Satisfaction::BasicallySatisfied => "回访基本满意，已结案".to_string(),
        _ => "回访满意，已结案".to_string(),
    }
}

/// Whether a revisit verdict closes the case: (basically) satisfied and solved. Anything else
/// reopens it, which the revisit service announces itself with `case.reopened`.
pub fn verdict_closes(satisfaction: Satisfaction, solved: bool) -> bool {
    solved && matches!(satisfaction, Satisfaction::Satisfied | Satisfaction::BasicallySatisfied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: &str, name: &str, kind: UnitKind, parent: Option<&str>) -> Unit {
        Unit { id: id.into(), name: name.into(), kind, parent: parent.map(Into::into) }
    }

    fn org() -> Organisation {
        Organisation {
            units: vec![
                unit("district", "示范区", UnitKind::District, None),
                unit("centre", "示范区诉求服务中心", UnitKind::Centre, Some("district")),
                unit("st-dongmen", "东门街道", UnitKind::Street, Some("district")),
                unit("st-xinan", "新安街道", UnitKind::Street, Some("district")),
                unit("cm-lizhi", "荔枝社区", UnitKind::Community, Some("st-dongmen")),
                unit("cm-haibin", "海滨社区", UnitKind::Community, Some("st-xinan")),
                unit("gd-haibin-1", "海滨一网格", UnitKind::Community, Some("cm-haibin")),
                unit("cm-orphan", "无主社区", UnitKind::Community, None),
                unit("dept-urban-management", "城市管理委员会", UnitKind::Department, Some("district")),
                unit("dept-housing", "住房和城乡建设委员会", UnitKind::Department, Some("district")),
                unit("dept-water", "水务局", UnitKind::Department, Some("district")),
            ],
        }
    }

    fn rule(sub_item: &str, street: &str, lead: &str, assisting: &[&str]) -> Rule {
        Rule {
            sub_item: sub_item.into(),
            street: street.into(),
            lead: lead.into(),
            assisting: assisting.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn matrix(rules: Vec<Rule>) -> Matrix {
        Matrix { rules, fallback_unit: "centre".into() }
    }

    fn at(street: &str) -> Place {
        Place { street: street.into(), community: String::new() }
    }

    fn demo_matrix() -> Matrix {
        matrix(vec![
            rule("01", "*", "@street", &["dept-urban-management"]),
            rule("01.02", "*", "dept-urban-management", &["@street"]),
            rule("02", "*", "@street", &["dept-housing"]),
            rule("03.01", "*", "dept-water", &[]),
            rule("01.03", "st-xinan", "st-xinan", &["dept-urban-management", "cm-haibin"]),
            rule("*", "st-dongmen", "st-dongmen", &[]),
        ])
    }

    // ---------------------------------------------------------------- routing

    #[test]
    fn category_rule_sends_to_the_cases_street_with_assisting_units() {
        let r = route(&demo_matrix(), &org(), "01.01", &at("st-dongmen"));
        assert_eq!(r, Route { lead: "st-dongmen".into(), assisting: vec!["dept-urban-management".into()], rule: Some(0) });
    }

    #[test]
    fn an_exact_sub_item_beats_its_category() {
        let r = route(&demo_matrix(), &org(), "01.02", &at("st-dongmen"));
        assert_eq!(r.lead, "dept-urban-management");
        assert_eq!(r.assisting, vec!["st-dongmen".to_string()]);
        assert_eq!(r.rule, Some(1));
    }

    #[test]
    fn an_exact_street_beats_any_street_at_the_same_sub_item_level() {
        let m = matrix(vec![rule("01.03", "*", "dept-urban-management", &[]), rule("01.03", "st-xinan", "st-xinan", &[])]);
        assert_eq!(route(&m, &org(), "01.03", &at("st-xinan")).lead, "st-xinan");
        assert_eq!(route(&m, &org(), "01.03", &at("st-dongmen")).lead, "dept-urban-management");
    }

    #[test]
    fn the_sub_item_level_outranks_the_street() {
        // ("01.03", "*") is more specific than ("01", "st-xinan") and than ("*", "st-dongmen").
        let m = matrix(vec![
            rule("01", "st-xinan", "st-xinan", &[]),
            rule("01.03", "*", "dept-urban-management", &[]),
            rule("*", "st-dongmen", "st-dongmen", &[]),
        ]);
        assert_eq!(route(&m, &org(), "01.03", &at("st-xinan")).lead, "dept-urban-management");
        assert_eq!(route(&m, &org(), "01.01", &at("st-xinan")).lead, "st-xinan");
        assert_eq!(route(&m, &org(), "01.03", &at("st-dongmen")).lead, "dept-urban-management");
        assert_eq!(route(&m, &org(), "05.01", &at("st-dongmen")).lead, "st-dongmen");
    }

    #[test]
    fn a_category_beats_the_wildcard() {
        let m = matrix(vec![rule("*", "*", "dept-housing", &[]), rule("03", "*", "dept-water", &[])]);
        assert_eq!(route(&m, &org(), "03.02", &at("")).lead, "dept-water");
        assert_eq!(route(&m, &org(), "04.01", &at("")).lead, "dept-housing");
    }

    #[test]
    fn a_category_code_alone_matches_its_category_rule() {
        let m = matrix(vec![rule("03", "*", "dept-water", &[])]);
        assert_eq!(route(&m, &org(), "03", &at("")).lead, "dept-water");
    }

    #[test]
    fn a_category_rule_does_not_match_a_longer_code_sharing_its_prefix() {
        let m = matrix(vec![rule("01", "*", "dept-water", &[])]);
        assert_eq!(route(&m, &org(), "010.01", &at("")).lead, "centre");
        assert_eq!(route(&m, &org(), "10.01", &at("")).lead, "centre");
    }

    #[test]
    fn among_equal_rules_the_first_stands() {
        let m = matrix(vec![rule("01", "*", "dept-water", &[]), rule("01", "*", "dept-housing", &[])]);
        assert_eq!(route(&m, &org(), "01.01", &at("")).lead, "dept-water");
    }

    #[test]
    fn no_rule_sends_the_case_to_the_fallback_unit() {
        let r = route(&demo_matrix(), &org(), "07.01", &at("st-xinan"));
        assert_eq!(r, Route { lead: "centre".into(), assisting: vec![], rule: None });
        assert_eq!(route(&matrix(vec![]), &org(), "01.01", &at("st-xinan")).lead, "centre");
        assert_eq!(route(&demo_matrix(), &org(), "", &at("st-xinan")).lead, "centre");
    }

    #[test]
    fn at_street_uses_the_communitys_street_when_the_street_is_unknown() {
        let place = Place { street: String::new(), community: "cm-lizhi".into() };
        assert_eq!(route(&demo_matrix(), &org(), "01.01", &place).lead, "st-dongmen");
        // Also through several levels (a grid under a community).
        let place = Place { street: "nowhere".into(), community: "gd-haibin-1".into() };
        assert_eq!(route(&demo_matrix(), &org(), "02.01", &place).lead, "st-xinan");
    }

    #[test]
    fn a_known_street_wins_over_its_community() {
        let place = Place { street: "st-xinan".into(), community: "cm-lizhi".into() };
        assert_eq!(route(&demo_matrix(), &org(), "01.01", &place).lead, "st-xinan");
    }

    #[test]
    fn a_non_street_unit_named_as_street_is_not_a_street() {
        assert_eq!(org().street_of("dept-water", ""), None);
        assert_eq!(route(&demo_matrix(), &org(), "01.01", &at("dept-water")).lead, "centre");
    }

    #[test]
    fn at_street_without_a_known_street_falls_back_for_the_lead_and_drops_for_assisting() {
        let r = route(&demo_matrix(), &org(), "01.01", &at(""));
        assert_eq!(r.lead, "centre");
        assert_eq!(r.assisting, vec!["dept-urban-management".to_string()]);
        let r = route(&demo_matrix(), &org(), "01.02", &Place { street: String::new(), community: "cm-orphan".into() });
        assert_eq!(r.lead, "dept-urban-management");
        assert!(r.assisting.is_empty());
    }

    #[test]
    fn the_street_rule_matches_the_street_found_through_the_community() {
        let place = Place { street: String::new(), community: "cm-haibin".into() };
        let r = route(&demo_matrix(), &org(), "01.03", &place);
        assert_eq!(r.lead, "st-xinan");
        assert_eq!(r.assisting, vec!["dept-urban-management".to_string(), "cm-haibin".to_string()]);
    }

    #[test]
    fn assisting_units_are_deduplicated_and_never_the_lead() {
        let m = matrix(vec![rule("01", "*", "@street", &["st-dongmen", "dept-water", "@street", "dept-water", "dept-housing"])]);
        let r = route(&m, &org(), "01.01", &at("st-dongmen"));
        assert_eq!(r.lead, "st-dongmen");
        assert_eq!(r.assisting, vec!["dept-water".to_string(), "dept-housing".to_string()]);
    }

    #[test]
    fn cycles_in_the_tree_do_not_hang() {
        let mut o = org();
        o.units.push(unit("cm-a", "A", UnitKind::Community, Some("cm-b")));
        o.units.push(unit("cm-b", "B", UnitKind::Community, Some("cm-a")));
        assert_eq!(o.street_of("", "cm-a"), None);
    }

    // ---------------------------------------------------------------- matrix validation

    #[test]
    fn the_demo_matrix_is_valid() {
        assert_eq!(demo_matrix().problems(&org()), Vec::<String>::new());
    }

    #[test]
    fn every_matrix_problem_is_reported() {
        let mut m = matrix(vec![
            rule("01", "*", "dept-nowhere", &["@street", "dept-ghost"]),
            rule("1.2.3", "st-nowhere", "@street", &[]),
            rule("01", "*", "dept-water", &[]),
            rule("", "dept-water", "centre", &[]),
        ]);
        m.fallback_unit = "centre-x".into();
        let p = m.problems(&org());
        let all = p.join("\n");
        assert_eq!(p.len(), 8, "{all}");
        assert!(all.contains("fallback_unit \"centre-x\" is not a unit"), "{all}");
        assert!(all.contains("#1 (sub_item \"01\", street \"*\"): lead \"dept-nowhere\""), "{all}");
        assert!(all.contains("assisting unit \"dept-ghost\""), "{all}");
        assert!(all.contains("#2 (sub_item \"1.2.3\", street \"st-nowhere\"): sub_item must be"), "{all}");
        assert!(all.contains("#2 (sub_item \"1.2.3\", street \"st-nowhere\"): street must be"), "{all}");
        assert!(all.contains("#3 (sub_item \"01\", street \"*\"): repeats rule #1"), "{all}");
        assert!(all.contains("#4 (sub_item \"\", street \"dept-water\"): street must be"), "{all}");
    }

    #[test]
    fn the_fallback_must_be_a_real_unit() {
        let mut m = matrix(vec![]);
        m.fallback_unit = "@street".into();
        assert!(m.problems(&org())[0].contains("cannot be \"@street\""));
        m.fallback_unit = " ".into();
        assert!(m.problems(&org())[0].contains("must name a unit"));
    }

    #[test]
    fn code_patterns() {
        for ok in ["*", "01", "01.03", "A1.b2"] {
            assert!(is_code_pattern(ok), "{ok}");
        }
        for bad in ["", ".", "01.", ".03", "01.03.1", "0 1", "01*", "**"] {
            assert!(!is_code_pattern(bad), "{bad}");
        }
    }

    // ---------------------------------------------------------------- the state machine

    fn case(status: CaseStatus) -> CaseState {
        CaseState { case_no: "DM20261123-0001".into(), status, unit_id: "st-dongmen".into(), round: 1 }
    }

    #[test]
    fn accept_by_the_owner() {
        for from in [CaseStatus::Dispatched, CaseStatus::Reopened] {
            assert_eq!(case(from).accept("st-dongmen"), Ok(Change::Applied(case(CaseStatus::Accepted))), "{from}");
        }
        assert_eq!(case(CaseStatus::Accepted).accept("st-dongmen"), Ok(Change::Unchanged));
        let e = case(CaseStatus::Resolved).accept("st-dongmen").unwrap_err();
        assert_eq!(e.to_string(), "case DM20261123-0001 is already resolved and waits for its revisit");
        let e = case(CaseStatus::Closed).accept("st-dongmen").unwrap_err();
        assert_eq!(e.to_string(), "case DM20261123-0001 is already closed");
    }

    #[test]
    fn contact_while_handling_by_the_owner() {
        for from in [CaseStatus::Accepted, CaseStatus::Reopened] {
            assert_eq!(case(from).contact("st-dongmen", "  约定明早上门  "), Ok("约定明早上门".to_string()), "{from}");
        }
        let e = case(CaseStatus::Dispatched).contact("st-dongmen", "").unwrap_err();
        assert!(e.to_string().contains("must be accepted before the citizen is contacted"), "{e}");
        assert!(matches!(case(CaseStatus::Resolved).contact("st-dongmen", ""), Err(TransitionError::AlreadyResolved { .. })));
        assert!(matches!(case(CaseStatus::Closed).contact("st-dongmen", ""), Err(TransitionError::AlreadyClosed { .. })));
        assert!(matches!(case(CaseStatus::Accepted).contact("st-xinan", ""), Err(TransitionError::NotOwner { .. })));
        let long = "字".repeat(MAX_NOTE_CHARS + 1);
        let e = case(CaseStatus::Accepted).contact("st-dongmen", &long).unwrap_err();
        assert!(e.is_bad_input(), "{e}");
        assert_eq!(contacted_detail("王五", ""), "已联系市民（联系人：王五）");
        assert_eq!(contacted_detail("王五", "约定明早上门"), "已联系市民（联系人：王五）：约定明早上门");
    }

    #[test]
    fn only_the_owner_may_accept_or_resolve_in_any_state() {
        for s in CaseStatus::ALL {
            let e = case(s).accept("st-xinan").unwrap_err();
            assert_eq!(e.to_string(), "unit st-xinan does not own case DM20261123-0001; it is owned by st-dongmen");
            assert!(matches!(case(s).resolve("st-xinan", "ok"), Err(TransitionError::NotOwner { .. })), "{s}");
        }
    }

    #[test]
    fn resolve_needs_an_accepted_or_reopened_case_and_a_reply() {
        for from in [CaseStatus::Accepted, CaseStatus::Reopened] {
            let (state, reply) = case(from).resolve("st-dongmen", "  已清理占道摊点  ").unwrap();
            assert_eq!(state, case(CaseStatus::Resolved));
            assert_eq!(reply, "已清理占道摊点");
            assert_eq!(case(from).resolve("st-dongmen", " \n"), Err(TransitionError::ReplyMissing));
        }
        let e = case(CaseStatus::Dispatched).resolve("st-dongmen", "ok").unwrap_err();
        assert_eq!(e.to_string(), "case DM20261123-0001 has not been accepted yet: unit st-dongmen must accept it before resolving it");
        assert!(matches!(case(CaseStatus::Resolved).resolve("st-dongmen", "ok"), Err(TransitionError::AlreadyResolved { .. })));
        assert!(matches!(case(CaseStatus::Closed).resolve("st-dongmen", "ok"), Err(TransitionError::AlreadyClosed { .. })));
    }

    #[test]
    fn reply_length_is_counted_in_characters() {
        let max = "答".repeat(MAX_REPLY_CHARS);
        assert_eq!(validate_reply(&max).unwrap().chars().count(), MAX_REPLY_CHARS);
        let e = validate_reply(&format!("{max}答")).unwrap_err();
        assert_eq!(e, TransitionError::ReplyTooLong { chars: MAX_REPLY_CHARS + 1, max: MAX_REPLY_CHARS });
        assert_eq!(validate_reply("已处理\u{1b}[2J"), Err(TransitionError::ControlCharacters { field: "reply" }));
        assert_eq!(validate_reply("已处理。\n第二段"), Ok("已处理。\n第二段".to_string()), "a reply may break lines");
        assert!(validate_person("accepted_by", "王\r五").is_err());
        assert!(e.is_bad_input());
        assert!(!TransitionError::AlreadyClosed { case_no: "x".into() }.is_bad_input());
    }

    #[test]
    fn reopen_from_resolved_or_closed_starts_the_next_round_with_the_same_unit() {
        for from in [CaseStatus::Resolved, CaseStatus::Closed] {
            let Ok(Change::Applied(next)) = case(from).reopen(2) else { panic!("{from} should reopen") };
            assert_eq!(next, CaseState { status: CaseStatus::Reopened, round: 2, ..case(from) });
        }
        for from in [CaseStatus::Dispatched, CaseStatus::Accepted, CaseStatus::Reopened] {
            let e = case(from).reopen(2).unwrap_err();
            assert_eq!(e.to_string(), format!("case DM20261123-0001 cannot be reopened: it is {from}, not resolved"));
        }
    }

    #[test]
    fn a_repeated_reopening_is_a_no_op_and_a_skipped_round_an_error() {
        let mut c = case(CaseStatus::Reopened);
        c.round = 2;
        assert_eq!(c.reopen(2), Ok(Change::Unchanged));
        assert_eq!(c.reopen(1), Ok(Change::Unchanged));
        let e = case(CaseStatus::Resolved).reopen(3).unwrap_err();
        assert_eq!(e.to_string(), "case DM20261123-0001 is in round 1; round 3 does not follow from it");
    }

    #[test]
    fn close_only_a_resolved_case_of_the_current_round() {
        assert_eq!(case(CaseStatus::Resolved).close(1), Ok(Change::Applied(case(CaseStatus::Closed))));
        assert_eq!(case(CaseStatus::Closed).close(1), Ok(Change::Unchanged));
        for from in [CaseStatus::Dispatched, CaseStatus::Accepted, CaseStatus::Reopened] {
            let e = case(from).close(1).unwrap_err();
            assert_eq!(e.to_string(), format!("case DM20261123-0001 cannot be closed: it is {from}, not resolved"));
        }
        let mut c = case(CaseStatus::Accepted);
        c.round = 2;
        assert_eq!(c.close(1), Ok(Change::Unchanged), "a stale verdict on round 1");
        assert!(matches!(case(CaseStatus::Resolved).close(2), Err(TransitionError::RoundMismatch { .. })));
    }

    #[test]
    fn status_round_trips() {
        for s in CaseStatus::ALL {
            assert_eq!(CaseStatus::parse(s.as_str()), Some(s));
            assert_eq!(CaseStatus::from_proto(s.to_proto()), Some(s));
        }
        assert_eq!(CaseStatus::parse("lost"), None);
        assert_eq!(CaseStatus::from_proto(pb::CaseStatus::Unspecified), None);
    }

    #[test]
    fn people_are_named() {
        assert_eq!(validate_person("accepted_by", " 王五 "), Ok("王五".into()));
        assert!(validate_person("accepted_by", "").unwrap_err().starts_with("accepted_by is required"));
        assert!(validate_person("resolved_by", &"王".repeat(51)).unwrap_err().contains("at most 50"));
        assert!(validate_person("resolved_by", "王\u{7}").unwrap_err().contains("control"));
    }

    #[test]
    fn verdicts() {
        use Satisfaction::*;
        assert!(verdict_closes(Satisfied, true));
        assert!(verdict_closes(BasicallySatisfied, true));
        for (s, solved) in
            [(Satisfied, false), (BasicallySatisfied, false), (Dissatisfied, true), (Dissatisfied, false), (Unspecified, true)]
        {
            assert!(!verdict_closes(s, solved), "{s:?} {solved}");
        }
    }

    #[test]
    fn timeline_details() {
        assert_eq!(dispatched_detail("东门街道", &["城市管理委员会"]), "派单至东门街道（协办：城市管理委员会）");
        assert_eq!(dispatched_detail("东门街道", &["城市管理委员会", "海滨社区"]), "派单至东门街道（协办：城市管理委员会、海滨社区）");
        assert_eq!(dispatched_detail("水务局", &[]), "派单至水务局");
        assert_eq!(accepted_detail("东门街道", "王五"), "东门街道已签收（签收人：王五）");
        assert_eq!(resolved_detail("已清理"), "已办结，答复：已清理");
        assert_eq!(reopened_detail("", 2), "回访不满意，重新办理（第2轮）");
        assert_eq!(reopened_detail("回访基本满意但问题未解决", 3), "回访基本满意但问题未解决，重新办理（第3轮）");
        assert_eq!(closed_detail(Satisfaction::Satisfied), "回访满意，已结案");
        assert_eq!(closed_detail(Satisfaction::BasicallySatisfied), "回访基本满意，已结案");
    }
}
