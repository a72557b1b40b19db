//! Dispatch's use cases (派单与办理): routing a classified case, and every action of the handling
//! workflow, shared by the gRPC API and the consumer. Each runs inside the caller's [`Work`]: it
//! reads the case, asks the [`workflow`] whether the action is allowed, stores the new state with
//! a line of history (办理记录), and emits the `case.*` event other services act on — all in one
//! transaction, so nothing is half done and nothing is announced that did not happen.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use jiesu_kit::{
    CaseIds, CaseKey, Tx, Work,
    time::{from_millis, to_proto},
};
use jiesu_proto::{
    Event,
    v1::{
        self as pb, CaseAccepted, CaseAssistAccepted, CaseAssistAdded, CaseAssistAnswered, CaseClassified, CaseClosed, CaseContacted,
        CaseDispatched, CaseEscalated, CaseExtensionDecided, CaseExtensionRequested, CaseQueued, CaseReopened, CaseReplied, CaseResolved,
        CaseReturnReviewed, CaseReturned, CaseStaged, CaseSupervised, CaseVerified, RevisitRecorded,
    },
};
use jiesu_reference::{
    UnitKind, Urgency,
    time::{Calendar, ResolveLimits},
};

use crate::{
    Error,
    domain::{self, Matrix, Organisation, Place},
    store::{self, CaseRow, Stamp},
    workflow::{Action, Actor, Case, Letter, Moment, Part, ReturnReason, Rules, Ruling, Stage},
};

/// The routing, the district's rules and its calendar: everything a use case needs besides the
/// database.
pub struct Dispatch {
    pub matrix: Matrix,
    pub org: Organisation,
    pub rules: Rules,
    pub calendar: Calendar,
    pub limits: ResolveLimits,
    pub timezone: Tz,
    /// Reopenings after which a case is escalated (0: never).
    pub escalate_after_reopens: u32,
}

/// Who does something: their place in the workflow and the name that goes into the record.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub actor: Actor<'a>,
    pub name: &'a str,
}

/// The service itself, or another service (the SLA timer, revisit).
const SYSTEM: Who<'static> = Who { actor: Actor::System, name: "system" };

/// One action applied to a case (or found to change nothing, e.g. signing twice).
pub struct Step {
    pub row: CaseRow,
    pub before: Case,
    pub after: Case,
    pub changed: bool,
}

impl Step {
    fn ids(&self) -> CaseIds<'_> {
        self.row.ids()
    }

    /// The owning unit after the action; empty in the manual queue.
    fn owner(&self) -> String {
        self.after.owner.clone().unwrap_or_default()
    }

    fn round(&self) -> u32 {
        self.after.round
    }
}

/// The history's name of an action.
fn event_key(action: &Action) -> &'static str {
    match action {
        Action::Accept => "accepted",
        Action::Contact => "contacted",
        Action::Verify => "verified",
        Action::Reply { .. } => "replied",
        Action::Resolve => "resolved",
        Action::StageResolve { .. } => "staged",
        Action::Return { .. } => "returned",
        Action::ReviewReturn(_) => "return_reviewed",
        Action::Dispatch { .. } => "dispatched",
        Action::Transfer { .. } => "transferred",
        Action::AddAssisting { .. } => "assist_added",
        Action::AcceptAssist => "assist_accepted",
        Action::AnswerAssist { .. } => "assist_answered",
        Action::RequestExtension { .. } => "extension_requested",
        Action::DecideExtension { .. } => "extension_decided",
        Action::Escalate { .. } => "escalated",
        Action::Supervise { .. } => "supervised",
        Action::Reopen => "reopened",
        Action::Close => "closed",
        Action::CloseAsUnreasonable { .. } => "closed",
    }
}

fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(to_proto(t))
}

impl Dispatch {
    /// A unit's or a leader's name, else the id.
    pub fn name_of(&self, id: &str) -> String {
        match self.org.leader(id) {
            Some(leader) => leader.name.clone(),
            None => self.org.name_of(id).to_string(),
        }
    }

    /// The resolve deadline of a case of `urgency` dispatched at `at` (办结时限).
    pub fn deadline(&self, at: DateTime<Utc>, urgency: Urgency) -> DateTime<Utc> {
        self.calendar.deadline(at, self.limits.of(urgency))
    }

