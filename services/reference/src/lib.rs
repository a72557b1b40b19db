//! # jiesu-reference — the district's shared vocabulary (参考数据)
//!
//! What several services (and the tools) must name the same way lives here once:
//!
//! - [`Urgency`] (紧急程度): the three levels, their stored keys, their Chinese names, and the one
//!   mapping to and from the protobuf enum;
//! - [`Organisation`] (组织架构): the district's units, parsed and looked up the same way by
//!   dispatch, notification and the tools;
//! - [`time`]: the working-day calendar (工作日历) and time limits (时限);
//! - [`milestone_zh`], [`clock_state_zh`], [`case_status_zh`]: the Chinese names of the
//!   time-limit milestones (时限环节), of a clock's colour, and of a case's status.

mod organisation;
pub mod time;
mod urgency;

pub use organisation::{DutyContact, Leader, Organisation, Unit, UnitKind};
pub use urgency::{Urgency, UrgencyError};

/// The Chinese name of a case's status (办理状态).
pub fn case_status_zh(status: jiesu_proto::v1::CaseStatus) -> &'static str {
    use jiesu_proto::v1::CaseStatus;
    match status {
        CaseStatus::Unspecified => "未知",
        CaseStatus::Dispatched => "已派单",
        CaseStatus::Accepted => "已签收",
        CaseStatus::Contacted => "已联系",
        CaseStatus::Verified => "已核实",
        CaseStatus::Replied => "已答复",
        CaseStatus::Staged => "阶段性办结",
        CaseStatus::Resolved => "已办结",
        CaseStatus::Reopened => "重新办理",
        CaseStatus::Closed => "已结案",
    }
}

/// A time-limit clock's state as its colour (亮灯): green, yellow (预警), red (超时); an unknown
/// state is shown as it is.
pub fn clock_state_zh(state: &str) -> &str {
    match state {
        "armed" => "绿",
        "warned" => "黄·预警",
        "breached" => "红·超时",
        "escalated" => "红·已提级",
        "paused" => "暂停计时",
        "stopped" => "已停止",
        other => other,
    }
}

/// The Chinese name of a time-limit milestone (时限环节); an unknown one is shown as it is.
pub fn milestone_zh(milestone: &str) -> &str {
    match milestone {
        "dispatch" => "分拨",
        "accept" => "签收",
        "contact" => "联系",
        "verify" => "核实",
        "reply" => "回复",
        "resolve" => "办结",
        "response_document" => "处理意见书",
        "escalate" => "包案",
        "assist" => "协办",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milestones_in_chinese() {
        for (m, zh) in
            [("dispatch", "分拨"), ("accept", "签收"), ("contact", "联系"), ("reply", "回复"), ("resolve", "办结"), ("escalate", "包案")]
        {
            assert_eq!(milestone_zh(m), zh);
        }
        assert_eq!(milestone_zh("custom"), "custom");
    }
}
