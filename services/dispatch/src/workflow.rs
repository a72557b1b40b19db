//! The handling workflow of a case (办理流程) as a pure state machine, the foundation of issue 7:
//! who owns a case and what each party may do with it — first-responsible ownership (首接负责),
//! returns (退回) reviewed by the centre and never bouncing without end (转圈), manual dispatch and
//! transfer, joint handling (多方联动/吹哨报到) with a part per assisting unit, extensions (延期)
//! keeping the original deadline, staged completion (阶段性办结), escalation to a leader (领导包案),
//! supervision (督办), reopening from a revisit (重办) and unreasonable requests (不合理诉求).
//!
//! No I/O and no clock: the caller gives the time and how many working days have passed since
//! dispatch (from the district's calendar), and gets the next state or the rule that refused.
//! The service ([`crate::service`]) stores the state, records each action in the case's history
//! and announces it with a `case.*` event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The longest free text of an action (a reason, a note, a section of the response).
pub const MAX_TEXT_CHARS: usize = 2_000;

/// How far ahead a date of an action may lie (an extension, a next check, a part's deadline):
/// a year; anything later is a typo, and staged completion is checked again within it.
pub const MAX_HORIZON_DAYS: i64 = 366;

fn within_horizon(what: &str, at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Refusal> {
    if at > now + chrono::Duration::days(MAX_HORIZON_DAYS) {
        return Err(refuse("too-far", format!("{what} is more than {MAX_HORIZON_DAYS} days ahead")));
    }
    Ok(())
}

/// How far a case has been handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// 已派单: with its owner, not signed for yet (or back with the centre: see [`Case::owner`]).
    Dispatched,
    /// 重新办理: a dissatisfied revisit sent it back to its owner, who signs for the new round.
    Reopened,
    /// 已签收
    Accepted,
    /// 已联系: the citizen has been reached.
    Contacted,
    /// 已核实: the facts have been checked on site.
    Verified,
    /// 已答复: the written response (处理意见书) is given.
    Replied,
    /// 阶段性办结: handled as far as possible now; checked again on a date.
    StagedResolved,
    /// 已办结: awaiting the revisit.
    Resolved,
    /// 已结案
    Closed,
}

/// Why a unit returns a case (退回原因).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnReason {
    /// 不属于本单位职责
    NotOurRemit,
    /// 地址或信息有误
    WrongPlace,
    /// 诉求不清，无法办理
    Unclear,
    /// 其他
    Other,
}

/// A return waiting for the centre's review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReturn {
    pub unit: String,
    pub reason: ReturnReason,
    pub text: String,
}

/// One assisting unit's part of a joint case, on its own deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub unit: String,
    pub deadline: DateTime<Utc>,
    pub accepted: bool,
    pub answer: Option<String>,
}

/// An extension asked for and not decided yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingExtension {
    pub until: DateTime<Utc>,
    pub reason: String,
}

/// The workflow state of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub stage: Stage,
    /// The lead unit, owner until the case is closed; `None` while in the centre's manual queue.
    pub owner: Option<String>,
    pub assisting: Vec<Part>,
    pub pending_return: Option<PendingReturn>,
    /// Returns made so far: past [`Rules::max_returns`] only the centre moves the case.
    pub returns: u32,
    pub pending_extension: Option<PendingExtension>,
    /// The deadline in force (an approved extension moves it)…
    pub deadline: DateTime<Utc>,
    /// …and the first one, kept for the statistics.
    pub original_deadline: DateTime<Utc>,
    pub dispatched_at: DateTime<Utc>,
    /// The leader the case is escalated to (owner of record; the unit keeps working it).
    pub leader: Option<String>,
    pub supervised: bool,
    pub supervision_notes: Vec<String>,
    /// 1 at first dispatch; each reopening adds one.
    pub round: u32,
    pub unreasonable: bool,
    pub next_check: Option<DateTime<Utc>>,
    /// The written response of the round (处理意见书).
    pub reply_letter: Option<Letter>,
    /// What the citizen was told when the centre closed the request as unreasonable.
    pub explanation: Option<String>,
}

/// The written response to the citizen (处理意见书).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Letter {
    /// 核实情况: what was found.
    pub verification: String,
    /// 处理结果: what was done.
    pub handling: String,
    /// 下一步措施: what comes next; may be empty.
    pub next_steps: String,
}

impl Letter {
    /// The letter with its sections trimmed, or the rule it breaks: the handling is required
    /// (a unit that resolves with a one-line answer gives only that), and no section is longer
    /// than [`MAX_TEXT_CHARS`].
    pub fn checked(&self) -> Result<Letter, Refusal> {
        Ok(Letter {
            verification: optional_text("the verification (核实情况)", &self.verification)?,
            handling: text("the handling (处理结果)", &self.handling)?,
            next_steps: optional_text("the next steps (下一步措施)", &self.next_steps)?,
        })
    }
}