    /// Assisting parts as the API and events show them.
    pub fn parts_view(&self, parts: &[Part]) -> Vec<pb::AssistingPart> {
        parts
            .iter()
            .map(|p| pb::AssistingPart {
                unit_id: p.unit.clone(),
                unit_name: self.name_of(&p.unit),
                deadline: ts(p.deadline),
                accepted: p.accepted,
                answered: p.answer.is_some(),
                answer: p.answer.clone().unwrap_or_default(),
            })
            .collect()
    }

    /// The workflow state of a stored case; a case stored before the workflow existed is
    /// rebuilt from its columns.
    pub fn case_of(&self, row: &CaseRow) -> Result<Case, Error> {
        if let Some(case) = row.stored_workflow()? {
            return Ok(case);
        }
        let stage = store::parse_stage(&row.status)
            .ok_or_else(|| Error::Corrupt(format!("case {} has an unknown status {:?}", row.case_id, row.status)))?;
        let at = from_millis(row.dispatched_at);
        let deadline = row.deadline.map(from_millis).unwrap_or_else(|| self.deadline(at, Urgency::from_key(&row.urgency)));
        let owner = Some(row.unit_id.clone()).filter(|u| !u.is_empty());
        let mut case = Case::dispatched(owner, deadline, at);
        case.stage = stage;
        case.round = u32::try_from(row.round).unwrap_or(1).max(1);
        // Parts of a case dispatched before joint handling was tracked count as answered.
        case.assisting =
            row.assisting_ids().into_iter().map(|unit| Part { unit, deadline, accepted: true, answer: Some(String::new()) }).collect();
        Ok(case)
    }

    fn moment(&self, case: &Case, now: DateTime<Utc>) -> Moment {
        // Only "has the window passed?" matters: counting stops one past it.
        let cap = self.rules.return_window_days.saturating_add(1);
        Moment { now, working_days_since_dispatch: self.calendar.working_days_between(case.dispatched_at, now, cap) }
    }

    /// Whether `unit` is a handling unit a case may be given to (not the centre itself: a case
    /// for the centre waits in its manual queue).
    fn check_handling_unit(&self, field: &str, unit: &str) -> Result<(), Error> {
        match self.org.unit(unit.trim()) {
            None => Err(Error::Invalid(format!("{field} {unit:?} is not a unit of the district's organisation"))),
            Some(u) if matches!(u.kind, UnitKind::Centre | UnitKind::District) => {
                Err(Error::Invalid(format!("{field} {unit:?} is the {}: give the case to a handling unit", u.name)))
            }
            Some(_) => Ok(()),
        }
    }

    /// Applies `action` by `who` to the case and stores the result with its line of history;
    /// an action that changes nothing (signing twice) stores and records nothing, except a
    /// contact, which is recorded each time it is reported.
    ///
    /// `detail` replaces the usual line of history when the action has more to say.
    async fn act_with(
        &self,
        work: &mut Work<'_>,
        key: &CaseKey,
        who: Who<'_>,
        action: &Action,
        stamp: Stamp,
        detail: Option<String>,
    ) -> Result<Step, Error> {
        let row = find_case(work.tx, key).await?;
        let before = self.case_of(&row)?;
        let after = before.apply(who.actor, action, self.moment(&before, work.now()), self.rules)?;
        let changed = after != before;
        let at = work.now_millis();
        if changed {
            let unit_name = after.owner.as_deref().map(|o| self.name_of(o)).unwrap_or_default();
            store::save(work.tx, &row, &after, &unit_name, stamp, who.name, at).await?;
        }
        if changed || matches!(action, Action::Contact) {
            let detail = detail.unwrap_or_else(|| match action {
                Action::Accept => domain::accepted_detail(&self.name_of(&row.unit_id), who.name),
                _ => domain::action_detail(action, &|id| self.name_of(id), self.timezone),
            });
            store::add_history(work.tx, &row.case_id, at, event_key(action), &detail, who.name).await?;
        }
        tracing::info!(case_id = %row.case_id, action = event_key(action), changed, "workflow action");
        Ok(Step { row, before, after, changed })
    }

