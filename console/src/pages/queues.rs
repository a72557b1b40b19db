//! The work queues (待办队列), by role: what the signed-in person has to do next, each queue
//! counting what it holds and reloading itself when the events say something changed.

use askama::Template;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use jiesu_kit::auth::Role;
use jiesu_proto::v1::{CaseStatus, CaseView, ListCasesRequest, ListDueRequest, ListPendingReviewsRequest};

use super::{AppState, Chrome, render};
use crate::{
    accounts::Account,
    services::Caller,
    session::Staff,
    view::{CaseLine, Clock, refusal_zh},
};

/// A queue of the desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// The centre: cases no rule placed, waiting to be dispatched by hand (人工派单).
    Manual,
    /// The centre: classifications waiting for a person (分类复核).
    Review,
    /// The centre: returns waiting for a ruling (退回审核).
    Returns,
    /// The centre: extension requests (延期审批).
    Extensions,
    /// The centre: cases turning yellow and red (预警/超时).
    AtRisk,
    /// The centre: supervised and escalated cases (督办/提级).
    Supervised,
    /// A unit: new dispatches to sign for (待签收).
    ToSign,
    /// A unit: its cases by colour and deadline, the nearest first (在办).
    UnitCases,
    /// A unit: assisting parts to answer (协办).
    Assisting,
    /// A leader: the cases escalated to them (包案).
    Escalated,
    /// The revisit agent: revisits due (待回访).
    Revisits,
}

impl Queue {
    pub const ALL: [Queue; 11] = [
        Queue::Manual,
        Queue::Review,
        Queue::Returns,
        Queue::Extensions,
        Queue::AtRisk,
        Queue::Supervised,
        Queue::ToSign,
        Queue::UnitCases,
        Queue::Assisting,
        Queue::Escalated,
        Queue::Revisits,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Queue::Manual => "manual",
            Queue::Review => "review",
            Queue::Returns => "returns",
            Queue::Extensions => "extensions",
            Queue::AtRisk => "at-risk",
            Queue::Supervised => "supervised",
            Queue::ToSign => "to-sign",
            Queue::UnitCases => "unit-cases",
            Queue::Assisting => "assisting",
            Queue::Escalated => "escalated",
            Queue::Revisits => "revisits",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Queue::Manual => "待人工派单",
            Queue::Review => "分类待复核",
            Queue::Returns => "退回待审核",
            Queue::Extensions => "延期待审批",
            Queue::AtRisk => "预警与超时",
            Queue::Supervised => "督办与提级",
            Queue::ToSign => "新派单待签收",
            Queue::UnitCases => "本单位在办",
            Queue::Assisting => "协办待答复",
            Queue::Escalated => "我包案的诉求",
            Queue::Revisits => "待回访",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Queue::Manual => "派单时限在走",
            Queue::Review => "等待计入派单时限",
            Queue::Revisits => "等待最久的在前",
            Queue::AtRisk => "红色在前",
            Queue::UnitCases => "按时限由近到远",
            _ => "",
        }
    }

    /// Whether anything in it is urgent by nature (its count shows red).
    fn hot(self) -> bool {
        matches!(self, Queue::Manual | Queue::AtRisk | Queue::ToSign | Queue::Returns)
    }

    pub fn from_id(id: &str) -> Option<Queue> {
        Queue::ALL.into_iter().find(|q| q.id() == id)
    }
}

/// The queues of a person, by their roles.
pub fn queues_for(account: &Account) -> Vec<Queue> {
    let mut queues = Vec::new();
    if account.is_centre() {
        queues.extend([Queue::Manual, Queue::Review, Queue::Returns, Queue::Extensions, Queue::AtRisk, Queue::Supervised]);
    }
    if account.is_unit() {
        queues.extend([Queue::ToSign, Queue::UnitCases, Queue::Assisting]);
    }
    if account.has(Role::Leader) {
        queues.push(Queue::Escalated);
    }
    if account.has(Role::RevisitAgent) {
        queues.push(Queue::Revisits);
    }
    queues
}

