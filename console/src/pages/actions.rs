//! The actions on a case page (办理操作): which the signed-in person may take here and now
//! ([`available`], pure and tested), the form of each with its fields, the checks made next to
//! each field before anything is sent, and the call that does it — as the person, so the
//! service's own rules have the last word, and its refusal is explained in Chinese.

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, TimeZone};
use jiesu_kit::auth::Role;
use jiesu_proto::v1::{
    AcceptAssistRequest, AcceptRequest, AddAssistingRequest, AnswerAssistRequest, CaseRef, CaseStatus, CaseView,
    CloseAsUnreasonableRequest, ConfirmClassificationRequest, ContactRequest, DecideExtensionRequest, DispatchRequest, EscalateRequest,
    ReclassifyRequest, RecordRequest, ReplyRequest, RequestExtensionRequest, ResolveRequest, ResponseLetter, ReturnReason, ReturnRequest,
    ReviewReturnRequest, Satisfaction, StageResolveRequest, SuperviseRequest, TransferRequest, Urgency, VerifyRequest,
};

use crate::{accounts::Account, services::Caller, view::refusal_zh};

/// Every action of the case page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Accept,
    Contact,
    Verify,
    Reply,
    Resolve,
    StageResolve,
    Return,
    RequestExtension,
    AddAssisting,
    AcceptAssist,
    AnswerAssist,
    Dispatch,
    ReviewReturn,
    DecideExtension,
    Transfer,
    Escalate,
    Supervise,
    CloseUnreasonable,
    ConfirmClassification,
    Reclassify,
    RecordRevisit,
}

impl ActionKind {
    pub const ALL: [ActionKind; 21] = [
        ActionKind::Accept,
        ActionKind::Contact,
        ActionKind::Verify,
        ActionKind::Reply,
        ActionKind::Resolve,
        ActionKind::StageResolve,
        ActionKind::Return,
        ActionKind::RequestExtension,
        ActionKind::AddAssisting,
        ActionKind::AcceptAssist,
        ActionKind::AnswerAssist,
        ActionKind::Dispatch,
        ActionKind::ReviewReturn,
        ActionKind::DecideExtension,
        ActionKind::Transfer,
        ActionKind::Escalate,
        ActionKind::Supervise,
        ActionKind::CloseUnreasonable,
        ActionKind::ConfirmClassification,
        ActionKind::Reclassify,
        ActionKind::RecordRevisit,
    ];