    async fn act(&self, work: &mut Work<'_>, key: &CaseKey, who: Who<'_>, action: &Action, stamp: Stamp) -> Result<Step, Error> {
        self.act_with(work, key, who, action, stamp, None).await
    }

    // ---------------------------------------------------------------- routing (派单)

    /// 派单: creates the case of a `case.classified` and routes it through the responsibility
    /// list; a case no rule fits, or whose rule names the centre, waits in the centre's manual
    /// queue (`case.queued`). A case dispatch already holds (a re-classification, a re-sent
    /// event) is left as it is.
    pub async fn dispatch_classified(&self, work: &mut Work<'_>, ev: &CaseClassified) -> Result<(), Error> {
        let meta = ev.meta.as_ref().expect("the kit checked the meta");
        let (case_id, case_no) = (meta.case_id.trim(), meta.case_no.trim());
        if store::find(work.tx, &CaseKey::Id(case_id.to_string())).await?.is_some() {
            tracing::info!(case_id, "case already dispatched; classification event ignored");
            return Ok(());
        }
        let location = ev.location.clone().unwrap_or_default();
        let place = Place { street: location.street, community: location.community };
        // A classification without a sub-item still routes by its category.
        let code = if ev.sub_item.trim().is_empty() { ev.category.trim() } else { ev.sub_item.trim() };
        let today = work.now().with_timezone(&self.timezone).date_naive();
        let route = domain::route(&self.matrix, &self.org, code, &place, today);
        let queued = self.org.unit(&route.lead).is_none_or(|u| matches!(u.kind, UnitKind::Centre | UnitKind::District));
        let urgency = Urgency::from_proto(ev.urgency());
        let now = work.now();
        let deadline = self.deadline(now, urgency);
        let mut case = Case::dispatched((!queued).then(|| route.lead.clone()), deadline, now);
        if !queued {
            case.assisting =
                route.assisting.iter().map(|unit| Part { unit: unit.clone(), deadline, accepted: false, answer: None }).collect();
        }
        let unit_name = case.owner.as_deref().map(|o| self.name_of(o)).unwrap_or_default();
        let street = self.org.street_of(&place.street, &place.community).unwrap_or_default().to_string();
        let category = if ev.category.trim().is_empty() { domain::category_of(code) } else { ev.category.trim() };
        let at = work.now_millis();
        let created = store::insert_case(
            work.tx,
            &store::NewCase {
                case_id,
                case_no,
                unit_name: &unit_name,
                sub_item: code,
                category,
                urgency: urgency.key(),
                title: &ev.title,
                street: &street,
                community: place.community.trim(),
                at,
                case: &case,
            },
        )
        .await?;
        if !created {
            return Ok(());
        }
        let ids = CaseIds { case_id, case_no };
        if queued {
            let reason = match route.rule {
                None => "责任清单无匹配规则，待人工派单".to_string(),
                Some(i) => format!("{}：待人工派单", domain::describe_rule(i, &self.matrix.rules[i])),
            };
            store::add_history(work.tx, case_id, at, "queued", &reason, SYSTEM.name).await?;
            tracing::info!(case_id, sub_item = code, "case queued for manual dispatch");
            let event = CaseQueued { meta: None, sub_item: code.to_string(), urgency: ev.urgency, title: ev.title.clone(), reason };
            work.emit(ids, event);
            return Ok(());
        }
        let assisting_names: Vec<String> = route.assisting.iter().map(|a| self.name_of(a)).collect();
        let names: Vec<&str> = assisting_names.iter().map(String::as_str).collect();
        store::add_history(work.tx, case_id, at, "dispatched", &domain::dispatched_detail(&unit_name, &names), SYSTEM.name).await?;
        tracing::info!(case_id, unit_id = %route.lead, rule = ?route.rule, "case dispatched");
        let event = CaseDispatched {
            meta: None,
            unit_id: route.lead.clone(),
            unit_name,
            assisting_unit_ids: route.assisting.clone(),
            sub_item: code.to_string(),
            urgency: ev.urgency,
            round: 1,
            title: ev.title.clone(),
            deadline: ts(deadline),
            parts: self.parts_view(&case.assisting),
            how: "rule".into(),
            reason: String::new(),
            previous_unit_id: String::new(),
        };
        work.emit(ids, event);
        Ok(())
    }