/// Who acts, as the verified token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// 受理派单员 of the service centre.
    Centre,
    /// 督办员
    Supervisor,
    /// A unit's handler or head.
    Unit(&'a str),
    Leader(&'a str),
    /// Another service: the SLA timer, revisit.
    System,
}

/// What somebody does with a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    Contact,
    Verify,
    Reply {
        letter: Letter,
    },
    Resolve,
    StageResolve {
        next_check: DateTime<Utc>,
    },
    Return {
        reason: ReturnReason,
        text: String,
    },
    /// The centre's ruling on a return: dispatch elsewhere, or send it back with its reasons.
    ReviewReturn(Ruling),
    /// From the manual queue to a unit.
    Dispatch {
        to: String,
    },
    Transfer {
        to: String,
        reason: String,
    },
    AddAssisting {
        unit: String,
        /// The part's own deadline; the case's deadline in force when `None`.
        deadline: Option<DateTime<Utc>>,
    },
    AcceptAssist,
    AnswerAssist {
        answer: String,
    },
    RequestExtension {
        until: DateTime<Utc>,
        reason: String,
    },
    DecideExtension {
        approve: bool,
    },
    Escalate {
        leader: String,
    },
    Supervise {
        note: String,
    },
    /// A dissatisfied revisit: back to the same owner.
    Reopen,
    /// A satisfied revisit.
    Close,
    CloseAsUnreasonable {
        explanation: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ruling {
    Redispatch { to: String },
    SendBack { reason: String },
}

/// The district's settings of the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Working days after dispatch within which a unit may return a case (default 2).
    pub return_window_days: u32,
    /// Returns a case may have; after them only the centre moves it (default 2).
    pub max_returns: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Self { return_window_days: 2, max_returns: 2 }
    }
}

/// When an action happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub now: DateTime<Utc>,
    /// Working days since the case was (last) dispatched, by the district's calendar.
    pub working_days_since_dispatch: u32,
}

/// An action refused, with the rule that refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The rule's name, stable for clients and tests (`return-window`, `not-owner`, …).
    pub rule: &'static str,
    pub why: String,
}

fn refuse(rule: &'static str, why: impl Into<String>) -> Refusal {
    Refusal { rule, why: why.into() }
}

/// Required free text, trimmed: not empty, at most [`MAX_TEXT_CHARS`], no control characters
/// but line breaks and tabs.
pub fn text(field: &str, value: &str) -> Result<String, Refusal> {
    let value = optional_text(field, value)?;
    if value.is_empty() {
        return Err(refuse("missing-text", format!("{field} must not be empty")));
    }
    Ok(value)
}

/// Optional free text, trimmed, with the limits of [`text`].
pub fn optional_text(field: &str, value: &str) -> Result<String, Refusal> {
    let value = value.trim();
    let chars = value.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(refuse("text-too-long", format!("{field} is {chars} characters long; at most {MAX_TEXT_CHARS} are allowed")));
    }
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(refuse("control-characters", format!("{field} contains control characters")));
    }
    Ok(value.to_string())
}

impl Refusal {
    /// The request itself is bad (missing or malformed text, a date in the past), as opposed to
    /// the case's state or the caller's place refusing it.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self.rule,
            "missing-text"
                | "text-too-long"
                | "control-characters"
                | "next-check-past"
                | "deadline-past"
                | "extension-not-later"
                | "too-far"
        )
    }

    /// The caller may not do this, whatever the case's state.
    pub fn is_forbidden(&self) -> bool {
        matches!(self.rule, "not-owner" | "centre-only" | "not-assisting" | "not-supervisor" | "revisit-only")
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}]", self.why, self.rule)
    }
}

impl std::error::Error for Refusal {}

impl Case {
    /// A case just dispatched to `owner` (or to the manual queue when `None`), due by `deadline`.
    pub fn dispatched(owner: Option<String>, deadline: DateTime<Utc>, at: DateTime<Utc>) -> Self {
        Self {
            stage: Stage::Dispatched,
            owner,
            assisting: Vec::new(),
            pending_return: None,
            returns: 0,
            pending_extension: None,
            deadline,
            original_deadline: deadline,
            dispatched_at: at,
            leader: None,
            supervised: false,
            supervision_notes: Vec::new(),
            round: 1,
            unreasonable: false,
            next_check: None,
            reply_letter: None,
            explanation: None,
        }
    }

    fn is_owner(&self, actor: Actor<'_>) -> bool {
        matches!((actor, &self.owner), (Actor::Unit(u), Some(owner)) if u == owner)
    }

    fn owner_only(&self, actor: Actor<'_>) -> Result<(), Refusal> {
        if self.owner.is_none() {
            return Err(refuse("manual-queue", "the case waits in the centre's manual queue: the centre dispatches it first"));
        }
        if !self.is_owner(actor) {
            return Err(refuse("not-owner", "only the owning unit's handler or head handles the case (首接负责)"));
        }
        if self.pending_return.is_some() {
            return Err(refuse("return-pending", "the unit's return awaits the centre's review"));
        }
        Ok(())
    }