    pub fn id(self) -> &'static str {
        match self {
            ActionKind::Accept => "accept",
            ActionKind::Contact => "contact",
            ActionKind::Verify => "verify",
            ActionKind::Reply => "reply",
            ActionKind::Resolve => "resolve",
            ActionKind::StageResolve => "stage",
            ActionKind::Return => "return",
            ActionKind::RequestExtension => "extension",
            ActionKind::AddAssisting => "assist",
            ActionKind::AcceptAssist => "assist-accept",
            ActionKind::AnswerAssist => "assist-answer",
            ActionKind::Dispatch => "dispatch",
            ActionKind::ReviewReturn => "review-return",
            ActionKind::DecideExtension => "decide-extension",
            ActionKind::Transfer => "transfer",
            ActionKind::Escalate => "escalate",
            ActionKind::Supervise => "supervise",
            ActionKind::CloseUnreasonable => "unreasonable",
            ActionKind::ConfirmClassification => "confirm-class",
            ActionKind::Reclassify => "reclassify",
            ActionKind::RecordRevisit => "revisit",
        }
    }

    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.id() == id)
    }

    /// The form's title.
    pub fn label(self) -> &'static str {
        match self {
            ActionKind::Accept => "签收",
            ActionKind::Contact => "联系群众",
            ActionKind::Verify => "核实情况",
            ActionKind::Reply => "答复（处理意见书）",
            ActionKind::Resolve => "办结",
            ActionKind::StageResolve => "阶段性办结",
            ActionKind::Return => "退回中心",
            ActionKind::RequestExtension => "申请延期",
            ActionKind::AddAssisting => "吹哨：增加协办单位",
            ActionKind::AcceptAssist => "协办签收",
            ActionKind::AnswerAssist => "协办答复",
            ActionKind::Dispatch => "人工派单",
            ActionKind::ReviewReturn => "审核退回",
            ActionKind::DecideExtension => "审批延期",
            ActionKind::Transfer => "改派",
            ActionKind::Escalate => "提级（领导包案）",
            ActionKind::Supervise => "督办",
            ActionKind::CloseUnreasonable => "按不合理诉求办结",
            ActionKind::ConfirmClassification => "确认分类",
            ActionKind::Reclassify => "重新分类",
            ActionKind::RecordRevisit => "回访登记",
        }
    }

    /// Whether its form picks a unit, a leader or a sub-item (the organisation or the taxonomy).
    pub fn needs_choices(self) -> bool {
        matches!(
            self,
            ActionKind::Dispatch
                | ActionKind::Transfer
                | ActionKind::AddAssisting
                | ActionKind::ReviewReturn
                | ActionKind::Escalate
                | ActionKind::Reclassify
        )
    }

    /// What the page says when it is done.
    pub fn done(self) -> &'static str {
        match self {
            ActionKind::Accept => "已签收。",
            ActionKind::Contact => "已记录联系群众。",
            ActionKind::Verify => "已记录核实情况。",
            ActionKind::Reply => "处理意见书已提交。",
            ActionKind::Resolve => "已办结，等待回访。",
            ActionKind::StageResolve => "已阶段性办结。",
            ActionKind::Return => "已退回中心，等待审核。",
            ActionKind::RequestExtension => "延期申请已提交，等待中心审批。",
            ActionKind::AddAssisting => "已增加协办单位。",
            ActionKind::AcceptAssist => "协办已签收。",
            ActionKind::AnswerAssist => "协办答复已提交。",
            ActionKind::Dispatch => "已派单。",
            ActionKind::ReviewReturn => "退回已审核。",
            ActionKind::DecideExtension => "延期已审批。",
            ActionKind::Transfer => "已改派。",
            ActionKind::Escalate => "已提级。",
            ActionKind::Supervise => "已督办。",
            ActionKind::CloseUnreasonable => "已按不合理诉求办结。",
            ActionKind::ConfirmClassification => "分类已确认。",
            ActionKind::Reclassify => "已重新分类。",
            ActionKind::RecordRevisit => "回访已登记。",
        }
    }
}

/// What decides which actions a person may take on a case.
pub struct Situation<'a> {
    pub account: &'a Account,
    pub case: &'a CaseView,
    /// The classification waits for a person (人工复核).
    pub review_waiting: bool,
}

/// The actions the person may take on the case now, in the order of the work.
pub fn available(s: &Situation<'_>) -> Vec<ActionKind> {
    use ActionKind as A;
    let case = s.case;
    let status = CaseStatus::try_from(case.status).unwrap_or(CaseStatus::Unspecified);
    let closed = status == CaseStatus::Closed;
    let handled = matches!(status, CaseStatus::Resolved | CaseStatus::Closed);
    // Not in dispatch yet (its classification waits for a person): only the review is open.
    if status == CaseStatus::Unspecified && !case.manual_queue && case.unit_id.is_empty() {
        return if s.review_waiting && s.account.has(Role::CentreAgent) {
            vec![A::ConfirmClassification, A::Reclassify]
        } else {
            Vec::new()
        };
    }
    let mut out = Vec::new();
    let unit = s.account.unit.as_deref().filter(|_| s.account.is_unit());
    let owner = unit.is_some_and(|u| !case.unit_id.is_empty() && u == case.unit_id);
    if owner && !handled && case.pending_return.is_none() {
        match status {
            CaseStatus::Dispatched | CaseStatus::Reopened => out.extend([A::Accept, A::Return]),
            CaseStatus::Accepted => out.extend([A::Contact, A::Return, A::RequestExtension]),
            CaseStatus::Contacted | CaseStatus::Verified | CaseStatus::Replied | CaseStatus::Staged => {
                if status == CaseStatus::Contacted {
                    out.push(A::Verify);
                }
                out.extend([A::Reply, A::Resolve, A::StageResolve, A::AddAssisting]);
                if case.pending_extension.is_none() {
                    out.push(A::RequestExtension);
                }
            }
            _ => {}
        }
    }
    if let Some(unit) = unit
        && let Some(part) = case.parts.iter().find(|p| p.unit_id == unit)
        && !handled
    {
        if !part.accepted {
            out.push(A::AcceptAssist);
        } else if !part.answered {
            out.push(A::AnswerAssist);
        }
    }
    let agent = s.account.has(Role::CentreAgent);
    if agent && !closed {
        if s.review_waiting {
            out.extend([A::ConfirmClassification, A::Reclassify]);
        }
        if case.manual_queue {
            out.push(A::Dispatch);
        }
        if case.pending_return.is_some() {
            out.push(A::ReviewReturn);
        }
        if case.pending_extension.is_some() {
            out.push(A::DecideExtension);
        }
        if !case.unit_id.is_empty() && !handled {
            out.extend([A::Transfer, A::AddAssisting]);
            if case.leader_id.is_empty() {
                out.push(A::Escalate);
            }
        }
        if !handled {
            out.push(A::CloseUnreasonable);
        }
    }
    let leader_of_case = s.account.has(Role::Leader) && !case.leader_id.is_empty() && s.account.token_subject() == case.leader_id;
    if (agent || s.account.has(Role::CentreSupervisor) || leader_of_case) && !handled && !case.case_no.is_empty() {
        out.push(A::Supervise);
    }
    if s.account.has(Role::RevisitAgent) && status == CaseStatus::Resolved {
        out.push(A::RecordRevisit);
    }
    let mut seen = Vec::new();
    out.retain(|a| {
        let new = !seen.contains(a);
        seen.push(*a);
        new
    });
    out
}