/// One queue, rendered.
#[derive(Template)]
#[template(path = "queue.html")]
struct QueueFragment {
    id: &'static str,
    title: &'static str,
    hint: &'static str,
    hot: bool,
    count: usize,
    count_text: String,
    lines: Vec<CaseLine>,
    reviews: Vec<ReviewLine>,
    due: Vec<DueLine>,
    error: String,
}

/// A revisit waiting for its call.
struct DueLine {
    case_no: String,
    round: u32,
    since: String,
    waited: String,
}

struct ReviewLine {
    case_no: String,
    title: String,
    guess: String,
    confidence: String,
    why: &'static str,
    since: String,
}

/// The most a queue lists; its count says when there are more.
const LIMIT: u32 = 200;

async fn list(caller: &Caller, request: ListCasesRequest) -> Result<Vec<CaseView>, tonic::Status> {
    Ok(caller.dispatch().list_cases(caller.req(ListCasesRequest { limit: LIMIT, ..request })).await?.into_inner().cases)
}

/// Reads one queue from the services, as the person.
async fn load(queue: Queue, account: &Account, caller: &Caller, clock: &Clock) -> QueueFragment {
    let unit = account.unit.clone().unwrap_or_default();
    let mut reviews = Vec::new();
    let mut due = Vec::new();
    let mut total = None;
    let cases: Result<Vec<CaseView>, tonic::Status> = match queue {
        Queue::Manual => list(caller, ListCasesRequest { manual_queue: true, open_only: true, ..Default::default() }).await,
        Queue::Returns => list(caller, ListCasesRequest { return_pending: true, open_only: true, ..Default::default() }).await,
        Queue::Extensions => list(caller, ListCasesRequest { extension_pending: true, open_only: true, ..Default::default() }).await,
        Queue::AtRisk => {
            let red = list(caller, ListCasesRequest { colour: "red".into(), open_only: true, ..Default::default() }).await;
            let yellow = list(caller, ListCasesRequest { colour: "yellow".into(), open_only: true, ..Default::default() }).await;
            red.and_then(|mut r| {
                r.extend(yellow?);
                Ok(r)
            })
        }
        Queue::Supervised => {
            let supervised = list(caller, ListCasesRequest { supervised: true, open_only: true, ..Default::default() }).await;
            let escalated = list(caller, ListCasesRequest { escalated: true, open_only: true, ..Default::default() }).await;
            supervised.and_then(|mut s| {
                for e in escalated? {
                    if !s.iter().any(|c| c.case_id == e.case_id) {
                        s.push(e);
                    }
                }
                Ok(s)
            })
        }
        Queue::ToSign => {
            list(caller, ListCasesRequest { unit_id: unit.clone(), status: CaseStatus::Dispatched as i32, ..Default::default() })
                .await
                .map(|cases| cases.into_iter().filter(|c| c.unit_id == unit).collect())
        }
        Queue::UnitCases => {
            list(caller, ListCasesRequest { unit_id: unit.clone(), open_only: true, ..Default::default() }).await.map(|cases| {
                let mut own: Vec<CaseView> =
                    cases.into_iter().filter(|c| c.unit_id == unit && c.status != CaseStatus::Dispatched as i32).collect();
                own.sort_by_key(|c| clock.millis_to(c.deadline.as_ref()));
                own
            })
        }
        Queue::Assisting => list(caller, ListCasesRequest { unit_id: unit.clone(), open_only: true, ..Default::default() })
            .await
            .map(|cases| cases.into_iter().filter(|c| c.parts.iter().any(|p| p.unit_id == unit && !p.answered)).collect()),
        Queue::Escalated => {
            list(caller, ListCasesRequest { leader_id: account.token_subject().to_string(), open_only: true, ..Default::default() }).await
        }
        Queue::Revisits => match caller.revisit().list_due(caller.req(ListDueRequest { limit: LIMIT })).await {
            Ok(r) => {
                due = r
                    .into_inner()
                    .revisits
                    .into_iter()
                    .map(|v| DueLine {
                        case_no: v.case_no,
                        round: v.round,
                        since: clock.short(v.created_at.as_ref()),
                        waited: clock.waited(v.created_at.as_ref()),
                    })
                    .collect();
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        },
        Queue::Review => {
            match caller
                .classification()
                .list_pending_reviews(caller.req(ListPendingReviewsRequest { limit: LIMIT, street: String::new() }))
                .await
            {
                Ok(r) => {
                    let r = r.into_inner();
                    total = Some(r.total as usize);
                    reviews = r
                        .reviews
                        .into_iter()
                        .map(|p| {
                            let c = p.classification.unwrap_or_default();
                            ReviewLine {
                                case_no: p.case_no,
                                title: p.title,
                                guess: format!("{} / {}", c.category_name, c.sub_item_name),
                                confidence: format!("{:.0}%", c.confidence * 100.0),
                                why: match p.why.as_str() {
                                    "low_confidence" => "把握不足",
                                    "close_candidates" => "候选接近",
                                    "unrecognised" => "无法识别",
                                    _ => "待复核",
                                },
                                since: clock.short(p.waiting_since.as_ref()),
                            }
                        })
                        .collect();
                    Ok(Vec::new())
                }
                Err(e) => Err(e),
            }
        }
    };
    let (lines, error) = match cases {
        Ok(cases) => (cases.iter().map(|c| CaseLine::of(c, clock)).collect::<Vec<_>>(), String::new()),
        Err(e) => (Vec::new(), refusal_zh(&e)),
    };
    let count = total.unwrap_or(lines.len() + reviews.len() + due.len());
    let count_text = if total.is_none() && count >= LIMIT as usize { format!("{LIMIT}+") } else { count.to_string() };
    QueueFragment {
        id: queue.id(),
        title: queue.title(),
        hint: queue.hint(),
        hot: queue.hot(),
        count,
        count_text,
        lines,
        reviews,
        due,
        error,
    }
}

struct QueueBlock {
    id: &'static str,
    html: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    queues: Vec<QueueBlock>,
}

/// The desk: every queue of the person, loaded side by side.
pub async fn home(staff: Staff, State(app): AppState) -> Response {
    let caller = app.services.as_person(&staff.account);
    let clock = Clock::new(&app.district.timezone);
    let queues = queues_for(&staff.account);
    let loaded = futures::future::join_all(queues.iter().map(|q| load(*q, &staff.account, &caller, &clock))).await;
    let blocks = loaded
        .into_iter()
        .map(|f| QueueBlock { id: f.id, html: f.render().unwrap_or_else(|_| "<p class=\"err\">无法显示</p>".into()) })
        .collect();
    render(StatusCode::OK, &HomePage { chrome: Chrome::of(&app, &staff, "home"), queues: blocks })
}

/// One queue alone, for its refresh: only a queue of the person's roles.
pub async fn fragment(staff: Staff, State(app): AppState, Path(id): Path<String>) -> Response {
    let Some(queue) = Queue::from_id(&id).filter(|q| queues_for(&staff.account).contains(q)) else {
        return (StatusCode::NOT_FOUND, "没有这个队列").into_response();
    };
    let caller = app.services.as_person(&staff.account);
    let clock = Clock::new(&app.district.timezone);
    match load(queue, &staff.account, &caller, &clock).await.render() {
        Ok(html) => Html(html).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "无法显示").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_has_its_queues() {
        assert_eq!(queues_for(&Account::sample(&[Role::CentreAgent], None)).len(), 6);
        assert_eq!(
            queues_for(&Account::sample(&[Role::UnitHandler], Some("st-dongmen"))),
            [Queue::ToSign, Queue::UnitCases, Queue::Assisting]
        );
        assert_eq!(queues_for(&Account::sample(&[Role::Leader], None)), [Queue::Escalated]);
        assert_eq!(queues_for(&Account::sample(&[Role::RevisitAgent], None)), [Queue::Revisits]);
        assert!(queues_for(&Account::sample(&[Role::Auditor], None)).is_empty());
        assert!(queues_for(&Account::sample(&[Role::UnitHandler], None)).is_empty(), "a unit role without a unit has no unit queues");
    }

    #[test]
    fn ids_round_trip() {
        for q in Queue::ALL {
            assert_eq!(Queue::from_id(q.id()), Some(q));
        }
        assert_eq!(Queue::from_id("nope"), None);
    }
}