    /// The `case.dispatched` of a case given to a new unit by the centre.
    fn redispatched(&self, step: &Step, how: &str, reason: &str) -> CaseDispatched {
        let owner = step.owner();
        CaseDispatched {
            meta: None,
            unit_name: self.name_of(&owner),
            unit_id: owner,
            assisting_unit_ids: step.after.assisting.iter().map(|p| p.unit.clone()).collect(),
            sub_item: step.row.sub_item.clone(),
            urgency: Urgency::from_key(&step.row.urgency).to_proto() as i32,
            round: step.round(),
            title: step.row.title.clone(),
            deadline: ts(step.after.deadline),
            parts: self.parts_view(&step.after.assisting),
            how: how.into(),
            reason: reason.into(),
            previous_unit_id: step.before.owner.clone().unwrap_or_default(),
        }
    }

    // ---------------------------------------------------------------- the owner's steps

    /// 签收; signing again changes nothing and announces nothing.
    pub async fn accept(&self, work: &mut Work<'_>, key: &CaseKey, who: Who<'_>) -> Result<String, Error> {
        let step = self.act(work, key, who, &Action::Accept, Stamp::Accepted).await?;
        if step.changed {
            let event = CaseAccepted { meta: None, unit_id: step.owner(), accepted_by: who.name.into(), round: step.round() };
            work.emit(step.ids(), event);
        }
        Ok(step.row.case_id)
    }

    /// 联系: recorded and announced each time it is reported.
    pub async fn contact(&self, work: &mut Work<'_>, key: &CaseKey, who: Who<'_>, note: &str) -> Result<String, Error> {
        let note = domain::validate_note(note)?;
        let detail = domain::contacted_detail(who.name, &note);
        let step = self.act_with(work, key, who, &Action::Contact, Stamp::None, Some(detail)).await?;
        let event = CaseContacted { meta: None, unit_id: step.owner(), contacted_by: who.name.into(), round: step.round(), note };
        work.emit(step.ids(), event);
        Ok(step.row.case_id)
    }

    /// 核实.
    pub async fn verify(&self, work: &mut Work<'_>, key: &CaseKey, who: Who<'_>, note: &str) -> Result<String, Error> {
        let note = domain::validate_note(note)?;
        let step = self.act(work, key, who, &Action::Verify, Stamp::None).await?;
        if step.changed {
            let event = CaseVerified { meta: None, unit_id: step.owner(), verified_by: who.name.into(), round: step.round(), note };
            work.emit(step.ids(), event);
        }
        Ok(step.row.case_id)
    }

    /// 答复 with the written response (处理意见书).
    pub async fn reply(&self, work: &mut Work<'_>, key: &CaseKey, who: Who<'_>, letter: Letter) -> Result<String, Error> {
        let step = self.act(work, key, who, &Action::Reply { letter }, Stamp::None).await?;
        let letter = step.after.reply_letter.clone().expect("a reply keeps its letter");
        let event = CaseReplied {
            meta: None,
            unit_id: step.owner(),
            replied_by: who.name.into(),
            round: step.round(),
            letter: Some(letter_view(&letter)),
        };
        work.emit(step.ids(), event);
        Ok(step.row.case_id)
    }

    /// 办结. With a `letter`, the written response is given in the same step.
    pub async fn resolve(&self, work: &mut Work<'_>, key: &CaseKey, who: Who<'_>, letter: Option<Letter>) -> Result<String, Error> {
        if let Some(letter) = letter {
            self.reply(work, key, who, letter).await?;
        }
        let step = self.act(work, key, who, &Action::Resolve, Stamp::Resolved).await?;
        let reply = step.after.reply_letter.as_ref().map(|l| l.handling.clone()).unwrap_or_default();
        let event = CaseResolved {
            meta: None,
            unit_id: step.owner(),
            resolved_by: who.name.into(),
            reply,
            round: step.round(),
            urgency: Urgency::from_key(&step.row.urgency).to_proto() as i32,
        };
        work.emit(step.ids(), event);
        Ok(step.row.case_id)
    }