/// One field of an action's form.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    /// `textarea`, `text`, `select`, `radio`, `datetime-local`
    pub kind: &'static str,
    pub hint: &'static str,
    pub options: Vec<(String, String)>,
    pub value: String,
    pub error: String,
}

/// An action's form, as the case page shows it.
#[derive(Debug, Clone)]
pub struct ActionForm {
    pub id: &'static str,
    pub label: &'static str,
    pub submit: &'static str,
    pub hint: &'static str,
    pub fields: Vec<Field>,
    /// The service's refusal, explained.
    pub error: String,
    /// Shown open: it was just sent and came back with a problem.
    pub open: bool,
}

/// What the selects offer: units, leaders, sub-items (value, shown).
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub units: Vec<(String, String)>,
    pub leaders: Vec<(String, String)>,
    pub sub_items: Vec<(String, String)>,
}

/// What was typed into a form, by field name.
pub type Values = BTreeMap<String, String>;

/// Field errors by field name.
pub type Errors = BTreeMap<&'static str, String>;

fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(v, l)| (v.to_string(), l.to_string())).collect()
}

fn field(name: &'static str, label: &'static str, kind: &'static str, hint: &'static str) -> Field {
    Field { name, label, kind, hint, options: Vec::new(), value: String::new(), error: String::new() }
}

fn choose(name: &'static str, label: &'static str, options: Vec<(String, String)>) -> Field {
    Field { options, ..field(name, label, "select", "") }
}

fn radio(name: &'static str, label: &'static str, options: Vec<(String, String)>) -> Field {
    Field { options, ..field(name, label, "radio", "") }
}

