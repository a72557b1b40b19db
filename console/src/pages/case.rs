//! The case page (诉求详情): the request as the citizen wrote it (contact masked; showing it is a
//! deliberate act, with a reason, that intake records), photos, the classification with its
//! confidence and reason, owner and assisting parts, every clock with its colour and deadline,
//! the timeline of every service, and the actions the person may take now.

use std::collections::BTreeMap;

use askama::Template;
use axum::{
    Form,
    body::Body,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use futures::StreamExt;
use jiesu_proto::v1::{
    CaseRef, CaseView, ClassificationView, GetAttachmentRequest, GetOrganisationRequest, GetTaxonomyRequest, OrganisationView,
    SubmissionView, TimelineEntry, case_ref::Ref,
};
use serde::Deserialize;

use super::{
    App, AppState, Chrome,
    actions::{self, ActionForm, ActionKind, Choices, Errors, Outcome, Situation, Values},
    render,
};
use crate::{
    services::Caller,
    session::Staff,
    view::{self, Clock, refusal_zh},
};

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    chrome: Chrome,
    case_no: String,
    title: String,
    status: &'static str,
    colour: String,
    colour_zh: &'static str,
    urgency: &'static str,
    flags: Vec<&'static str>,
    done: String,
    problem: String,
    has_submission: bool,
    submission_error: String,
    channel: String,
    entered_by: String,
    received_at: String,
    place: String,
    masked_phone: String,
    contact: String,
    may_reveal: bool,
    reveal_error: String,
    description: String,
    attachments: Vec<AttachmentLink>,
    has_classification: bool,
    classification_error: String,
    category: String,
    request_type: &'static str,
    confidence: String,
    review: &'static str,
    reason: String,
    candidates: String,
    repeat: String,
    model: String,
    unit: String,
    dispatched_at: String,
    deadline: String,
    original_deadline: String,
    round: u32,
    returns: u32,
    leader: String,
    pending_return: String,
    pending_extension: String,
    supervision_notes: Vec<String>,
    letter: String,
    parts: Vec<PartLine>,
    clocks: Vec<ClockLine>,
    clocks_note: String,
    revisits: Vec<RevisitLine>,
    forms: Vec<ActionForm>,
    no_actions: String,
    timeline: Vec<TimelineLine>,
}

struct AttachmentLink {
    href: String,
    label: String,
    image: bool,
}

struct PartLine {
    unit: String,
    deadline: String,
    state: &'static str,
    answer: String,
}

struct ClockLine {
    name: String,
    part: String,
    state: String,
    colour: String,
    deadline: String,
    remaining: String,
}

struct RevisitLine {
    round: u32,
    verdict: String,
    at: String,
}

struct TimelineLine {
    at: String,
    service: &'static str,
    detail: String,
    actor: String,
    sort: i64,
}

