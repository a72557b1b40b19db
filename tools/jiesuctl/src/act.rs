//! The handling workflow from the command line (办理动作): every `DispatchService` action, with
//! the caller's token (`--token`, `JIESU_TOKEN`), plus the queues and counts of a desk.

use anyhow::{Result, anyhow, bail};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use clap::{Subcommand, ValueEnum};
use jiesu_proto::v1::{self as pb, dispatch_service_client::DispatchServiceClient};
use jiesu_reference::case_status_zh;

use crate::{District, case_ref, status};

#[derive(Subcommand)]
pub enum WorkflowCommand {
    /// The owning unit reports that it checked the facts (核实).
    Verify {
        case: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// The owning unit gives its written response (答复, 处理意见书).
    Reply {
        case: String,
        /// 处理结果: what was done.
        #[arg(long)]
        handling: String,
        /// 核实情况: what was found.
        #[arg(long, default_value = "")]
        verification: String,
        /// 下一步措施: what comes next.
        #[arg(long, default_value = "")]
        next_steps: String,
    },
    /// Handled as far as possible now (阶段性办结); checked again on a date.
    StageResolve {
        case: String,
        /// When it is checked again: "2027-03-01" or "2027-03-01 09:00" (district time).
        #[arg(long)]
        next_check: String,
    },
    /// The owning unit returns the case to the centre (退回), within the return window.
    Return {
        case: String,
        #[arg(long, value_enum)]
        reason: ReturnReasonArg,
        /// Why, for the centre's review.
        #[arg(long)]
        text: String,
    },
    /// The centre rules on a return: --to <unit> dispatches it there; --send-back keeps it with
    /// the unit, with --ruling saying why.
    ReviewReturn {
        case: String,
        #[arg(long, conflicts_with = "send_back")]
        to: Option<String>,
        #[arg(long)]
        send_back: bool,
        #[arg(long, default_value = "")]
        ruling: String,
    },
    /// The centre dispatches a case of its manual queue (人工派单).
    Dispatch {
        case: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// The centre moves a case to another unit (改派).
    Transfer {
        case: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        reason: String,
    },
    /// Joint handling (多方联动): call in an assisting unit, sign for or answer a part.
    Assist {
        #[command(subcommand)]
        command: AssistCommand,
    },
    /// Extensions (延期): the owner asks, the centre decides.
    Extension {
        #[command(subcommand)]
        command: ExtensionCommand,
    },
    /// The centre hands the case to a leader (提级/领导包案).
    Escalate {
        case: String,
        /// The leader's id in the organisation (`jiesuctl org`).
        #[arg(long)]
        leader: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Put a case under supervision (督办), with a note.
    Supervise {
        case: String,
        #[arg(long)]
        note: String,
    },
    /// The centre closes an unreasonable request (不合理诉求), with what the citizen is told.
    CloseUnreasonable {
        case: String,
        #[arg(long)]
        explanation: String,
    },
    /// The organisation dispatch runs on: units, duty contacts, leaders.
    Org,
}

#[derive(Subcommand)]
pub enum AssistCommand {
    /// The centre or the lead unit calls in an assisting unit (吹哨).
    Add {
        case: String,
        #[arg(long)]
        unit: String,
        /// Its part's deadline ("2026-12-10 18:00"); default: the case's.
        #[arg(long)]
        deadline: Option<String>,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// The assisting unit signs for its part.
    Accept { case: String },
    /// The assisting unit answers its part.
    Answer {
        case: String,
        #[arg(long)]
        answer: String,
    },
}

#[derive(Subcommand)]
pub enum ExtensionCommand {
    /// The owning unit asks for more time, before the deadline.
    Request {
        case: String,
        /// The new deadline: "2026-12-20" (end of that day) or "2026-12-20 18:00".
        #[arg(long)]
        until: String,
        #[arg(long)]
        reason: String,
    },
    /// The centre approves or refuses it.
    Decide {
        case: String,
        #[arg(long, conflicts_with = "refuse", required_unless_present = "refuse")]
        approve: bool,
        #[arg(long)]
        refuse: bool,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ReturnReasonArg {
    /// 不属于本单位职责
    NotOurRemit,
    /// 地址或信息有误
    WrongPlace,
    /// 诉求不清，无法办理
    Unclear,
    /// 其他
    Other,
}

impl ReturnReasonArg {
    fn to_proto(self) -> pb::ReturnReason {
        match self {
            ReturnReasonArg::NotOurRemit => pb::ReturnReason::NotOurRemit,
            ReturnReasonArg::WrongPlace => pb::ReturnReason::WrongPlace,
            ReturnReasonArg::Unclear => pb::ReturnReason::Unclear,
            ReturnReasonArg::Other => pb::ReturnReason::Other,
        }
    }
}

/// A moment written in the district's time: "2026-12-20 18:00", or a day meaning its end.
pub fn moment(d: &District, field: &str, text: &str) -> Result<prost_types::Timestamp> {
    local_moment(d, field, text, NaiveTime::from_hms_opt(23, 59, 59).expect("a valid time"))
}

/// A start written in the district's time: "2026-12-20 09:00", or a day meaning its first minute.
pub fn moment_from(d: &District, field: &str, text: &str) -> Result<prost_types::Timestamp> {
    local_moment(d, field, text, NaiveTime::MIN)
}

/// "2026-12-20 18:00" in the district's time, or a day at `day_time`.
fn local_moment(d: &District, field: &str, text: &str, day_time: NaiveTime) -> Result<prost_types::Timestamp> {
    let text = text.trim();
    let local = match NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M") {
        Ok(t) => t,
        Err(_) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| anyhow!("--{field} {text:?}: write \"2026-12-20\" or \"2026-12-20 18:00\""))?
            .and_time(day_time),
    };
    let at = d.timezone.from_local_datetime(&local).earliest().ok_or_else(|| anyhow!("--{field} {text:?} does not exist here"))?;
    Ok(jiesu_kit::time::to_proto(at.to_utc()))
}

/// One line about the case as it now stands.
pub fn print_case(d: &District, what: &str, v: &pb::CaseView) {
    let owner = if v.manual_queue { "中心待人工派单".to_string() } else { format!("{}（{}）", v.unit_name, v.unit_id) };
    println!("{} {what}：{}，承办 {owner}，办结时限 {}", v.case_no, case_status_zh(v.status()), d.local(v.deadline.as_ref()));
    if v.original_deadline != v.deadline {
        println!("  原办结时限 {}", d.local(v.original_deadline.as_ref()));
    }
    if let Some(r) = &v.pending_return {
        println!("  退回待审核：{}（第{}次）", r.text, v.returns);
    }
    if let Some(e) = &v.pending_extension {
        println!("  延期待审批：至 {}，{}", d.local(e.until.as_ref()), e.reason);
    }
    for p in &v.parts {
        let state = if p.answered {
            format!("已答复：{}", p.answer)
        } else if p.accepted {
            "已签收".into()
        } else {
            "待签收".into()
        };
        println!("  协办 {}（{}） 时限 {} {state}", p.unit_name, p.unit_id, d.local(p.deadline.as_ref()));
    }
    if !v.leader_id.is_empty() {
        println!("  包案领导 {}", v.leader_id);
    }
    if v.supervised {
        println!("  督办：{}", v.supervision_notes.join("；"));
    }
}

pub async fn run(d: &District, command: WorkflowCommand) -> Result<()> {
    let mut c = DispatchServiceClient::new(d.channel("dispatch").await?);
    let (what, view) = match command {
        WorkflowCommand::Verify { case, note } => ("已核实", c.verify(pb::VerifyRequest { case: Some(case_ref(&case)), note }).await),
        WorkflowCommand::Reply { case, handling, verification, next_steps } => {
            let letter = pb::ResponseLetter { verification, handling, next_steps };
            ("已答复", c.reply(pb::ReplyRequest { case: Some(case_ref(&case)), letter: Some(letter) }).await)
        }
        WorkflowCommand::StageResolve { case, next_check } => {
            let next_check = Some(moment(d, "next-check", &next_check)?);
            ("阶段性办结", c.stage_resolve(pb::StageResolveRequest { case: Some(case_ref(&case)), next_check, note: String::new() }).await)
        }
        WorkflowCommand::Return { case, reason, text } => {
            let req = pb::ReturnRequest { case: Some(case_ref(&case)), reason: reason.to_proto() as i32, text };
            ("已申请退回", c.r#return(req).await)
        }
        WorkflowCommand::ReviewReturn { case, to, send_back, ruling } => {
            if to.is_none() && !send_back {
                bail!("say how the return is ruled: --to <unit> (upheld, dispatched there) or --send-back --ruling <why>");
            }
            let req =
                pb::ReviewReturnRequest { case: Some(case_ref(&case)), uphold: to.is_some(), to_unit_id: to.unwrap_or_default(), ruling };
            ("退回已审核", c.review_return(req).await)
        }
        WorkflowCommand::Dispatch { case, to, reason } => {
            ("已人工派单", c.dispatch(pb::DispatchRequest { case: Some(case_ref(&case)), to_unit_id: to, reason }).await)
        }
        WorkflowCommand::Transfer { case, to, reason } => {
            ("已改派", c.transfer(pb::TransferRequest { case: Some(case_ref(&case)), to_unit_id: to, reason }).await)
        }
        WorkflowCommand::Assist { command: AssistCommand::Add { case, unit, deadline, note } } => {
            let deadline = deadline.map(|t| moment(d, "deadline", &t)).transpose()?;
            (
                "已增加协办单位",
                c.add_assisting(pb::AddAssistingRequest { case: Some(case_ref(&case)), unit_id: unit, deadline, note }).await,
            )
        }
        WorkflowCommand::Assist { command: AssistCommand::Accept { case } } => {
            ("协办已签收", c.accept_assist(pb::AcceptAssistRequest { case: Some(case_ref(&case)), ..Default::default() }).await)
        }
        WorkflowCommand::Assist { command: AssistCommand::Answer { case, answer } } => {
            ("协办已答复", c.answer_assist(pb::AnswerAssistRequest { case: Some(case_ref(&case)), answer, ..Default::default() }).await)
        }
        WorkflowCommand::Extension { command: ExtensionCommand::Request { case, until, reason } } => {
            let until = Some(moment(d, "until", &until)?);
            ("已申请延期", c.request_extension(pb::RequestExtensionRequest { case: Some(case_ref(&case)), until, reason }).await)
        }
        WorkflowCommand::Extension { command: ExtensionCommand::Decide { case, approve, refuse: _, reason } } => {
            let what = if approve { "延期已批准" } else { "延期未批准" };
            (what, c.decide_extension(pb::DecideExtensionRequest { case: Some(case_ref(&case)), approve, reason }).await)
        }
        WorkflowCommand::Escalate { case, leader, reason } => {
            ("已提级包案", c.escalate(pb::EscalateRequest { case: Some(case_ref(&case)), leader_id: leader, reason }).await)
        }
        WorkflowCommand::Supervise { case, note } => {
            ("已督办", c.supervise(pb::SuperviseRequest { case: Some(case_ref(&case)), note }).await)
        }
        WorkflowCommand::CloseUnreasonable { case, explanation } => (
            "已按不合理诉求结案",
            c.close_as_unreasonable(pb::CloseAsUnreasonableRequest { case: Some(case_ref(&case)), explanation }).await,
        ),
        WorkflowCommand::Org => return organisation(&mut c).await,
    };
    print_case(d, what, &view.map_err(status)?.into_inner());
    Ok(())
}

async fn organisation(c: &mut DispatchServiceClient<crate::Authorized>) -> Result<()> {
    let org = c.get_organisation(pb::GetOrganisationRequest {}).await.map_err(status)?.into_inner();
    println!("组织架构 版本 {}", if org.version.is_empty() { "-" } else { &org.version });
    for u in &org.units {
        let duty: Vec<String> = u.duty.iter().map(|d| format!("{} {} {}", d.name, d.phone, d.hours).trim().to_string()).collect();
        let duty = if duty.is_empty() { String::new() } else { format!("  值班：{}", duty.join("；")) };
        println!("  {:<24} {:<12} {:<10} 上级 {}{duty}", u.id, u.name, u.kind, if u.parent.is_empty() { "-" } else { &u.parent });
    }
    for l in &org.leaders {
        println!("  领导 {:<18} {} {}  分管：{}", l.id, l.name, l.title, l.oversees.join("、"));
    }
    Ok(())
}

/// The queues of a desk (`case list` filters) and the counts of a dashboard.
#[derive(clap::Args, Default)]
pub struct ListFilter {
    /// Waiting for the centre's manual dispatch.
    #[arg(long)]
    pub manual_queue: bool,
    /// With a return awaiting review.
    #[arg(long)]
    pub returned: bool,
    /// With an extension awaiting a decision.
    #[arg(long)]
    pub extension: bool,
    #[arg(long)]
    pub escalated: bool,
    #[arg(long)]
    pub supervised: bool,
    /// Unresolved past the deadline in force.
    #[arg(long)]
    pub overdue: bool,
    /// yellow or red (from the SLA alerts).
    #[arg(long, default_value = "")]
    pub colour: String,
    /// Escalated to this leader.
    #[arg(long, default_value = "")]
    pub leader: String,
    /// Not closed.
    #[arg(long)]
    pub open: bool,
}

impl ListFilter {
    pub fn request(self, unit_id: String, limit: u32) -> pb::ListCasesRequest {
        pb::ListCasesRequest {
            unit_id,
            limit,
            manual_queue: self.manual_queue,
            return_pending: self.returned,
            extension_pending: self.extension,
            escalated: self.escalated,
            supervised: self.supervised,
            overdue: self.overdue,
            colour: self.colour,
            leader_id: self.leader,
            open_only: self.open,
            ..Default::default()
        }
    }
}

pub async fn count(d: &District, unit_id: String) -> Result<()> {
    let mut c = DispatchServiceClient::new(d.channel("dispatch").await?);
    let r = c.count_cases(pb::CountCasesRequest { unit_id }).await.map_err(status)?.into_inner();
    for n in &r.counts {
        println!("  {:<24} {:<8} {}", n.unit_id, case_status_zh(n.status()), n.count);
    }
    println!(
        "待人工派单 {}  退回待审 {}  延期待批 {}  包案 {}  督办 {}  超期 {}  黄灯 {}  红灯 {}",
        r.manual_queue, r.return_pending, r.extension_pending, r.escalated, r.supervised, r.overdue, r.yellow, r.red
    );
    for u in &r.reopens {
        println!("  重办 {:<24} {}", u.unit_id, u.reopens);
    }
    Ok(())
}