/// The fields and the hint of an action.
fn fields(kind: ActionKind, choices: &Choices) -> (Vec<Field>, &'static str, &'static str) {
    use ActionKind as A;
    let letter = || {
        vec![
            field("verification", "核实情况", "textarea", "（可选）"),
            field("handling", "处理结果", "textarea", "（必填，将答复群众）"),
            field("next_steps", "下一步措施", "textarea", "（可选）"),
        ]
    };
    match kind {
        A::Accept => (vec![], "签收后由本单位负责办理到底（首接负责）。", "签收"),
        A::Contact => (vec![field("note", "联系情况", "textarea", "（可选，500 字以内）")], "", "记录联系"),
        A::Verify => (vec![field("note", "核实情况", "textarea", "（必填）")], "", "记录核实"),
        A::Reply => (letter(), "", "提交处理意见书"),
        A::Resolve => (
            vec![field("reply", "答复内容", "textarea", "（已提交处理意见书的可不填）")],
            "办结后进入回访；还有协办单位未答复时不能办结。",
            "办结",
        ),
        A::StageResolve => (
            vec![field("next_check", "复查时间", "datetime-local", ""), field("note", "说明", "textarea", "（必填）")],
            "一时无法彻底解决的，先办到能办的程度，并约定复查时间。",
            "阶段性办结",
        ),
        A::Return => (
            vec![
                radio(
                    "reason",
                    "退回原因",
                    opts(&[
                        ("not_our_remit", "不属于本单位职责"),
                        ("wrong_place", "地址或信息有误"),
                        ("unclear", "诉求不清，无法办理"),
                        ("other", "其他"),
                    ]),
                ),
                field("text", "说明", "textarea", "（必填，供中心审核）"),
            ],
            "须在退回时限内、联系群众之前退回。",
            "退回",
        ),
        A::RequestExtension => (
            vec![field("until", "延期至", "datetime-local", ""), field("reason", "延期理由", "textarea", "（必填）")],
            "须在时限到期前申请，由中心审批；原时限仍计入统计。",
            "提交申请",
        ),
        A::AddAssisting => (
            vec![
                choose("unit", "协办单位", choices.units.clone()),
                field("deadline", "协办时限", "datetime-local", "（不填则与主办时限相同）"),
                field("note", "协办事项", "textarea", "（可选）"),
            ],
            "",
            "增加协办",
        ),
        A::AcceptAssist => (vec![], "", "协办签收"),
        A::AnswerAssist => (vec![field("answer", "协办答复", "textarea", "（必填）")], "", "提交答复"),
        A::Dispatch => {
            (vec![choose("unit", "派往单位", choices.units.clone()), field("reason", "派单说明", "textarea", "（可选）")], "", "派单")
        }
        A::ReviewReturn => (
            vec![
                radio("uphold", "审核结果", opts(&[("yes", "同意退回，改派其他单位"), ("no", "不同意，退回原单位继续办理")])),
                choose("unit", "改派单位", choices.units.clone()),
                field("ruling", "审核意见", "textarea", "（不同意退回时必填）"),
            ],
            "",
            "提交审核",
        ),
        A::DecideExtension => (
            vec![
                radio("approve", "审批结果", opts(&[("yes", "同意延期"), ("no", "不同意")])),
                field("reason", "审批意见", "textarea", "（可选）"),
            ],
            "",
            "提交审批",
        ),
        A::Transfer => {
            (vec![choose("unit", "改派至", choices.units.clone()), field("reason", "改派理由", "textarea", "（必填）")], "", "改派")
        }
        A::Escalate => {
            (vec![choose("leader", "包案领导", choices.leaders.clone()), field("reason", "提级理由", "textarea", "（必填）")], "", "提级")
        }
        A::Supervise => (vec![field("note", "督办意见", "textarea", "（必填）")], "", "督办"),
        A::CloseUnreasonable => {
            (vec![field("explanation", "向群众的解释", "textarea", "（必填，将告知群众）")], "用于明显不合理的诉求；将标记供复核。", "办结")
        }
        A::ConfirmClassification => (vec![field("note", "说明", "text", "（可选）")], "确认模型的分类无误，进入派单。", "确认"),
        A::Reclassify => (
            vec![
                choose("sub_item", "正确的小类", choices.sub_items.clone()),
                radio("urgency", "紧急程度", opts(&[("", "不变"), ("normal", "一般"), ("emergency", "紧急"), ("complex", "复杂")])),
                field("note", "说明", "text", "（可选）"),
            ],
            "",
            "重新分类",
        ),
        A::RecordRevisit => (
            vec![
                radio(
                    "satisfaction",
                    "群众评价",
                    opts(&[("satisfied", "满意"), ("basically_satisfied", "基本满意"), ("dissatisfied", "不满意")]),
                ),
                radio("solved", "问题是否解决", opts(&[("yes", "已解决"), ("no", "未解决")])),
                field("comment", "群众意见", "textarea", "（可选）"),
            ],
            "不满意或未解决的，诉求将重启，退回原承办单位重办。",
            "登记",
        ),
    }
}