fn case_ref(no: &str) -> CaseRef {
    CaseRef { r#ref: Some(Ref::CaseNo(no.to_string())) }
}

/// What the page shows besides the case: a banner, a form sent back with its problems, the
/// contact once revealed.
#[derive(Default)]
struct Extra {
    done: String,
    problem: String,
    failed: Option<(ActionKind, Values, Errors, String)>,
    contact: String,
    reveal_error: String,
}

/// The organisation as dispatch runs it, as the person may read it.
async fn organisation(caller: &Caller) -> Option<OrganisationView> {
    caller.dispatch().get_organisation(caller.req(GetOrganisationRequest {})).await.ok().map(tonic::Response::into_inner)
}

/// The selects' options: units and leaders from dispatch's organisation, sub-items from
/// classification's taxonomy (read here) — as the person may read them.
async fn choices(caller: &Caller, org: Option<&OrganisationView>) -> Choices {
    let mut choices = Choices::default();
    if let Some(org) = org {
        choices.units = org.units.iter().filter(|u| u.kind != "district").map(|u| (u.id.clone(), u.name.clone())).collect();
        choices.leaders = org.leaders.iter().map(|l| (l.id.clone(), format!("{}（{}）", l.name, l.title))).collect();
    }
    if let Ok(t) = caller.classification().get_taxonomy(caller.req(GetTaxonomyRequest {})).await {
        choices.sub_items = t
            .into_inner()
            .categories
            .into_iter()
            .flat_map(|c| c.sub_items.into_iter().map(move |s| (s.code.clone(), format!("{} {} / {}", s.code, c.name, s.name))))
            .collect();
    }
    choices
}

async fn build(app: &App, staff: &Staff, no: &str, extra: Extra) -> Response {
    let caller = app.services.as_person(&staff.account);
    let clock = Clock::new(&app.district.timezone);
    let r = case_ref(no);
    let (mut dispatch, mut intake, mut classification, mut sla, mut revisit) =
        (caller.dispatch(), caller.intake(), caller.classification(), caller.sla(), caller.revisit());
    let (case, submission, classification, clocks, revisits, organisation) = tokio::join!(
        dispatch.get_case(caller.req(r.clone())),
        intake.get_submission(caller.req(r.clone())),
        classification.get_classification(caller.req(r.clone())),
        sla.list_clocks(caller.req(r.clone())),
        revisit.list_revisits(caller.req(r.clone())),
        organisation(&caller),
    );
    // Units and leaders by name, as people know them; an id the organisation lacks stays as it is.
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    if let Some(org) = &organisation {
        names.extend(org.units.iter().map(|u| (u.id.clone(), u.name.clone())));
        names.extend(org.leaders.iter().map(|l| (l.id.clone(), format!("{}（{}）", l.name, l.title))));
    }
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    let case: CaseView = match (case, &submission) {
        (Ok(c), _) => c.into_inner(),
        // Received but not dispatched yet (being classified, or waiting for a person to review
        // its classification): what intake, which let this person read it, knows.
        (Err(status), Ok(s)) if status.code() == tonic::Code::NotFound => CaseView {
            case_id: s.get_ref().case_id.clone(),
            case_no: s.get_ref().case_no.clone(),
            title: s.get_ref().title.clone(),
            ..Default::default()
        },
        (Err(status), _) => {
            // No case, or not one of theirs: the same page, so that a number tells nothing.
            let code = if status.code() == tonic::Code::PermissionDenied { StatusCode::FORBIDDEN } else { StatusCode::NOT_FOUND };
            let text = match status.code() {
                tonic::Code::NotFound | tonic::Code::PermissionDenied | tonic::Code::InvalidArgument => {
                    format!("找不到受理编号为 {no} 的诉求，或你无权查看。")
                }
                _ => refusal_zh(&status),
            };
            return super::message_page(code, "无法打开诉求", &text);
        }
    };
    let mut timeline: Vec<TimelineLine> = Vec::new();
    let mut add = |entries: &[TimelineEntry]| {
        for e in entries {
            timeline.push(TimelineLine {
                at: clock.full(e.at.as_ref()),
                service: service_zh(&e.service),
                detail: e.detail.clone(),
                actor: e.actor.clone(),
                sort: e.at.as_ref().map_or(0, |t| t.seconds * 1_000_000_000 + i64::from(t.nanos)),
            });
        }
    };
    add(&case.timeline);
    let submission: Result<SubmissionView, tonic::Status> = submission.map(tonic::Response::into_inner);
    if let Ok(s) = &submission {
        add(&s.timeline);
    }
    let classification: Result<ClassificationView, tonic::Status> = classification.map(|c| c.into_inner());
    if let Ok(c) = &classification {
        add(&c.timeline);
    }
    let clocks = clocks.map(|c| c.into_inner());
    if let Ok(c) = &clocks {
        add(&c.timeline);
    }
    let revisits = revisits.map(|r| r.into_inner());
    if let Ok(r) = &revisits {
        add(&r.timeline);
    }
    timeline.sort_by_key(|t| t.sort);

    let review_waiting = classification.as_ref().is_ok_and(|c| c.review == "waiting");
    let kinds = actions::available(&Situation { account: &staff.account, case: &case, review_waiting });
    let choices = match kinds.iter().any(|k| k.needs_choices()) {
        true => choices(&caller, organisation.as_ref()).await,
        false => Choices::default(),
    };
    let forms = kinds
        .iter()
        .map(|k| match &extra.failed {
            Some((kind, values, errors, error)) if kind == k => actions::form(*k, &choices, values, errors, error),
            _ => actions::form(*k, &choices, &Values::new(), &Errors::new(), ""),
        })
        .collect();

    let line = view::CaseLine::of(&case, &clock);
    let mut page = CasePage {
        chrome: Chrome::of(app, staff, "case"),
        case_no: case.case_no.clone(),
        title: case.title.clone(),
        status: line.status,
        colour: line.colour.clone(),
        colour_zh: line.colour_zh,
        urgency: line.urgency,
        flags: line.flags.clone(),
        done: extra.done,
        problem: extra.problem,
        has_submission: false,
        submission_error: String::new(),
        channel: String::new(),
        entered_by: String::new(),
        received_at: String::new(),
        place: String::new(),
        masked_phone: String::new(),
        contact: extra.contact,
        may_reveal: staff.account.has(jiesu_kit::auth::Role::RevisitAgent)
            || staff.account.is_unit() && staff.account.unit.as_deref() == Some(case.unit_id.as_str()),
        reveal_error: extra.reveal_error,
        description: String::new(),
        attachments: Vec::new(),
        has_classification: false,
        classification_error: String::new(),
        category: String::new(),
        request_type: "",
        confidence: String::new(),
        review: "",
        reason: String::new(),
        candidates: String::new(),
        repeat: String::new(),
        model: String::new(),
        unit: if case.unit_name.is_empty() { case.unit_id.clone() } else { case.unit_name.clone() },
        dispatched_at: clock.full(case.dispatched_at.as_ref()),
        deadline: match clock.full(case.deadline.as_ref()) {
            d if d.is_empty() => String::new(),
            d => format!("{d}（{}）", clock.remaining(case.deadline.as_ref())),
        },
        original_deadline: if case.original_deadline != case.deadline {
            clock.full(case.original_deadline.as_ref())
        } else {
            String::new()
        },
        round: case.round.max(1),
        returns: case.returns,
        leader: if case.leader_id.is_empty() { String::new() } else { name(&case.leader_id) },
        pending_return: case
            .pending_return
            .as_ref()
            .map(|r| format!("{}：{}（{}）", name(&r.unit_id), r.text, view::return_reason_zh(r.reason)))
            .unwrap_or_default(),
        pending_extension: case
            .pending_extension
            .as_ref()
            .map(|x| format!("申请延期至 {}：{}", clock.full(x.until.as_ref()), x.reason))
            .unwrap_or_default(),
        supervision_notes: case.supervision_notes.clone(),
        letter: case
            .letter
            .as_ref()
            .map(|l| {
                let mut parts = Vec::new();
                if !l.verification.is_empty() {
                    parts.push(format!("核实情况：{}", l.verification));
                }
                parts.push(format!("处理结果：{}", l.handling));
                if !l.next_steps.is_empty() {
                    parts.push(format!("下一步措施：{}", l.next_steps));
                }
                parts.join("\n")
            })
            .or_else(|| (!case.reply.is_empty()).then(|| case.reply.clone()))
            .unwrap_or_default(),
        parts: case
            .parts
            .iter()
            .map(|p| PartLine {
                unit: if p.unit_name.is_empty() { p.unit_id.clone() } else { p.unit_name.clone() },
                deadline: clock.full(p.deadline.as_ref()),
                state: match (p.accepted, p.answered) {
                    (_, true) => "已答复",
                    (true, false) => "已签收",
                    _ => "待签收",
                },
                answer: p.answer.clone(),
            })
            .collect(),
        clocks: Vec::new(),
        clocks_note: String::new(),
        revisits: Vec::new(),
        no_actions: "你在这件诉求上暂无可办理的操作。".into(),
        forms,
        timeline,
    };
    match submission {
        Ok(s) => {
            page.has_submission = true;
            page.channel = app.channels.get(&s.channel).cloned().unwrap_or_else(|| s.channel.clone());
            page.entered_by = s.entered_by.clone();
            page.received_at = clock.full(s.received_at.as_ref());
            page.place = s
                .location
                .as_ref()
                .map(|l| {
                    let mut parts: Vec<String> =
                        [&l.street, &l.community].into_iter().filter(|p| !p.is_empty()).map(|id| name(id)).collect();
                    parts.extend([&l.grid, &l.address].into_iter().filter(|p| !p.is_empty()).cloned());
                    parts.join(" · ")
                })
                .unwrap_or_default();
            page.masked_phone = if s.masked_phone.is_empty() { "（未留）".into() } else { s.masked_phone.clone() };
            page.description = s.description.clone();
            page.attachments = s
                .attachments
                .iter()
                .map(|a| {
                    if a.sha256.is_empty() {
                        AttachmentLink { href: a.url.clone(), label: "外部附件".into(), image: false }
                    } else {
                        AttachmentLink {
                            href: format!("/case/{}/attachment/{}", case.case_no, a.sha256),
                            label: if a.kind == "video" { "视频".into() } else { "文件".into() },
                            image: a.media_type.starts_with("image/"),
                        }
                    }
                })
                .filter(|a| a.href.starts_with('/') || a.href.starts_with("https://"))
                .collect();
        }
        Err(e) => page.submission_error = format!("无法读取原始诉求：{}", refusal_zh(&e)),
    }
    match classification {
        Ok(c) => {
            page.has_classification = true;
            page.category = format!("{} / {}（{}）", c.category_name, c.sub_item_name, c.sub_item);
            page.request_type = view::request_type_zh(&c.request_type);
            page.confidence = format!("{:.0}%", c.confidence * 100.0);
            page.review = match c.review.as_str() {
                "waiting" => "待人工复核",
                "confirmed" => "已人工确认",
                "reclassified" => "已人工改类",
                _ => "",
            };
            page.reason =
                if c.matched_keywords.is_empty() { "模型判断".into() } else { format!("命中：{}", c.matched_keywords.join("、")) };
            page.candidates =
                c.candidates.iter().map(|k| format!("{} {:.0}%", k.sub_item_name, k.probability * 100.0)).collect::<Vec<_>>().join("；");
            if c.repeat_count > 1 {
                page.repeat = format!("同一问题第 {} 次反映，首件 {}", c.repeat_count, c.repeat_of_case_no);
            }
            page.model = if c.model_version.is_empty() { "关键词规则".into() } else { c.model_version.clone() };
        }
        Err(e) => page.classification_error = format!("无法读取分类：{}", refusal_zh(&e)),
    }
    match clocks {
        Ok(c) => {
            page.clocks = c
                .clocks
                .iter()
                .filter(|k| k.stopped_at.is_none() || k.colour.is_empty())
                .map(|k| ClockLine {
                    name: if k.milestone_name.is_empty() {
                        jiesu_reference::milestone_zh(&k.milestone).to_string()
                    } else {
                        k.milestone_name.clone()
                    },
                    part: k.part.clone(),
                    state: jiesu_reference::clock_state_zh(&k.state).to_string(),
                    colour: k.colour.clone(),
                    deadline: clock.full(k.deadline.as_ref()),
                    remaining: if k.state == "stopped" { String::new() } else { clock.remaining(k.deadline.as_ref()) },
                })
                .collect();
            if page.clocks.is_empty() {
                page.clocks_note = "暂无计时。".into();
            }
        }
        Err(e) => page.clocks_note = format!("无法读取时限：{}", refusal_zh(&e)),
    }
    if let Ok(r) = revisits {
        page.revisits = r
            .revisits
            .iter()
            .map(|v| RevisitLine {
                round: v.round,
                verdict: if v.status == "pending" {
                    "待回访".into()
                } else {
                    format!(
                        "{}，{}{}",
                        view::satisfaction_zh(v.satisfaction),
                        if v.solved { "已解决" } else { "未解决" },
                        if v.reopened { "，已重启" } else { "" }
                    )
                },
                at: clock.full(v.recorded_at.as_ref().or(v.created_at.as_ref())),
            })
            .collect();
    }
    let status = if extra.failed.is_some() || !page.reveal_error.is_empty() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    render(status, &page)
}

fn service_zh(service: &str) -> &'static str {
    match service {
        "intake" => "受理",
        "classification" => "分类",
        "dispatch" => "派单",
        "sla-timer" | "sla_timer" => "时限",
        "notification" => "通知",
        "revisit" => "回访",
        _ => "其他",
    }
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    #[serde(default)]
    done: String,
}