    fn centre_only(actor: Actor<'_>) -> Result<(), Refusal> {
        match actor {
            Actor::Centre | Actor::Supervisor => Ok(()),
            _ => Err(refuse("centre-only", "only the service centre may do this")),
        }
    }

    fn at_stage(&self, allowed: &[Stage], what: &str) -> Result<(), Refusal> {
        if allowed.contains(&self.stage) {
            Ok(())
        } else {
            Err(refuse("wrong-stage", format!("{what} is not possible at stage {:?}", self.stage)))
        }
    }

    /// The state after `actor` does `action` at `moment`, or the rule that refuses it. The case
    /// itself never changes: a refusal leaves nothing half done.
    pub fn apply(&self, actor: Actor<'_>, action: &Action, moment: Moment, rules: Rules) -> Result<Case, Refusal> {
        use Stage::*;
        if self.stage == Closed && !matches!(action, Action::Reopen) {
            return Err(refuse("closed", "the case is closed"));
        }
        let mut next = self.clone();
        match action {
            Action::Accept => {
                self.owner_only(actor)?;
                self.at_stage(&[Dispatched, Reopened, Accepted, Contacted, Verified, Replied, StagedResolved], "signing for the case")?;
                // Signing again changes nothing: a retried command is not an error.
                if matches!(self.stage, Dispatched | Reopened) {
                    next.stage = Accepted;
                }
            }
            Action::Contact => {
                self.owner_only(actor)?;
                // A reopened case is owned already: the unit calls the citizen again at once.
                self.at_stage(&[Reopened, Accepted, Contacted, Verified], "reporting the contact")?;
                // Each contact is recorded; the first moves the case on.
                if matches!(self.stage, Accepted | Reopened) {
                    next.stage = Contacted;
                }
            }
            Action::Verify => {
                self.owner_only(actor)?;
                self.at_stage(&[Contacted], "reporting the verification")?;
                next.stage = Verified;
            }
            Action::Reply { letter } => {
                self.owner_only(actor)?;
                // The letter's verification section records a check made during the contact visit.
                self.at_stage(&[Contacted, Verified, StagedResolved], "the written response")?;
                next.reply_letter = Some(letter.checked()?);
                next.stage = Replied;
            }
            Action::StageResolve { next_check } => {
                self.owner_only(actor)?;
                self.at_stage(&[Replied], "staged completion")?;
                if *next_check <= moment.now {
                    return Err(refuse("next-check-past", "the next check must be in the future"));
                }
                within_horizon("the next check", *next_check, moment.now)?;
                next.stage = StagedResolved;
                next.next_check = Some(*next_check);
            }
            Action::Resolve => {
                self.owner_only(actor)?;
                if matches!(self.stage, Contacted | Verified | StagedResolved) {
                    return Err(refuse(
                        "missing-text",
                        "reply is required: the answer to the citizen (答复内容), unless the written response was given with Reply",
                    ));
                }
                self.at_stage(&[Replied], "resolving")?;
                if let Some(part) = self.assisting.iter().find(|p| p.answer.is_none()) {
                    return Err(refuse("assist-unanswered", format!("assisting unit {} has not answered its part", part.unit)));
                }
                next.stage = Resolved;
                next.pending_extension = None;
            }
            Action::Return { reason, text: why } => {
                self.owner_only(actor)?;
                self.at_stage(&[Dispatched, Accepted], "returning the case")?;
                if moment.working_days_since_dispatch >= rules.return_window_days {
                    return Err(refuse(
                        "return-window",
                        format!("a case may be returned only within {} working days of dispatch", rules.return_window_days),
                    ));
                }
                if self.returns >= rules.max_returns {
                    return Err(refuse(
                        "returns-exhausted",
                        format!("the case has been returned {} times: the centre must handle or escalate it", self.returns),
                    ));
                }
                let unit = self.owner.clone().expect("owner_only checked it");
                next.pending_return = Some(PendingReturn { unit, reason: *reason, text: text("the reason", why)? });
                next.returns += 1;
            }
            Action::ReviewReturn(ruling) => {
                Self::centre_only(actor)?;
                if self.pending_return.is_none() {
                    return Err(refuse("no-return", "no return awaits review"));
                }
                next.pending_return = None;
                match ruling {
                    Ruling::Redispatch { to } => next.redispatch(to, moment.now)?,
                    Ruling::SendBack { reason } => {
                        text("the ruling", reason)?;
                    }
                }
            }
            Action::Dispatch { to } => {
                Self::centre_only(actor)?;
                if self.owner.is_some() {
                    return Err(refuse("has-owner", "the case has an owner: transfer it instead"));
                }
                next.redispatch(to, moment.now)?;
            }
            Action::Transfer { to, reason } => {
                Self::centre_only(actor)?;
                if self.owner.is_none() {
                    return Err(refuse("manual-queue", "the case has no owner yet: dispatch it"));
                }
                self.at_stage(&[Dispatched, Reopened, Accepted, Contacted, Verified], "a transfer")?;
                text("the reason", reason)?;
                next.pending_return = None;
                next.redispatch(to, moment.now)?;
            }
            Action::AddAssisting { unit, deadline } => {
                if !(matches!(actor, Actor::Centre) || self.is_owner(actor)) {
                    return Err(refuse("not-owner", "only the centre or the lead unit calls in assisting units (吹哨)"));
                }
                self.at_stage(&[Dispatched, Reopened, Accepted, Contacted, Verified], "calling in an assisting unit")?;
                let unit = text("the unit", unit)?;
                if self.owner.as_deref() == Some(unit.as_str()) || self.assisting.iter().any(|p| p.unit == unit) {
                    return Err(refuse("already-involved", format!("{unit} already works on the case")));
                }
                let deadline = deadline.unwrap_or(self.deadline);
                if deadline <= moment.now {
                    return Err(refuse("deadline-past", "an assisting part's deadline must be in the future"));
                }
                within_horizon("the part's deadline", deadline, moment.now)?;
                next.assisting.push(Part { unit, deadline, accepted: false, answer: None });
            }
            Action::AcceptAssist | Action::AnswerAssist { .. } => {
                let Actor::Unit(unit) = actor else { return Err(refuse("not-assisting", "only an assisting unit answers its part")) };
                let Some(i) = self.assisting.iter().position(|p| p.unit == unit) else {
                    return Err(refuse("not-assisting", format!("{unit} has no part in this case")));
                };
                if self.assisting[i].answer.is_some() {
                    return Err(refuse("part-answered", "this part is answered"));
                }
                match action {
                    Action::AcceptAssist => next.assisting[i].accepted = true,
                    Action::AnswerAssist { answer } => {
                        next.assisting[i].accepted = true;
                        next.assisting[i].answer = Some(text("the answer", answer)?);
                    }
                    _ => unreachable!("matched above"),
                }
            }
            Action::RequestExtension { until, reason } => {
                self.owner_only(actor)?;
                self.at_stage(&[Dispatched, Reopened, Accepted, Contacted, Verified, Replied, StagedResolved], "an extension")?;
                if self.pending_extension.is_some() {
                    return Err(refuse("extension-pending", "an extension request awaits the centre's decision"));
                }
                if moment.now >= self.deadline {
                    return Err(refuse("past-deadline", "an extension is asked for before the deadline, not after"));
                }
                if *until <= self.deadline {
                    return Err(refuse("extension-not-later", "the new deadline must be later than the one in force"));
                }
                within_horizon("the new deadline", *until, moment.now)?;
                next.pending_extension = Some(PendingExtension { until: *until, reason: text("the reason", reason)? });
            }
            Action::DecideExtension { approve } => {
                Self::centre_only(actor)?;
                let Some(asked) = &self.pending_extension else { return Err(refuse("no-extension", "no extension request awaits")) };
                if *approve {
                    next.deadline = asked.until;
                }
                next.pending_extension = None;
            }
            Action::Escalate { leader } => {
                if !matches!(actor, Actor::Centre | Actor::System) {
                    return Err(refuse("centre-only", "the centre (or a breached time limit) escalates a case"));
                }
                let leader = text("the leader", leader)?;
                if self.leader.as_deref() == Some(leader.as_str()) {
                    return Err(refuse("already-escalated", format!("the case is already escalated to {leader}")));
                }
                next.leader = Some(leader);
            }
            Action::Supervise { note } => {
                let allowed = match actor {
                    Actor::Centre | Actor::Supervisor | Actor::System => true,
                    Actor::Leader(l) => self.leader.as_deref() == Some(l),
                    Actor::Unit(_) => false,
                };
                if !allowed {
                    return Err(refuse("not-supervisor", "supervisors, the centre and the case's leader supervise"));
                }
                next.supervised = true;
                next.supervision_notes.push(text("the note", note)?);
            }
            Action::Reopen => {
                if actor != Actor::System {
                    return Err(refuse("revisit-only", "a case is reopened by a dissatisfied revisit"));
                }
                self.at_stage(&[Resolved, Closed], "reopening")?;
                if self.unreasonable {
                    return Err(refuse("unreasonable", "a request closed as unreasonable is reviewed by the centre, not reopened"));
                }
                next.stage = Reopened;
                next.round += 1;
                for part in &mut next.assisting {
                    part.answer = None;
                }
            }
            Action::Close => {
                if actor != Actor::System {
                    return Err(refuse("revisit-only", "a case is closed by a satisfied revisit"));
                }
                self.at_stage(&[Resolved], "closing")?;
                next.stage = Closed;
            }
            Action::CloseAsUnreasonable { explanation } => {
                Self::centre_only(actor)?;
                next.explanation = Some(text("the explanation to the citizen", explanation)?);
                next.stage = Closed;
                next.unreasonable = true;
                next.pending_return = None;
                next.pending_extension = None;
            }
        }
        Ok(next)
    }