/// The form of `kind`, filled with what was typed, its errors next to their fields.
pub fn form(kind: ActionKind, choices: &Choices, values: &Values, errors: &Errors, error: &str) -> ActionForm {
    let (mut fields, hint, submit) = fields(kind, choices);
    for f in &mut fields {
        f.value = values.get(f.name).cloned().unwrap_or_default();
        f.error = errors.get(f.name).cloned().unwrap_or_default();
    }
    let open = !errors.is_empty() || !error.is_empty();
    ActionForm { id: kind.id(), label: kind.label(), submit, hint, fields, error: error.to_string(), open }
}

/// How an action came out.
#[derive(Debug)]
pub enum Outcome {
    Done,
    /// The form is not complete or not right: field by field.
    Fields(Errors),
    /// The service refused: why, in Chinese.
    Refused(String),
}

fn text<'a>(values: &'a Values, name: &str) -> &'a str {
    values.get(name).map(|s| s.trim()).unwrap_or_default()
}

/// A required text of at most `max` characters.
fn required(values: &Values, name: &'static str, max: usize, errors: &mut Errors) -> String {
    let t = text(values, name);
    if t.is_empty() {
        errors.insert(name, "请填写".into());
    } else if t.chars().count() > max {
        errors.insert(name, format!("不超过 {max} 字"));
    }
    t.to_string()
}

fn optional(values: &Values, name: &'static str, max: usize, errors: &mut Errors) -> String {
    let t = text(values, name);
    if t.chars().count() > max {
        errors.insert(name, format!("不超过 {max} 字"));
    }
    t.to_string()
}

/// A `datetime-local` value in the district's zone, in the future.
fn future_time(
    values: &Values,
    name: &'static str,
    zone: chrono_tz::Tz,
    required: bool,
    errors: &mut Errors,
) -> Option<prost_types::Timestamp> {
    let t = text(values, name);
    if t.is_empty() {
        if required {
            errors.insert(name, "请选择时间".into());
        }
        return None;
    }
    let parsed = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M").or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S"));
    match parsed.ok().and_then(|n| zone.from_local_datetime(&n).earliest()) {
        Some(local) if local.with_timezone(&chrono::Utc) > chrono::Utc::now() => {
            Some(jiesu_kit::time::to_proto(local.with_timezone(&chrono::Utc)))
        }
        Some(_) => {
            errors.insert(name, "须是将来的时间".into());
            None
        }
        None => {
            errors.insert(name, "时间格式应为 2026-12-31T17:30".into());
            None
        }
    }
}

fn pick(values: &Values, name: &'static str, allowed: &[(String, String)], errors: &mut Errors) -> String {
    let v = text(values, name);
    if v.is_empty() {
        errors.insert(name, "请选择".into());
    } else if !allowed.iter().any(|(id, _)| id == v) {
        errors.insert(name, "不是可选的一项".into());
    }
    v.to_string()
}

fn yes_no(values: &Values, name: &'static str, errors: &mut Errors) -> bool {
    match text(values, name) {
        "yes" => true,
        "no" => false,
        _ => {
            errors.insert(name, "请选择".into());
            false
        }
    }
}