pub async fn show(staff: Staff, State(app): AppState, Path(no): Path<String>, Query(q): Query<ShowQuery>) -> Response {
    let done = ActionKind::from_id(&q.done).map(|k| k.done().to_string()).unwrap_or_default();
    build(&app, &staff, &no, Extra { done, ..Default::default() }).await
}

/// An action's form, sent.
pub async fn act(
    staff: Staff,
    State(app): AppState,
    Path((no, action)): Path<(String, String)>,
    Form(values): Form<BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = staff.check_csrf(values.get("csrf").map(String::as_str).unwrap_or_default()) {
        return refused.into_response();
    }
    let Some(kind) = ActionKind::from_id(&action) else {
        return super::message_page(StatusCode::NOT_FOUND, "没有这个操作", "没有这个操作。");
    };
    let caller = app.services.as_person(&staff.account);
    let zone = Clock::new(&app.district.timezone).zone;
    let choices = match kind.needs_choices() {
        true => choices(&caller, organisation(&caller).await.as_ref()).await,
        false => Choices::default(),
    };
    match actions::perform(kind, &caller, case_ref(&no), &values, &choices, zone).await {
        Outcome::Done => {
            app.live.nudge("console.action");
            Redirect::to(&format!("/case/{no}?done={}", kind.id())).into_response()
        }
        Outcome::Fields(errors) => {
            let extra = Extra { failed: Some((kind, values, errors, "请按提示修改后再提交。".into())), ..Default::default() };
            build(&app, &staff, &no, extra).await
        }
        Outcome::Refused(why) => {
            let extra = Extra { failed: Some((kind, values, Errors::new(), why)), ..Default::default() };
            build(&app, &staff, &no, extra).await
        }
    }
}

