//! Dispatch's rules (派单规则), without I/O: which unit a case goes to under the responsibility
//! matrix (职责清单), how the workflow's stages and reasons read in the API and in the timeline.
//! The handling workflow itself is [`crate::workflow`].

use chrono::NaiveDate;
use jiesu_kit::text::has_control;
use jiesu_proto::v1::{self as pb, Satisfaction};
pub use jiesu_reference::{Organisation, Unit, UnitKind};
use serde::Deserialize;

use crate::workflow::{Action, ReturnReason, Ruling, Stage};

/// A matrix entry's placeholder for "the street office of the place the case is about" (属地管理).
pub const AT_STREET: &str = "@street";
/// A matrix entry's wildcard: any sub-item, any street.
pub const ANY: &str = "*";
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
    /// The first day the rule applies (生效日期), in the district's time zone; always when absent.
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// The first day it no longer applies (失效日期); never when absent.
    #[serde(default)]
    pub until: Option<NaiveDate>,
}

impl Rule {
    /// Whether the rule is in force on `day`.
    pub fn in_force(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|f| f <= day) && self.until.is_none_or(|u| day < u)
    }

    /// Whether two rules are in force on some common day.
    fn overlaps(&self, other: &Rule) -> bool {
        let starts = self.from.max(other.from);
        let ends = match (self.until, other.until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (starts, ends) {
            (Some(s), Some(e)) => s < e,
            _ => true,
        }
    }
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
            if let (Some(from), Some(until)) = (rule.from, rule.until)
                && from >= until
            {
                problems.push(format!("{at}: from {from} is not before until {until}; the rule would never apply"));
            }
            if let Some(j) = self.rules[..i].iter().position(|r| r.sub_item == rule.sub_item && r.street == rule.street && r.overlaps(rule))
            {
                problems.push(format!(
                    "{at}: repeats rule #{} for the same sub_item and street on the same days; which one applies would be ambiguous",
                    j + 1
                ));
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

/// Routes a case of sub-item `sub_item` (or a bare category) at `place` through the rules of
/// the matrix in force on `day` (the district's date of dispatch).
///
/// The most specific rule wins: an exact sub-item before its category before "*", and among
/// those a rule for the case's street before one for "*". "@street" is the street office of the
/// place (its street, else its community's street); a lead of "@street" with no known street,
/// or no rule at all, sends the case to the fallback unit. An assisting "@street" without a
/// known street is left out: the centre is no help as an assisting unit.
pub fn route(matrix: &Matrix, org: &Organisation, sub_item: &str, place: &Place, day: NaiveDate) -> Route {
    let street = org.street_of(&place.street, &place.community);
    let mut best: Option<((u8, u8), usize)> = None;
    for (i, rule) in matrix.rules.iter().enumerate().filter(|(_, r)| r.in_force(day)) {
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
    let dates = match (rule.from, rule.until) {
        (None, None) => String::new(),
        (from, until) => {
            format!(" [{} – {})", from.map(|d| d.to_string()).unwrap_or_default(), until.map(|d| d.to_string()).unwrap_or_default())
        }
    };
    format!("dispatch.matrix[{index}]: {} × {} → {}{assisting}{dates}", rule.sub_item, rule.street, rule.lead)
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

/// The API's status of a workflow stage.
pub fn status_of(stage: Stage) -> pb::CaseStatus {
    match stage {
        Stage::Dispatched => pb::CaseStatus::Dispatched,
        Stage::Reopened => pb::CaseStatus::Reopened,
        Stage::Accepted => pb::CaseStatus::Accepted,
        Stage::Contacted => pb::CaseStatus::Contacted,
        Stage::Verified => pb::CaseStatus::Verified,
        Stage::Replied => pb::CaseStatus::Replied,
        Stage::StagedResolved => pb::CaseStatus::Staged,
        Stage::Resolved => pb::CaseStatus::Resolved,
        Stage::Closed => pb::CaseStatus::Closed,
    }
}

/// The workflow stage of an API status; `None` for `CASE_STATUS_UNSPECIFIED`.
pub fn stage_of(status: pb::CaseStatus) -> Option<Stage> {
    crate::store::STAGES.into_iter().find(|s| status_of(*s) == status)
}

/// A note of a contact or a verification, trimmed: at most [`MAX_NOTE_CHARS`] characters.
pub fn validate_note(note: &str) -> Result<String, crate::workflow::Refusal> {
    let note = crate::workflow::optional_text("the note", note)?;
    let chars = note.chars().count();
    if chars > MAX_NOTE_CHARS {
        return Err(crate::workflow::Refusal {
            rule: "text-too-long",
            why: format!("the note is {chars} characters long; at most {MAX_NOTE_CHARS} are allowed"),
        });
    }
    Ok(note)
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

/// "已联系市民（联系人：王五）：约定上门核实"
pub fn contacted_detail(contacted_by: &str, note: &str) -> String {
    if note.is_empty() {
        format!("已联系市民（联系人：{contacted_by}）")
    } else {
        format!("已联系市民（联系人：{contacted_by}）：{note}")
    }
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

/// The timeline line of a workflow action (办理记录), in Chinese; `name` gives a unit's or a
/// leader's name from its id, dates are the district's (`tz`).
pub fn action_detail(action: &Action, name: &dyn Fn(&str) -> String, tz: chrono_tz::Tz) -> String {
    match action {
        Action::Accept => "已签收".to_string(),
        Action::Contact => "已联系市民".to_string(),
        Action::Verify => "已核实".to_string(),
        Action::Reply { letter } => {
            let mut text = format!("已答复：{}", letter.handling);
            if !letter.verification.is_empty() {
                text.push_str(&format!("（核实情况：{}）", letter.verification));
            }
            if !letter.next_steps.is_empty() {
                text.push_str(&format!("；下一步措施：{}", letter.next_steps));
            }
            text
        }
        Action::Resolve => "已办结".to_string(),
        Action::StageResolve { next_check } => {
            format!("阶段性办结，{}复查", next_check.with_timezone(&tz).format("%Y-%m-%d"))
        }
        Action::Return { reason, text } => format!("申请退回（{}）：{text}", return_reason_zh(*reason)),
        Action::ReviewReturn(Ruling::Redispatch { to }) => format!("退回审核通过，改派至{}", name(to)),
        Action::ReviewReturn(Ruling::SendBack { reason }) => format!("退回审核不通过，请原单位继续办理：{reason}"),
        Action::Dispatch { to } => format!("人工派单至{}", name(to)),
        Action::Transfer { to, reason } => format!("改派至{}：{reason}", name(to)),
        Action::AddAssisting { unit, .. } => format!("增加协办单位{}", name(unit)),
        Action::AcceptAssist => "协办单位已签收".to_string(),
        Action::AnswerAssist { answer } => format!("协办单位答复：{answer}"),
        Action::RequestExtension { until, reason } => {
            format!("申请延期至{}：{reason}", until.with_timezone(&tz).format("%Y-%m-%d %H:%M"))
        }
        Action::DecideExtension { approve: true } => "延期申请已批准".to_string(),
        Action::DecideExtension { approve: false } => "延期申请未批准".to_string(),
        Action::Escalate { leader } => format!("提级至{}包案", name(leader)),
        Action::Supervise { note } => format!("督办：{note}"),
        Action::Reopen => "重新办理".to_string(),
        Action::Close => "已结案".to_string(),
        Action::CloseAsUnreasonable { explanation } => format!("按不合理诉求结案，向市民说明：{explanation}"),
    }
}

/// The Chinese name of a return reason (退回原因).
pub fn return_reason_zh(reason: ReturnReason) -> &'static str {
    match reason {
        ReturnReason::NotOurRemit => "不属于本单位职责",
        ReturnReason::WrongPlace => "地址或信息有误",
        ReturnReason::Unclear => "诉求不清，无法办理",
        ReturnReason::Other => "其他",
    }
}

/// The workflow's return reason of the API's; `None` for `RETURN_REASON_UNSPECIFIED`.
pub fn return_reason_of(reason: pb::ReturnReason) -> Option<ReturnReason> {
    match reason {
        pb::ReturnReason::Unspecified => None,
        pb::ReturnReason::NotOurRemit => Some(ReturnReason::NotOurRemit),
        pb::ReturnReason::WrongPlace => Some(ReturnReason::WrongPlace),
        pb::ReturnReason::Unclear => Some(ReturnReason::Unclear),
        pb::ReturnReason::Other => Some(ReturnReason::Other),
    }
}

/// The API's return reason.
pub fn return_reason_to_proto(reason: ReturnReason) -> pb::ReturnReason {
    match reason {
        ReturnReason::NotOurRemit => pb::ReturnReason::NotOurRemit,
        ReturnReason::WrongPlace => pb::ReturnReason::WrongPlace,
        ReturnReason::Unclear => pb::ReturnReason::Unclear,
        ReturnReason::Other => pb::ReturnReason::Other,
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
        Unit { id: id.into(), name: name.into(), kind, parent: parent.map(Into::into), duty: vec![], hours: None }
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
            ..Default::default()
        }
    }

    fn rule(sub_item: &str, street: &str, lead: &str, assisting: &[&str]) -> Rule {
        Rule {
            sub_item: sub_item.into(),
            street: street.into(),
            lead: lead.into(),
            assisting: assisting.iter().map(|s| s.to_string()).collect(),
            from: None,
            until: None,
        }
    }

    /// Routing on a day no dated rule of these tests cares about.
    fn route(matrix: &Matrix, org: &Organisation, sub_item: &str, place: &Place) -> Route {
        super::route(matrix, org, sub_item, place, day("2026-12-01"))
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_rule_applies_from_its_first_day_until_the_day_it_ends() {
        // The street took over parking from 2027: the old rule ends when the new one begins.
        let old = Rule { until: Some(day("2027-01-01")), ..rule("01.03", "*", "dept-urban-management", &[]) };
        let new = Rule { from: Some(day("2027-01-01")), ..rule("01.03", "*", "@street", &[]) };
        let m = matrix(vec![old, new]);
        assert!(m.problems(&org()).is_empty(), "{:?}", m.problems(&org()));
        let on = |d: &str| super::route(&m, &org(), "01.03", &at("st-dongmen"), day(d)).lead;
        assert_eq!(on("2026-12-31"), "dept-urban-management");
        assert_eq!(on("2027-01-01"), "st-dongmen");
        assert!(describe_rule(1, &m.rules[1]).ends_with("[2027-01-01 – )"), "{}", describe_rule(1, &m.rules[1]));
        // Overlapping days are ambiguous; an empty range never applies.
        let overlapping =
            matrix(vec![Rule { until: Some(day("2027-02-01")), ..m.rules[0].clone() }, m.rules[1].clone()]).problems(&org()).join("\n");
        assert!(overlapping.contains("on the same days"), "{overlapping}");
        let empty = matrix(vec![Rule { from: Some(day("2027-01-01")), until: Some(day("2027-01-01")), ..rule("01", "*", "@street", &[]) }]);
        assert!(empty.problems(&org()).join("").contains("is not before until"));
        // Outside every rule's days: the fallback.
        let only_new = matrix(vec![m.rules[1].clone()]);
        assert_eq!(super::route(&only_new, &org(), "01.03", &at("st-dongmen"), day("2026-06-01")).lead, "centre");
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

    // ---------------------------------------------------------------- stages and the timeline

    #[test]
    fn every_stage_has_its_own_status() {
        for stage in crate::store::STAGES {
            assert_eq!(stage_of(status_of(stage)), Some(stage));
            assert_eq!(crate::store::parse_stage(crate::store::stage_key(stage)), Some(stage));
        }
        assert_eq!(stage_of(pb::CaseStatus::Unspecified), None);
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
        assert_eq!(reopened_detail("", 2), "回访不满意，重新办理（第2轮）");
        assert_eq!(reopened_detail("回访基本满意但问题未解决", 3), "回访基本满意但问题未解决，重新办理（第3轮）");
        assert_eq!(closed_detail(Satisfaction::Satisfied), "回访满意，已结案");
        assert_eq!(closed_detail(Satisfaction::BasicallySatisfied), "回访基本满意，已结案");
        let name = |id: &str| if id == "dept-water" { "水务局".to_string() } else { id.to_string() };
        let ret = Action::Return { reason: ReturnReason::NotOurRemit, text: "属于供水问题".into() };
        assert_eq!(action_detail(&ret, &name, chrono_tz::Asia::Shanghai), "申请退回（不属于本单位职责）：属于供水问题");
        assert_eq!(
            action_detail(&Action::ReviewReturn(Ruling::Redispatch { to: "dept-water".into() }), &name, chrono_tz::Asia::Shanghai),
            "退回审核通过，改派至水务局"
        );
        let until = chrono::DateTime::parse_from_rfc3339("2026-12-10T10:00:00+08:00").unwrap().to_utc();
        assert_eq!(
            action_detail(&Action::RequestExtension { until, reason: "需协调".into() }, &name, chrono_tz::Asia::Shanghai),
            "申请延期至2026-12-10 10:00：需协调"
        );
    }

    #[test]
    fn every_return_reason_maps_both_ways() {
        for r in [ReturnReason::NotOurRemit, ReturnReason::WrongPlace, ReturnReason::Unclear, ReturnReason::Other] {
            assert_eq!(return_reason_of(return_reason_to_proto(r)), Some(r));
            assert!(!return_reason_zh(r).is_empty());
        }
    }
}