/// Checks the form, then does the action as the person.
pub async fn perform(kind: ActionKind, caller: &Caller, case: CaseRef, values: &Values, choices: &Choices, zone: chrono_tz::Tz) -> Outcome {
    use ActionKind as A;
    let mut e = Errors::new();
    let c = Some(case);
    let dispatch = caller.dispatch();
    // Builds the request after the checks; sends it only when every field is right.
    macro_rules! call {
        ($client:expr, $method:ident, $request:expr) => {{
            let request = $request;
            if !e.is_empty() {
                return Outcome::Fields(e);
            }
            let mut client = $client;
            match client.$method(caller.req(request)).await {
                Ok(_) => Outcome::Done,
                Err(status) => Outcome::Refused(refusal_zh(&status)),
            }
        }};
    }
    match kind {
        A::Accept => call!(dispatch, accept, AcceptRequest { case: c, ..Default::default() }),
        A::Contact => {
            let note = optional(values, "note", 500, &mut e);
            call!(dispatch, contact, ContactRequest { case: c, note, ..Default::default() })
        }
        A::Verify => {
            let note = required(values, "note", 500, &mut e);
            call!(dispatch, verify, VerifyRequest { case: c, note })
        }
        A::Reply => {
            let letter = ResponseLetter {
                verification: optional(values, "verification", 2000, &mut e),
                handling: required(values, "handling", 2000, &mut e),
                next_steps: optional(values, "next_steps", 2000, &mut e),
            };
            call!(dispatch, reply, ReplyRequest { case: c, letter: Some(letter) })
        }
        A::Resolve => {
            let reply = optional(values, "reply", 2000, &mut e);
            call!(dispatch, resolve, ResolveRequest { case: c, reply, ..Default::default() })
        }
        A::StageResolve => {
            let next_check = future_time(values, "next_check", zone, true, &mut e);
            let note = required(values, "note", 2000, &mut e);
            call!(dispatch, stage_resolve, StageResolveRequest { case: c, next_check, note })
        }
        A::Return => {
            let reason = match text(values, "reason") {
                "not_our_remit" => ReturnReason::NotOurRemit,
                "wrong_place" => ReturnReason::WrongPlace,
                "unclear" => ReturnReason::Unclear,
                "other" => ReturnReason::Other,
                _ => {
                    e.insert("reason", "请选择退回原因".into());
                    ReturnReason::Unspecified
                }
            };
            let text = required(values, "text", 2000, &mut e);
            call!(dispatch, r#return, ReturnRequest { case: c, reason: reason as i32, text })
        }
        A::RequestExtension => {
            let until = future_time(values, "until", zone, true, &mut e);
            let reason = required(values, "reason", 2000, &mut e);
            call!(dispatch, request_extension, RequestExtensionRequest { case: c, until, reason })
        }
        A::AddAssisting => {
            let unit_id = pick(values, "unit", &choices.units, &mut e);
            let deadline = future_time(values, "deadline", zone, false, &mut e);
            let note = optional(values, "note", 500, &mut e);
            call!(dispatch, add_assisting, AddAssistingRequest { case: c, unit_id, deadline, note })
        }
        A::AcceptAssist => call!(dispatch, accept_assist, AcceptAssistRequest { case: c, ..Default::default() }),
        A::AnswerAssist => {
            let answer = required(values, "answer", 2000, &mut e);
            call!(dispatch, answer_assist, AnswerAssistRequest { case: c, answer, ..Default::default() })
        }
        A::Dispatch => {
            let to_unit_id = pick(values, "unit", &choices.units, &mut e);
            let reason = optional(values, "reason", 500, &mut e);
            call!(dispatch, dispatch, DispatchRequest { case: c, to_unit_id, reason })
        }
        A::ReviewReturn => {
            let uphold = yes_no(values, "uphold", &mut e);
            let (to_unit_id, ruling) = if uphold {
                (pick(values, "unit", &choices.units, &mut e), optional(values, "ruling", 2000, &mut e))
            } else {
                (String::new(), if e.contains_key("uphold") { String::new() } else { required(values, "ruling", 2000, &mut e) })
            };
            call!(dispatch, review_return, ReviewReturnRequest { case: c, uphold, to_unit_id, ruling })
        }
        A::DecideExtension => {
            let approve = yes_no(values, "approve", &mut e);
            let reason = optional(values, "reason", 500, &mut e);
            call!(dispatch, decide_extension, DecideExtensionRequest { case: c, approve, reason })
        }
        A::Transfer => {
            let to_unit_id = pick(values, "unit", &choices.units, &mut e);
            let reason = required(values, "reason", 500, &mut e);
            call!(dispatch, transfer, TransferRequest { case: c, to_unit_id, reason })
        }
        A::Escalate => {
            let leader_id = pick(values, "leader", &choices.leaders, &mut e);
            let reason = required(values, "reason", 500, &mut e);
            call!(dispatch, escalate, EscalateRequest { case: c, leader_id, reason })
        }
        A::Supervise => {
            let note = required(values, "note", 500, &mut e);
            call!(dispatch, supervise, SuperviseRequest { case: c, note })
        }
        A::CloseUnreasonable => {
            let explanation = required(values, "explanation", 2000, &mut e);
            call!(dispatch, close_as_unreasonable, CloseAsUnreasonableRequest { case: c, explanation })
        }
        A::ConfirmClassification => {
            let note = optional(values, "note", 500, &mut e);
            call!(caller.classification(), confirm_classification, ConfirmClassificationRequest { case: c, note })
        }
        A::Reclassify => {
            let sub_item = pick(values, "sub_item", &choices.sub_items, &mut e);
            let urgency = match text(values, "urgency") {
                "normal" => Urgency::Normal,
                "emergency" => Urgency::Emergency,
                "complex" => Urgency::Complex,
                _ => Urgency::Unspecified,
            };
            let note = optional(values, "note", 500, &mut e);
            call!(
                caller.classification(),
                reclassify,
                ReclassifyRequest { case: c, sub_item, urgency: urgency as i32, request_type: String::new(), note }
            )
        }
        A::RecordRevisit => {
            let satisfaction = match text(values, "satisfaction") {
                "satisfied" => Satisfaction::Satisfied,
                "basically_satisfied" => Satisfaction::BasicallySatisfied,
                "dissatisfied" => Satisfaction::Dissatisfied,
                _ => {
                    e.insert("satisfaction", "请选择群众评价".into());
                    Satisfaction::Unspecified
                }
            };
            let solved = yes_no(values, "solved", &mut e);
            let comment = optional(values, "comment", 500, &mut e);
            call!(
                caller.revisit(),
                record,
                RecordRequest { case: c, satisfaction: satisfaction as i32, solved, comment, recorded_by: String::new() }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiesu_proto::v1::{AssistingPart, PendingExtension, PendingReturn};

    fn case(status: CaseStatus) -> CaseView {
        CaseView { case_no: "DM1".into(), status: status as i32, unit_id: "st-dongmen".into(), round: 1, ..Default::default() }
    }

    fn actions(a: &Account, c: &CaseView) -> Vec<ActionKind> {
        available(&Situation { account: a, case: c, review_waiting: false })
    }

    use ActionKind as A;

    #[test]
    fn the_owner_works_step_by_step() {
        let handler = Account::sample(&[Role::UnitHandler], Some("st-dongmen"));
        assert_eq!(actions(&handler, &case(CaseStatus::Dispatched)), [A::Accept, A::Return]);
        assert_eq!(actions(&handler, &case(CaseStatus::Accepted)), [A::Contact, A::Return, A::RequestExtension]);
        assert_eq!(
            actions(&handler, &case(CaseStatus::Contacted)),
            [A::Verify, A::Reply, A::Resolve, A::StageResolve, A::AddAssisting, A::RequestExtension]
        );
        assert!(actions(&handler, &case(CaseStatus::Resolved)).is_empty());
        assert!(actions(&handler, &case(CaseStatus::Closed)).is_empty());
        let waiting = CaseView { pending_return: Some(PendingReturn::default()), ..case(CaseStatus::Accepted) };
        assert!(actions(&handler, &waiting).is_empty(), "a return waits for the centre");
        let extending = CaseView { pending_extension: Some(PendingExtension::default()), ..case(CaseStatus::Contacted) };
        assert!(!actions(&handler, &extending).contains(&A::RequestExtension));
    }

    #[test]
    fn another_unit_sees_nothing_to_do_unless_it_assists() {
        let other = Account::sample(&[Role::UnitHandler], Some("st-xinan"));
        assert!(actions(&other, &case(CaseStatus::Contacted)).is_empty());
        let mut joint = case(CaseStatus::Contacted);
        joint.parts.push(AssistingPart { unit_id: "st-xinan".into(), ..Default::default() });
        assert_eq!(actions(&other, &joint), [A::AcceptAssist]);
        joint.parts[0].accepted = true;
        assert_eq!(actions(&other, &joint), [A::AnswerAssist]);
        joint.parts[0].answered = true;
        assert!(actions(&other, &joint).is_empty());
    }

    #[test]
    fn the_centre_rules_dispatches_and_steers() {
        let agent = Account::sample(&[Role::CentreAgent], None);
        let queued = CaseView { unit_id: String::new(), manual_queue: true, ..case(CaseStatus::Unspecified) };
        assert_eq!(actions(&agent, &queued), [A::Dispatch, A::CloseUnreasonable, A::Supervise]);
        let returned = CaseView { pending_return: Some(PendingReturn::default()), ..case(CaseStatus::Accepted) };
        let got = actions(&agent, &returned);
        assert!(got.starts_with(&[A::ReviewReturn]) && got.contains(&A::Transfer) && got.contains(&A::Escalate), "{got:?}");
        let extension = CaseView { pending_extension: Some(PendingExtension::default()), ..case(CaseStatus::Contacted) };
        assert!(actions(&agent, &extension).contains(&A::DecideExtension));
        let escalated = CaseView { leader_id: "leader-li".into(), ..case(CaseStatus::Accepted) };
        assert!(!actions(&agent, &escalated).contains(&A::Escalate));
        let review = available(&Situation { account: &agent, case: &case(CaseStatus::Dispatched), review_waiting: true });
        assert!(review.starts_with(&[A::ConfirmClassification, A::Reclassify]));
        let unplaced = CaseView { case_no: "DM2".into(), ..Default::default() };
        assert_eq!(
            available(&Situation { account: &agent, case: &unplaced, review_waiting: true }),
            [A::ConfirmClassification, A::Reclassify]
        );
        assert!(available(&Situation { account: &agent, case: &unplaced, review_waiting: false }).is_empty(), "still being classified");
        assert!(actions(&agent, &case(CaseStatus::Closed)).is_empty());
    }

    #[test]
    fn supervisors_leaders_and_revisit_agents() {
        let supervisor = Account::sample(&[Role::CentreSupervisor], None);
        assert_eq!(actions(&supervisor, &case(CaseStatus::Accepted)), [A::Supervise]);
        let leader = Account::sample(&[Role::Leader], None);
        assert!(actions(&leader, &case(CaseStatus::Accepted)).is_empty(), "not their case");
        let theirs = CaseView { leader_id: "leader-li".into(), ..case(CaseStatus::Accepted) };
        assert_eq!(actions(&leader, &theirs), [A::Supervise]);
        let revisit = Account::sample(&[Role::RevisitAgent], None);
        assert_eq!(actions(&revisit, &case(CaseStatus::Resolved)), [A::RecordRevisit]);
        assert!(actions(&revisit, &case(CaseStatus::Accepted)).is_empty());
        let auditor = Account::sample(&[Role::Auditor], None);
        assert!(actions(&auditor, &case(CaseStatus::Accepted)).is_empty(), "auditors read only");
    }

    #[test]
    fn ids_round_trip_and_every_action_has_a_form() {
        for a in ActionKind::ALL {
            assert_eq!(ActionKind::from_id(a.id()), Some(a));
            let f = form(a, &Choices::default(), &Values::new(), &Errors::new(), "");
            assert!(!f.label.is_empty() && !f.submit.is_empty() && !f.open);
        }
    }

    #[test]
    fn checks_are_next_to_their_fields() {
        let mut e = Errors::new();
        let mut values = Values::new();
        values.insert("text".into(), "  ".into());
        values.insert("long".into(), "字".repeat(501));
        assert_eq!(required(&values, "text", 10, &mut e), "");
        optional(&values, "long", 500, &mut e);
        let zone = chrono_tz::Asia::Shanghai;
        values.insert("past".into(), "2020-01-01T08:00".into());
        values.insert("garbage".into(), "tomorrow".into());
        assert!(future_time(&values, "past", zone, true, &mut e).is_none());
        assert!(future_time(&values, "garbage", zone, true, &mut e).is_none());
        assert!(future_time(&values, "missing", zone, false, &mut e).is_none());
        assert_eq!(e["text"], "请填写");
        assert!(e["long"].contains("500"));
        assert!(e["past"].contains("将来"));
        assert!(e["garbage"].contains("格式"));
        assert!(!e.contains_key("missing"));
        values.insert("future".into(), "2999-01-01T08:00".into());
        assert!(future_time(&values, "future", zone, true, &mut e).is_some());
        let units = vec![("st-dongmen".to_string(), "东门街道".to_string())];
        values.insert("unit".into(), "st-nowhere".into());
        pick(&values, "unit", &units, &mut e);
        assert!(e["unit"].contains("不是可选"));
    }
}