#[derive(Deserialize)]
pub struct RevealForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    purpose: String,
}

/// Shows the citizen's contact to someone who may call them, for a reason they give: intake
/// checks who may and records the read with the reason. The contact is shown on this answer
/// only, never kept by the console.
pub async fn reveal(staff: Staff, State(app): AppState, Path(no): Path<String>, Form(f): Form<RevealForm>) -> Response {
    if let Err(refused) = staff.check_csrf(&f.csrf) {
        return refused.into_response();
    }
    let purpose = f.purpose.trim();
    if purpose.is_empty() {
        return build(&app, &staff, &no, Extra { reveal_error: "请填写查看事由，例如“联系群众核实情况”。".into(), ..Default::default() })
            .await;
    }
    let caller = app.services.as_person(&staff.account);
    match caller.intake().get_contact(caller.req_because(case_ref(&no), purpose)).await {
        Ok(c) => {
            let c = c.into_inner();
            let contact = match (c.name.is_empty(), c.anonymous) {
                (_, true) => format!("{}（群众要求对承办单位匿名）", c.phone),
                (true, false) => c.phone.clone(),
                (false, false) => format!("{} {}", c.name, c.phone),
            };
            build(&app, &staff, &no, Extra { contact, ..Default::default() }).await
        }
        Err(e) => build(&app, &staff, &no, Extra { reveal_error: refusal_zh(&e), ..Default::default() }).await,
    }
}