    /// 阶段性办结 until `next_check`.
    pub async fn stage_resolve(
        &self,
        work: &mut Work<'_>,
        key: &CaseKey,
        who: Who<'_>,
        next_check: DateTime<Utc>,
    ) -> Result<String, Error> {
        let step = self.act(work, key, who, &Action::StageResolve { next_check }, Stamp::None).await?;
        let event =
            CaseStaged { meta: None, unit_id: step.owner(), staged_by: who.name.into(), round: step.round(), next_check: ts(next_check) };
        work.emit(step.ids(), event);
        Ok(step.row.case_id)
    }

    // ---------------------------------------------------------------- returns and moves

    /// 退回 to the centre, for its review.
    pub async fn return_case(
        &self,
        work: &mut Work<'_>,
        key: &CaseKey,
        who: Who<'_>,
        reason: ReturnReason,
        text: &str,
    ) -> Result<String, Error> {
        let step = self.act(work, key, who, &Action::Return { reason, text: text.into() }, Stamp::None).await?;
        let pending = step.after.pending_return.clone().expect("a return is pending after one");
        let event = CaseReturned {
            meta: None,
            unit_id: pending.unit,
            returned_by: who.name.into(),
            reason: domain::return_reason_to_proto(reason) as i32,
            text: pending.text,
            returns: step.after.returns,
        };
        work.emit(step.ids(), event);
        Ok(step.row.case_id)
    }

    /// The centre's ruling on a return: `Some(unit)` dispatches it there, `None` sends it back
    /// with `ruling`.
    pub async fn review_return(
        &self,
        work: &mut Work<'_>,
        key: &CaseKey,
        who: Who<'_>,
        to: Option<&str>,
        ruling: &str,
    ) -> Result<String, Error> {
        if let Some(to) = to {
            self.check_handling_unit("to_unit_id", to)?;
        }
        let action = Action::ReviewReturn(match to {
            Some(to) => Ruling::Redispatch { to: to.trim().into() },
            None => Ruling::SendBack { reason: ruling.into() },
        });
        let step = self.act(work, key, who, &action, Stamp::None).await?;
        let returned_by = step.before.pending_return.as_ref().map(|p| p.unit.clone()).unwrap_or_default();
        let event = CaseReturnReviewed {
            meta: None,
            unit_id: returned_by,
            upheld: to.is_some(),
            to_unit_id: to.map(|t| t.trim().to_string()).unwrap_or_default(),
            ruling: ruling.trim().into(),
            reviewed_by: who.name.into(),
        };
        work.emit(step.ids(), event);
        if to.is_some() {
            work.emit(step.ids(), self.redispatched(&step, "redispatch", ruling.trim()));
        }
        Ok(step.row.case_id)
    }

    /// 人工派单 from the manual queue.
    pub async fn dispatch_manually(
        &self,
        work: &mut Work<'_>,
        key: &CaseKey,
        who: Who<'_>,
        to: &str,
        reason: &str,
    ) -> Result<String, Error> {
        self.check_handling_unit("to_unit_id", to)?;
        let reason = crate::workflow::optional_text("the reason", reason)?;
        let step = self.act(work, key, who, &Action::Dispatch { to: to.trim().into() }, Stamp::None).await?;
        work.emit(step.ids(), self.redispatched(&step, "manual", &reason));
        Ok(step.row.case_id)
    }

    /// 改派 by the centre.
    pub async fn transfer(&self, work: &mut Work<'_>, key: &CaseKey, who: Who<'_>, to: &str, reason: &str) -> Result<String, Error> {
        self.check_handling_unit("to_unit_id", to)?;
        let step = self.act(work, key, who, &Action::Transfer { to: to.trim().into(), reason: reason.into() }, Stamp::None).await?;
        work.emit(step.ids(), self.redispatched(&step, "transfer", reason.trim()));
        Ok(step.row.case_id)
    }

    // ---------------------------------------------------------------- joint handling (多方联动)