    fn redispatch(&mut self, to: &str, at: DateTime<Utc>) -> Result<(), Refusal> {
        let to = text("the unit", to)?;
        self.assisting.retain(|p| p.unit != to);
        self.owner = Some(to);
        self.stage = Stage::Dispatched;
        self.dispatched_at = at;
        Ok(())
    }

    /// What must hold in every state the workflow can reach.
    pub fn invariant_violations(&self, rules: Rules) -> Vec<String> {
        let mut v = Vec::new();
        // Without an owner a case waits in the manual queue, or the centre closed it as unreasonable.
        let queued = self.stage == Stage::Dispatched || (self.stage == Stage::Closed && self.unreasonable);
        if self.owner.is_none() && (!queued || self.pending_return.is_some()) {
            v.push(format!("no owner at stage {:?}", self.stage));
        }
        if self.returns > rules.max_returns {
            v.push(format!("{} returns, more than {}", self.returns, rules.max_returns));
        }
        if self.deadline < self.original_deadline {
            v.push("the deadline moved before the original".into());
        }
        if self.stage == Stage::Closed && (self.pending_return.is_some() || self.pending_extension.is_some()) {
            v.push("closed with a request pending".into());
        }
        if matches!(self.stage, Stage::Resolved | Stage::Closed) && !self.unreasonable && self.assisting.iter().any(|p| p.answer.is_none())
        {
            v.push("resolved with an assisting part unanswered".into());
        }
        if self.assisting.iter().any(|p| Some(&p.unit) == self.owner.as_ref()) {
            v.push("the owner is also an assisting unit".into());
        }
        if self.round == 0 {
            v.push("round 0".into());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
    }

    fn at(hours: i64, days: u32) -> Moment {
        Moment { now: t0() + Duration::hours(hours), working_days_since_dispatch: days }
    }

    fn case() -> Case {
        Case::dispatched(Some("st-dongmen".into()), t0() + Duration::days(3), t0())
    }

    const R: Rules = Rules { return_window_days: 2, max_returns: 2 };

    fn letter() -> Letter {
        Letter { verification: "现场核实属实".into(), handling: "已清理".into(), next_steps: String::new() }
    }
    const UNIT: Actor<'static> = Actor::Unit("st-dongmen");

    fn walk(mut c: Case, steps: &[(Actor<'_>, Action)]) -> Case {
        for (actor, action) in steps {
            c = c.apply(*actor, action, at(1, 0), R).unwrap_or_else(|r| panic!("{action:?} by {actor:?}: {r:?}"));
        }
        c
    }

    #[test]
    fn the_whole_path_to_closure() {
        let c = walk(
            case(),
            &[
                (UNIT, Action::Accept),
                (UNIT, Action::Contact),
                (UNIT, Action::Verify),
                (UNIT, Action::Reply { letter: letter() }),
                (UNIT, Action::Resolve),
                (Actor::System, Action::Close),
            ],
        );
        assert_eq!(c.stage, Stage::Closed);
        assert!(c.invariant_violations(R).is_empty());
    }

    #[test]
    fn a_repeated_step_changes_nothing_and_a_reopened_case_is_called_again() {
        let accepted = walk(case(), &[(UNIT, Action::Accept)]);
        assert_eq!(accepted.apply(UNIT, &Action::Accept, at(1, 0), R).unwrap(), accepted, "signing twice");
        let contacted = walk(accepted, &[(UNIT, Action::Contact)]);
        assert_eq!(contacted.apply(UNIT, &Action::Contact, at(1, 0), R).unwrap().stage, Stage::Contacted, "a second call");
        // The response may be given after the contact visit, which verified the facts.
        let resolved = walk(contacted, &[(UNIT, Action::Reply { letter: letter() }), (UNIT, Action::Resolve)]);
        let reopened = resolved.apply(Actor::System, &Action::Reopen, at(2, 0), R).unwrap();
        assert_eq!((reopened.stage, reopened.round, reopened.owner.as_deref()), (Stage::Reopened, 2, Some("st-dongmen")));
        assert_eq!(reopened.apply(UNIT, &Action::Reply { letter: letter() }, at(3, 0), R).unwrap_err().rule, "wrong-stage");
        assert_eq!(reopened.apply(UNIT, &Action::Contact, at(3, 0), R).unwrap().stage, Stage::Contacted);
        assert_eq!(
            reopened.apply(UNIT, &Action::Return { reason: ReturnReason::Other, text: "x".into() }, at(3, 0), R).unwrap_err().rule,
            "wrong-stage"
        );
    }

    #[test]
    fn the_written_response_is_checked() {
        let c = walk(case(), &[(UNIT, Action::Accept), (UNIT, Action::Contact)]);
        let reply = |l: Letter| c.apply(UNIT, &Action::Reply { letter: l }, at(1, 0), R).map_err(|r| r.rule);
        assert_eq!(reply(Letter { handling: " ".into(), ..letter() }), Err("missing-text"));
        assert_eq!(reply(Letter { handling: "长".repeat(MAX_TEXT_CHARS + 1), ..letter() }), Err("text-too-long"));
        assert_eq!(reply(Letter { next_steps: "a\u{7}b".into(), ..letter() }), Err("control-characters"));
        let ok =
            reply(Letter { verification: String::new(), handling: " 已清理 ".into(), next_steps: "每周复查\n并回访".into() }).unwrap();
        assert_eq!(ok.reply_letter.unwrap().handling, "已清理");
    }

    #[test]
    fn a_supervisor_acts_for_the_centre_and_escalation_is_not_repeated() {
        let c = case();
        let moved = c.apply(Actor::Supervisor, &Action::Transfer { to: "dept-water".into(), reason: "职责".into() }, at(1, 0), R).unwrap();
        assert_eq!(moved.owner.as_deref(), Some("dept-water"));
        let escalated = c.apply(Actor::Centre, &Action::Escalate { leader: "leader-li".into() }, at(1, 0), R).unwrap();
        assert_eq!(
            escalated.apply(Actor::System, &Action::Escalate { leader: "leader-li".into() }, at(1, 0), R).unwrap_err().rule,
            "already-escalated"
        );
        assert_eq!(
            escalated.apply(Actor::Centre, &Action::Escalate { leader: "leader-wang".into() }, at(1, 0), R).unwrap().leader.as_deref(),
            Some("leader-wang")
        );
        assert_eq!(
            c.apply(Actor::Leader("leader-li"), &Action::Escalate { leader: "leader-li".into() }, at(1, 0), R).unwrap_err().rule,
            "centre-only"
        );
    }

    #[test]
    fn the_state_survives_a_round_trip_through_storage() {
        let c = walk(
            case(),
            &[
                (UNIT, Action::Accept),
                (Actor::Centre, Action::AddAssisting { unit: "dept-housing".into(), deadline: Some(t0() + Duration::days(2)) }),
                (UNIT, Action::RequestExtension { until: t0() + Duration::days(9), reason: "协调".into() }),
                (Actor::Centre, Action::Escalate { leader: "leader-li".into() }),
                (Actor::Supervisor, Action::Supervise { note: "督办".into() }),
            ],
        );
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Case>(&json).unwrap(), c);
    }

    #[test]
    fn refusals_say_what_kind_they_are() {
        let c = case();
        let forbidden = c.apply(Actor::Unit("st-xinan"), &Action::Accept, at(1, 0), R).unwrap_err();
        assert!(forbidden.is_forbidden() && !forbidden.is_bad_input());
        assert_eq!(forbidden.to_string(), format!("{} [not-owner]", forbidden.why));
        let bad = c.apply(Actor::Centre, &Action::Supervise { note: "".into() }, at(1, 0), R).unwrap_err();
        assert!(bad.is_bad_input() && !bad.is_forbidden());
        let state = c.apply(UNIT, &Action::Resolve, at(1, 0), R).unwrap_err();
        assert!(!state.is_bad_input() && !state.is_forbidden());
    }

    #[test]
    fn steps_cannot_be_skipped_or_taken_by_others() {
        let c = case();
        assert_eq!(c.apply(UNIT, &Action::Contact, at(1, 0), R).unwrap_err().rule, "wrong-stage");
        assert_eq!(c.apply(Actor::Unit("st-xinan"), &Action::Accept, at(1, 0), R).unwrap_err().rule, "not-owner");
        assert_eq!(c.apply(Actor::Centre, &Action::Accept, at(1, 0), R).unwrap_err().rule, "not-owner");
        assert_eq!(c.apply(UNIT, &Action::Close, at(1, 0), R).unwrap_err().rule, "revisit-only");
    }

    #[test]
    fn a_return_within_the_window_is_reviewed_by_the_centre() {
        let ret = Action::Return { reason: ReturnReason::NotOurRemit, text: "属于住建委职责".into() };
        assert_eq!(case().apply(UNIT, &ret, at(60, 3), R).unwrap_err().rule, "return-window");
        let c = case().apply(UNIT, &ret, at(2, 1), R).unwrap();
        assert_eq!(c.apply(UNIT, &Action::Accept, at(3, 1), R).unwrap_err().rule, "return-pending");
        // Disputed: the centre sends it back; the unit owns it still.
        let back =
            c.apply(Actor::Centre, &Action::ReviewReturn(Ruling::SendBack { reason: "属于街道属地管理".into() }), at(4, 1), R).unwrap();
        assert_eq!(back.owner.as_deref(), Some("st-dongmen"));
        back.apply(UNIT, &Action::Accept, at(5, 1), R).unwrap();
        // Upheld: the centre dispatches it elsewhere.
        let moved = c.apply(Actor::Centre, &Action::ReviewReturn(Ruling::Redispatch { to: "dept-housing".into() }), at(4, 1), R).unwrap();
        assert_eq!((moved.owner.as_deref(), moved.stage, moved.returns), (Some("dept-housing"), Stage::Dispatched, 1));
    }

    #[test]
    fn after_max_returns_only_the_centre_moves_the_case() {
        let ret = Action::Return { reason: ReturnReason::NotOurRemit, text: "不属于本单位".into() };
        let mut c = case();
        for to in ["st-xinan", "st-dongmen"] {
            let owner = c.owner.clone().unwrap();
            c = c.apply(Actor::Unit(&owner), &ret, at(1, 0), R).unwrap();
            c = c.apply(Actor::Centre, &Action::ReviewReturn(Ruling::Redispatch { to: to.into() }), at(1, 0), R).unwrap();
        }
        assert_eq!(c.apply(UNIT, &ret, at(1, 0), R).unwrap_err().rule, "returns-exhausted");
        c.apply(Actor::Centre, &Action::Escalate { leader: "副区长".into() }, at(1, 0), R).unwrap();
    }

    #[test]
    fn a_joint_case_resolves_only_when_every_part_has_answered() {
        let deadline = t0() + Duration::days(2);
        let mut c = walk(
            case(),
            &[
                (UNIT, Action::Accept),
                (Actor::Centre, Action::AddAssisting { unit: "dept-urban-management".into(), deadline: Some(deadline) }),
                (UNIT, Action::AddAssisting { unit: "dept-housing".into(), deadline: Some(deadline) }),
                (UNIT, Action::Contact),
                (UNIT, Action::Verify),
                (UNIT, Action::Reply { letter: letter() }),
            ],
        );
        assert_eq!(c.apply(UNIT, &Action::Resolve, at(1, 0), R).unwrap_err().rule, "assist-unanswered");
        c = c.apply(Actor::Unit("dept-urban-management"), &Action::AnswerAssist { answer: "已拆除".into() }, at(1, 0), R).unwrap();
        assert_eq!(c.apply(UNIT, &Action::Resolve, at(1, 0), R).unwrap_err().rule, "assist-unanswered");
        assert_eq!(
            c.apply(Actor::Unit("st-xinan"), &Action::AnswerAssist { answer: "x".into() }, at(1, 0), R).unwrap_err().rule,
            "not-assisting"
        );
        c = c.apply(Actor::Unit("dept-housing"), &Action::AnswerAssist { answer: "已约谈物业".into() }, at(1, 0), R).unwrap();
        assert_eq!(c.apply(UNIT, &Action::Resolve, at(1, 0), R).unwrap().stage, Stage::Resolved);
    }

    #[test]
    fn an_extension_keeps_the_original_deadline() {
        let c = walk(case(), &[(UNIT, Action::Accept)]);
        let until = t0() + Duration::days(10);
        let asked = c.apply(UNIT, &Action::RequestExtension { until, reason: "需协调供电公司".into() }, at(1, 0), R).unwrap();
        let late = Moment { now: t0() + Duration::days(4), working_days_since_dispatch: 3 };
        assert_eq!(c.apply(UNIT, &Action::RequestExtension { until, reason: "晚了".into() }, late, R).unwrap_err().rule, "past-deadline");
        let approved = asked.apply(Actor::Centre, &Action::DecideExtension { approve: true }, at(2, 0), R).unwrap();
        assert_eq!((approved.deadline, approved.original_deadline), (until, c.deadline));
        let refused = asked.apply(Actor::Centre, &Action::DecideExtension { approve: false }, at(2, 0), R).unwrap();
        assert_eq!(refused.deadline, c.deadline);
    }

    #[test]
    fn dates_more_than_a_year_ahead_are_refused() {
        let c = walk(case(), &[(UNIT, Action::Accept)]);
        let far = t0() + Duration::days(MAX_HORIZON_DAYS + 2);
        let refused = |a: Action, actor: Actor<'_>| c.apply(actor, &a, at(1, 0), R).unwrap_err().rule;
        assert_eq!(refused(Action::RequestExtension { until: far, reason: "x".into() }, UNIT), "too-far");
        assert_eq!(refused(Action::AddAssisting { unit: "dept-water".into(), deadline: Some(far) }, Actor::Centre), "too-far");
        let replied = walk(c.clone(), &[(UNIT, Action::Contact), (UNIT, Action::Reply { letter: letter() })]);
        let staged = replied.apply(UNIT, &Action::StageResolve { next_check: far }, at(1, 0), R).unwrap_err();
        assert!(staged.is_bad_input() && staged.rule == "too-far");
    }

    #[test]
    fn unreasonable_requests_are_closed_with_an_explanation() {
        assert_eq!(
            case().apply(Actor::Centre, &Action::CloseAsUnreasonable { explanation: " ".into() }, at(1, 0), R).unwrap_err().rule,
            "missing-text"
        );
        let c = case()
            .apply(Actor::Centre, &Action::CloseAsUnreasonable { explanation: "诉求超出政策范围，已解释".into() }, at(1, 0), R)
            .unwrap();
        assert!(c.unreasonable && c.stage == Stage::Closed);
        assert_eq!(c.apply(Actor::System, &Action::Reopen, at(1, 0), R).unwrap_err().rule, "unreasonable");
    }

    #[test]
    fn leaders_supervise_only_what_is_escalated_to_them() {
        let c = case();
        let note = Action::Supervise { note: "请三日内办结".into() };
        assert_eq!(c.apply(Actor::Leader("副区长"), &note, at(1, 0), R).unwrap_err().rule, "not-supervisor");
        let escalated = c.apply(Actor::System, &Action::Escalate { leader: "副区长".into() }, at(1, 0), R).unwrap();
        assert!(escalated.apply(Actor::Leader("副区长"), &note, at(1, 0), R).unwrap().supervised);
        assert_eq!(c.apply(UNIT, &note, at(1, 0), R).unwrap_err().rule, "not-supervisor");
    }

    /// A tiny deterministic generator: the same seeds, the same sequences, every run.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }
    }

    #[test]
    fn no_random_sequence_reaches_an_invalid_state_or_bounces_without_end() {
        let units = ["st-dongmen", "st-xinan", "dept-housing"];
        let (mut applied, mut stages) = (0usize, std::collections::BTreeSet::new());
        for seed in 0..3_000u64 {
            let mut g = Lcg(seed);
            let mut c = if seed % 5 == 0 { Case::dispatched(None, t0() + Duration::days(3), t0()) } else { case() };
            let mut owners_seen = 0u32;
            for step in 0..120i64 {
                let unit = units[g.next(units.len())];
                let owner = c.owner.clone();
                // The owner acts most, as in life; everybody else tries too.
                let actor = match g.next(8) {
                    0 => Actor::Centre,
                    1 => Actor::Supervisor,
                    2 => Actor::System,
                    3 => Actor::Leader("副区长"),
                    4 => Actor::Unit(unit),
                    _ => Actor::Unit(owner.as_deref().unwrap_or(unit)),
                };
                let later = t0() + Duration::days(1 + g.next(20) as i64);
                let action = match g.next(20) {
                    0 => Action::Accept,
                    1 => Action::Contact,
                    2 => Action::Verify,
                    3 => Action::Reply { letter: letter() },
                    4 => Action::Resolve,
                    5 => Action::StageResolve { next_check: later },
                    6 => Action::Return { reason: ReturnReason::NotOurRemit, text: "不属于".into() },
                    7 => Action::ReviewReturn(Ruling::Redispatch { to: unit.into() }),
                    8 => Action::ReviewReturn(Ruling::SendBack { reason: "属地".into() }),
                    9 => Action::Dispatch { to: unit.into() },
                    10 => Action::Transfer { to: unit.into(), reason: "职责调整".into() },
                    11 => Action::AddAssisting { unit: unit.into(), deadline: Some(later) },
                    12 => Action::AnswerAssist { answer: "已处理".into() },
                    13 => Action::RequestExtension { until: later, reason: "协调".into() },
                    14 => Action::DecideExtension { approve: g.next(2) == 0 },
                    15 => Action::Escalate { leader: "副区长".into() },
                    16 => Action::Supervise { note: "督办".into() },
                    17 => Action::Reopen,
                    18 => Action::Close,
                    _ => Action::CloseAsUnreasonable { explanation: "已解释".into() },
                };
                let moment = Moment { now: t0() + Duration::hours(step), working_days_since_dispatch: g.next(4) as u32 };
                let before = c.clone();
                match c.apply(actor, &action, moment, R) {
                    Ok(next) => {
                        if next.owner != before.owner && matches!(action, Action::ReviewReturn(_)) {
                            owners_seen += 1;
                        }
                        c = next;
                        applied += 1;
                        stages.insert(c.stage);
                    }
                    Err(refusal) => assert!(!refusal.why.is_empty() && !refusal.rule.is_empty()),
                }
                let broken = c.invariant_violations(R);
                assert!(broken.is_empty(), "seed {seed}, step {step}, {action:?} by {actor:?}: {broken:?}\n{c:#?}");
            }
            // A case is moved on a unit's return at most max_returns times: it cannot bounce for ever.
            assert!(owners_seen <= R.max_returns, "seed {seed}: moved {owners_seen} times on returns");
        }
        // The walk goes somewhere: many actions applied, every stage reached.
        assert!(applied > 10_000, "only {applied} actions applied");
        assert_eq!(stages.len(), 9, "stages reached: {stages:?}");
    }
}