/// A file the citizen sent, streamed from intake as the person may see it (units get the copy
/// with its metadata stripped; intake decides).
pub async fn attachment(staff: Staff, State(app): AppState, Path((no, sha)): Path<(String, String)>) -> Response {
    if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return (StatusCode::NOT_FOUND, "没有这个附件").into_response();
    }
    let caller = app.services.as_person(&staff.account);
    let request = GetAttachmentRequest { case: Some(case_ref(&no)), sha256: sha.to_ascii_lowercase() };
    let mut stream = match caller.intake().get_attachment(caller.req(request)).await {
        Ok(s) => s.into_inner(),
        Err(e) => return (StatusCode::NOT_FOUND, refusal_zh(&e)).into_response(),
    };
    let Some(Ok(first)) = stream.next().await else { return (StatusCode::BAD_GATEWAY, "附件读取失败").into_response() };
    // Only types a browser shows without running anything; anything else is a download.
    let shown = ["image/jpeg", "image/png", "image/webp", "image/gif", "video/mp4"];
    let (content_type, disposition) = match first.media_type.as_str() {
        t if shown.contains(&t) => (t.to_string(), "inline"),
        _ => ("application/octet-stream".to_string(), "attachment"),
    };
    let head = futures::stream::once(async move { Ok::<_, tonic::Status>(first.data) });
    let rest = stream.map(|chunk| chunk.map(|c| c.data));
    let body =
        Body::from_stream(head.chain(rest).map(|r| r.map(axum::body::Bytes::from).map_err(|e| std::io::Error::other(e.to_string()))));
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition.to_string()),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        body,
    )
        .into_response()
}