    /// 吹哨: calls in an assisting unit, its part due by `deadline` (the case's when `None`).
    pub async fn add_assisting(
        &self,
        work: &mut Work<'_>,
        key: &CaseKey,
        who: Who<'_>,
        unit: &str,
        deadline: Option<DateTime<Utc>>,
        note: &str,
    ) -> Result<String, Error> {
        self.check_handling_unit("unit_id", unit)?;
        let note = crate::workflow::optional_text("the note", note)?;
        let action = Action::AddAssisting { unit: unit.trim().into(), deadline };
        let mut detail = domain::action_detail(&action, &|id| self.name_of(id), self.timezone);
        if !note.is_empty() {
            detail.push_str(&format!("，协办要求：{note}"));
        }
        let step = self.act_with(work, key, who, &action, Stamp::None, Some(detail)).await?;
        let part = self.parts_view(&step.after.assisting).into_iter().find(|p| p.unit_id == unit.trim());
        work.emit(step.ids(), CaseAssistAdded { meta: None, lead_unit_id: step.owner(), part, added_by: who.name.into() });
        Ok(step.row.case_id)
    }

    /// An assisting unit signs for its part; again, nothing changes.
    pub async fn accept_assist(&self, work: &mut Work<'_>, key: &CaseKey, who: Who<'_>) -> Result<String, Error> {
        let detail = format!("协办单位{}已签收", self.name_of(&unit_of(who)));
        let step = self.act_with(work, key, who, &Action::AcceptAssist, Stamp::None, Some(detail)).await?;
        if step.changed {
            work.emit(step.ids(), CaseAssistAccepted { meta: None, unit_id: unit_of(who), accepted_by: who.name.into() });
        }
        Ok(step.row.case_id)
    }

    /// An assisting unit answers its part.
    pub async fn answer_assist(&self, work: &mut Work<'_>, key: &CaseKey, who: Who<'_>, answer: &str) -> Result<String, Error> {
        let unit = unit_of(who);
        let detail = format!("协办单位{}答复：{}", self.name_of(&unit), answer.trim());
        let step = self.act_with(work, key, who, &Action::AnswerAssist { answer: answer.into() }, Stamp::None, Some(detail)).await?;
        let answer = step.after.assisting.iter().find(|p| p.unit == unit).and_then(|p| p.answer.clone()).unwrap_or_default();
        let all_answered = step.after.assisting.iter().all(|p| p.answer.is_some());
        work.emit(step.ids(), CaseAssistAnswered { meta: None, unit_id: unit, answered_by: who.name.into(), answer, all_answered });
        Ok(step.row.case_id)
    }

    // ---------------------------------------------------------------- time (延期)

    /// 延期申请 until `until`.
    pub async fn request_extension(
        &self,
        work: &mut Work<'_>,
        key: &CaseKey,
        who: Who<'_>,
        until: DateTime<Utc>,
        reason: &str,
    ) -> Result<String, Error> {
        let step = self.act(work, key, who, &Action::RequestExtension { until, reason: reason.into() }, Stamp::None).await?;
        let asked = step.after.pending_extension.clone().expect("an extension is pending after a request");
        let event = CaseExtensionRequested {
            meta: None,
            unit_id: step.owner(),
            requested_by: who.name.into(),
            until: ts(asked.until),
            reason: asked.reason,
            deadline: ts(step.after.deadline),
        };
        work.emit(step.ids(), event);
        Ok(step.row.case_id)
    }

    /// 延期审批.
    pub async fn decide_extension(
        &self,
        work: &mut Work<'_>,
        key: &CaseKey,
        who: Who<'_>,
        approve: bool,
        reason: &str,
    ) -> Result<String, Error> {
        let reason = crate::workflow::optional_text("the reason", reason)?;
        let step = self.act(work, key, who, &Action::DecideExtension { approve }, Stamp::None).await?;
        let event = CaseExtensionDecided {
            meta: None,
            unit_id: step.owner(),
            approved: approve,
            deadline: ts(step.after.deadline),
            original_deadline: ts(step.after.original_deadline),
            decided_by: who.name.into(),
            reason,
        };
        work.emit(step.ids(), event);
        Ok(step.row.case_id)
    }

    // ---------------------------------------------------------------- oversight (提级, 督办)

    /// 提级/领导包案 to `leader`, a leader of the organisation.
    pub async fn escalate(&self, work: &mut Work<'_>, key: &CaseKey, who: Who<'_>, leader: &str, reason: &str) -> Result<String, Error> {
        let leader = leader.trim();
        if self.org.leader(leader).is_none() {
            let known: Vec<&str> = self.org.leaders.iter().map(|l| l.id.as_str()).collect();
            return Err(Error::Invalid(format!(
                "leader_id {leader:?} is not a leader of the organisation (leaders: {})",
                known.join(", ")
            )));
        }
        let reason = crate::workflow::optional_text("the reason", reason)?;
        let step = self.act(work, key, who, &Action::Escalate { leader: leader.into() }, Stamp::None).await?;
        let event = CaseEscalated {
            meta: None,
            unit_id: step.owner(),
            leader_id: leader.into(),
            leader_name: self.name_of(leader),
            escalated_by: who.name.into(),
            reason,
        };
        work.emit(step.ids(), event);
        Ok(step.row.case_id)
    }

    /// 督办 with a note.
    pub async fn supervise(&self, work: &mut Work<'_>, key: &CaseKey, who: Who<'_>, note: &str) -> Result<String, Error> {
        let step = self.act(work, key, who, &Action::Supervise { note: note.into() }, Stamp::None).await?;
        let note = step.after.supervision_notes.last().cloned().unwrap_or_default();
        work.emit(step.ids(), CaseSupervised { meta: None, unit_id: step.owner(), note, supervised_by: who.name.into() });
        Ok(step.row.case_id)
    }

    /// 不合理诉求: closed by the centre with an explanation to the citizen.
    pub async fn close_as_unreasonable(
        &self,
        work: &mut Work<'_>,
        key: &CaseKey,
        who: Who<'_>,
        explanation: &str,
    ) -> Result<String, Error> {
        let step = self.act(work, key, who, &Action::CloseAsUnreasonable { explanation: explanation.into() }, Stamp::Closed).await?;
        let event = CaseClosed {
            meta: None,
            round: step.round(),
            unreasonable: true,
            explanation: step.after.explanation.clone().unwrap_or_default(),
            unit_id: step.owner(),
        };
        work.emit(step.ids(), event);
        Ok(step.row.case_id)
    }

    // ---------------------------------------------------------------- events of other services

    /// 重新办理 after a dissatisfied or unsolved revisit: the same owner, the next round. Emits
    /// nothing: the services that care consume `case.reopened` themselves.
    pub async fn reopen(&self, work: &mut Work<'_>, ev: &CaseReopened) -> Result<(), Error> {
        let key = CaseKey::Id(event_case_id(ev));
        let row = find_case(work.tx, &key).await?;
        let current = u32::try_from(row.round).unwrap_or_default();
        let round = if ev.round == 0 { current + 1 } else { ev.round };
        if round <= current {
            tracing::info!(case_id = %row.case_id, round, "reopening already applied");
            return Ok(());
        }
        if round != current + 1 {
            return Err(Error::Invalid(format!("case {}: round {round} does not follow round {current}", row.case_no)));
        }
        let detail = domain::reopened_detail(&ev.reason, round);
        let step = self.act_with(work, &key, SYSTEM, &Action::Reopen, Stamp::None, Some(detail)).await?;
        let reopens = step.round() - 1;
        if self.escalate_after_reopens > 0 && reopens >= self.escalate_after_reopens && step.after.leader.is_none() {
            let reason = format!("重复投诉：第{reopens}次重办，自动提级");
            self.escalate_to_overseer(work, &key, &step.after, SYSTEM, &reason).await?;
        }
        Ok(())
    }

    /// Escalates to the leader overseeing the case's owner, if the organisation names one.
    async fn escalate_to_overseer(&self, work: &mut Work<'_>, key: &CaseKey, case: &Case, who: Who<'_>, reason: &str) -> Result<(), Error> {
        let owner = case.owner.clone().unwrap_or_default();
        match self.org.leaders.iter().find(|l| l.oversees.contains(&owner)) {
            Some(leader) => {
                let leader = leader.id.clone();
                self.escalate(work, key, who, &leader, reason).await?;
            }
            None => tracing::warn!(unit_id = %owner, "a case should be escalated but no leader oversees its unit"),
        }
        Ok(())
    }

    /// 结案 when the revisit found the citizen (basically) satisfied and the problem solved;
    /// any other verdict is left to the `case.reopened` that accompanies it. A verdict on an
    /// earlier round is stale, and a repeated one changes nothing.
    pub async fn on_revisit(&self, work: &mut Work<'_>, ev: &RevisitRecorded) -> Result<(), Error> {
        if !domain::verdict_closes(ev.satisfaction(), ev.solved) {
            return Ok(());
        }
        let key = CaseKey::Id(event_case_id(ev));
        let row = find_case(work.tx, &key).await?;
        let current = u32::try_from(row.round).unwrap_or_default();
        let round = if ev.round == 0 { current } else { ev.round };
        let case = self.case_of(&row)?;
        if round < current || case.stage == Stage::Closed {
            tracing::info!(case_id = %row.case_id, round, "revisit verdict changes nothing (repeated or stale)");
            return Ok(());
        }
        if round > current {
            return Err(Error::Invalid(format!("case {}: a verdict on round {round}, but the case is in round {current}", row.case_no)));
        }
        let recorder = ev.recorded_by.trim();
        let who = Who { actor: Actor::System, name: if recorder.is_empty() { SYSTEM.name } else { recorder } };
        let detail = domain::closed_detail(ev.satisfaction());
        let step = self.act_with(work, &key, who, &Action::Close, Stamp::Closed, Some(detail)).await?;
        work.emit(step.ids(), CaseClosed { meta: None, round: step.round(), unit_id: step.owner(), ..Default::default() });
        Ok(())
    }

    /// An SLA alert: the case's colour rises; a breached resolve limit puts the case under
    /// supervision (超时督办), a breached escalation limit or the ladder's last rung (`level`
    /// "escalate": red for the district's time) hands it to the leader overseeing its unit (超期提级).
    pub async fn on_sla(&self, work: &mut Work<'_>, case_id: &str, milestone: &str, level: &str) -> Result<(), Error> {
        let key = CaseKey::Id(case_id.to_string());
        // An alert about a case dispatch does not hold (still being classified) colours nothing.
        let Some(row) = store::find(work.tx, &key).await? else {
            tracing::info!(case_id, milestone, "SLA alert for a case dispatch does not hold yet; nothing to colour");
            return Ok(());
        };
        let colour = if level == "yellow" { "yellow" } else { "red" };
        store::raise_colour(work.tx, &row.case_id, colour).await?;
        if colour != "red" {
            return Ok(());
        }
        let case = self.case_of(&row)?;
        if matches!(case.stage, Stage::Resolved | Stage::Closed | Stage::StagedResolved) {
            return Ok(());
        }
        let who = Who { actor: Actor::System, name: "sla" };
        if level == "escalate" {
            // The ladder's last rung: red for as long as the district allows (红灯提级).
            if case.leader.is_none() {
                let reason = format!("{}超时后仍未办理，按时限阶梯自动提级", jiesu_reference::milestone_zh(milestone));
                self.escalate_to_overseer(work, &key, &case, who, &reason).await?;
            }
            return Ok(());
        }
        match milestone {
            "resolve" if !case.supervised => {
                let note = format!("{}时限已超，系统自动督办", jiesu_reference::milestone_zh(milestone));
                self.supervise(work, &key, who, &note).await?;
            }
            "escalate" if case.leader.is_none() => {
                self.escalate_to_overseer(work, &key, &case, who, "超过提级时限仍未办结，自动提级").await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// The unit of a unit actor.
fn unit_of(who: Who<'_>) -> String {
    match who.actor {
        Actor::Unit(u) => u.to_string(),
        _ => String::new(),
    }
}

/// The written response as the API and events show it.
pub fn letter_view(letter: &Letter) -> pb::ResponseLetter {
    pb::ResponseLetter {
        verification: letter.verification.clone(),
        handling: letter.handling.clone(),
        next_steps: letter.next_steps.clone(),
    }
}

async fn find_case(tx: &mut Tx, key: &CaseKey) -> Result<CaseRow, Error> {
    store::find(tx, key).await?.ok_or_else(|| Error::NotFound(key.describe()))
}

/// The case an event is about (its meta was checked by the kit).
pub(crate) fn event_case_id(ev: &impl Event) -> String {
    ev.meta().map(|m| m.case_id.trim().to_string()).unwrap_or_default()
}
