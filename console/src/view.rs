//! How cases, clocks, times and refusals read on the console's pages, in Chinese.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use jiesu_proto::v1::{CaseStatus, CaseView, ReturnReason, Satisfaction, Urgency};

/// 已派单, 已签收… (the district's shared names).
pub fn status_zh(status: i32) -> &'static str {
    jiesu_reference::case_status_zh(CaseStatus::try_from(status).unwrap_or(CaseStatus::Unspecified))
}

pub fn urgency_zh(urgency: i32) -> &'static str {
    match Urgency::try_from(urgency).unwrap_or(Urgency::Unspecified) {
        Urgency::Emergency => "紧急",
        Urgency::Complex => "复杂",
        Urgency::Normal => "一般",
        Urgency::Unspecified => "",
    }
}

pub fn return_reason_zh(reason: i32) -> &'static str {
    match ReturnReason::try_from(reason).unwrap_or(ReturnReason::Unspecified) {
        ReturnReason::NotOurRemit => "不属于本单位职责",
        ReturnReason::WrongPlace => "地址或信息有误",
        ReturnReason::Unclear => "诉求不清，无法办理",
        ReturnReason::Other | ReturnReason::Unspecified => "其他",
    }
}

pub fn satisfaction_zh(satisfaction: i32) -> &'static str {
    match Satisfaction::try_from(satisfaction).unwrap_or(Satisfaction::Unspecified) {
        Satisfaction::Satisfied => "满意",
        Satisfaction::BasicallySatisfied => "基本满意",
        Satisfaction::Dissatisfied => "不满意",
        Satisfaction::Unspecified => "",
    }
}

/// 咨询, 求助…
pub fn request_type_zh(kind: &str) -> &'static str {
    match kind {
        "consultation" => "咨询",
        "help" => "求助",
        "complaint" => "投诉",
        "report" => "举报",
        "suggestion" => "建议",
        _ => "",
    }
}

/// The colour of a clock or case as a word and a CSS class: 正常 (green), 预警 (yellow), 超时 (red).
pub fn colour_zh(colour: &str) -> &'static str {
    match colour {
        "red" => "超时",
        "yellow" => "预警",
        "green" => "正常",
        _ => "",
    }
}

/// Times in the district's zone.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub zone: Tz,
    pub now: DateTime<Utc>,
}

impl Clock {
    pub fn new(timezone: &str) -> Self {
        Self { zone: timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai), now: Utc::now() }
    }

    /// `2026-12-01 14:30`
    pub fn full(&self, t: Option<&prost_types::Timestamp>) -> String {
        t.and_then(jiesu_kit::time::from_proto)
            .map(|t| t.with_timezone(&self.zone).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    }

    /// `12-01 14:30`, or `14:30` today.
    pub fn short(&self, t: Option<&prost_types::Timestamp>) -> String {
        let Some(t) = t.and_then(jiesu_kit::time::from_proto) else { return String::new() };
        let local = t.with_timezone(&self.zone);
        if local.date_naive() == self.now.with_timezone(&self.zone).date_naive() {
            local.format("%H:%M").to_string()
        } else {
            local.format("%m-%d %H:%M").to_string()
        }
    }

    /// 剩 3 天 2 小时 / 剩 45 分钟 / 超时 2 小时
    pub fn remaining(&self, deadline: Option<&prost_types::Timestamp>) -> String {
        let Some(deadline) = deadline.and_then(jiesu_kit::time::from_proto) else { return String::new() };
        let minutes = (deadline - self.now).num_minutes();
        let span = span_zh(minutes.unsigned_abs());
        if minutes >= 0 { format!("剩 {span}") } else { format!("超时 {span}") }
    }

    /// 2 小时 5 分钟 since then.
    pub fn waited(&self, since: Option<&prost_types::Timestamp>) -> String {
        since.and_then(jiesu_kit::time::from_proto).map(|t| span_zh((self.now - t).num_minutes().max(0).unsigned_abs())).unwrap_or_default()
    }

    /// Milliseconds to the deadline (negative: past), for sorting.
    pub fn millis_to(&self, deadline: Option<&prost_types::Timestamp>) -> i64 {
        deadline.and_then(jiesu_kit::time::from_proto).map_or(i64::MAX, |d| (d - self.now).num_milliseconds())
    }
}

/// 3 天 2 小时, 5 小时 10 分钟, 45 分钟
pub fn span_zh(minutes: u64) -> String {
    let (days, hours, mins) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{mins} 分钟"),
        (0, h) => format!("{h} 小时 {mins} 分钟"),
        (d, h) => format!("{d} 天 {h} 小时"),
    }
}

/// One case in a queue.
#[derive(Debug, Clone)]
pub struct CaseLine {
    pub case_no: String,
    pub title: String,
    pub unit: String,
    pub status: &'static str,
    pub urgency: &'static str,
    /// green | yellow | red
    pub colour: String,
    pub colour_zh: &'static str,
    pub deadline: String,
    pub remaining: String,
    pub overdue: bool,
    pub flags: Vec<&'static str>,
    /// Milliseconds to the deadline, for sorting.
    pub due_in: i64,
}

impl CaseLine {
    pub fn of(case: &CaseView, clock: &Clock) -> Self {
        let mut flags = Vec::new();
        if case.manual_queue {
            flags.push("待人工派单");
        }
        if case.pending_return.is_some() {
            flags.push("退回待审");
        }
        if case.pending_extension.is_some() {
            flags.push("延期待批");
        }
        if !case.leader_id.is_empty() {
            flags.push("领导包案");
        }
        if case.supervised {
            flags.push("督办");
        }
        if case.round > 1 {
            flags.push("重办");
        }
        let colour = if case.colour.is_empty() { "green".to_string() } else { case.colour.clone() };
        let unit = if case.unit_name.is_empty() { case.unit_id.clone() } else { case.unit_name.clone() };
        Self {
            case_no: case.case_no.clone(),
            title: case.title.clone(),
            unit,
            status: if case.manual_queue { "待派单" } else { status_zh(case.status) },
            urgency: urgency_zh(case.urgency),
            colour_zh: colour_zh(&colour),
            colour,
            deadline: clock.short(case.deadline.as_ref()),
            remaining: clock.remaining(case.deadline.as_ref()),
            overdue: case.overdue,
            flags,
            due_in: clock.millis_to(case.deadline.as_ref()),
        }
    }
}

/// What a refusal of a service means to the person who met it, in Chinese: from the rule's
/// name at the end of the message (`… [return-window]`, docs/workflow.md), else by its code.
pub fn refusal_zh(status: &tonic::Status) -> String {
    let message = status.message();
    let rule = message.rsplit_once('[').and_then(|(_, r)| r.strip_suffix(']')).unwrap_or_default();
    let why = match rule {
        "not-owner" => "只有承办单位可以办理这一步（首接负责）。",
        "wrong-stage" => "办理须按顺序进行：签收 → 联系群众 →（核实）→ 答复 → 办结，当前不能做这一步。",
        "missing-text" => "请填写必填的说明文字。",
        "text-too-long" => "文字过长，每项不超过 2000 字。",
        "control-characters" => "文字中含有不可见的控制字符。",
        "return-window" => "已超过退回时限，或已联系过群众，不能再退回。",
        "return-pending" => "退回正在等待中心审核，暂不能办理。",
        "no-return" => "这件诉求没有待审核的退回。",
        "returns-exhausted" => "退回次数已用完，只能由中心改派或提级。",
        "centre-only" => "只有受理中心可以做这一步。",
        "has-owner" => "这件诉求已有承办单位，请用改派。",
        "manual-queue" => "这件诉求在人工派单队列中，请先派单。",
        "already-involved" => "这个单位已经参与办理。",
        "not-assisting" => "你的单位不是这件诉求的协办单位。",
        "assist-unanswered" => "还有协办单位未答复，暂不能办结。",
        "past-deadline" => "已过办理时限，不能再申请延期。",
        "extension-not-later" => "延期后的时限须晚于当前时限。",
        "extension-pending" => "已有延期申请等待审批。",
        "too-far" => "日期不能超过一年以后。",
        "next-check-past" => "复查日期须在将来。",
        "already-escalated" => "这件诉求已经提级。",
        "not-supervisor" => "只有督办员、中心或包案领导可以督办。",
        "revisit-only" => "只有回访可以重启诉求。",
        "unreasonable" => "不合理诉求不能这样处理。",
        "closed" => "诉求已结案。",
        _ => "",
    };
    if !why.is_empty() {
        return why.to_string();
    }
    match status.code() {
        tonic::Code::PermissionDenied => "你没有权限做这一步。".into(),
        tonic::Code::Unauthenticated => "登录已失效，请重新登录。".into(),
        tonic::Code::NotFound => "找不到这件诉求。".into(),
        tonic::Code::InvalidArgument => "填写的内容有误，请检查后再提交。".into(),
        tonic::Code::FailedPrecondition => "诉求当前的状态不允许这一步。".into(),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => "服务暂时无法连接，请稍后再试。".into(),
        _ => "系统出错，请稍后再试。".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span_zh(45), "45 分钟");
        assert_eq!(span_zh(125), "2 小时 5 分钟");
        assert_eq!(span_zh(1440 * 3 + 150), "3 天 2 小时");
    }

    #[test]
    fn remaining_and_overdue() {
        let now = Utc::now();
        let clock = Clock { zone: chrono_tz::Asia::Shanghai, now };
        let later = jiesu_kit::time::to_proto(now + chrono::Duration::minutes(90));
        let earlier = jiesu_kit::time::to_proto(now - chrono::Duration::minutes(30));
        assert_eq!(clock.remaining(Some(&later)), "剩 1 小时 30 分钟");
        assert_eq!(clock.remaining(Some(&earlier)), "超时 30 分钟");
        assert_eq!(clock.remaining(None), "");
        assert!(clock.millis_to(Some(&earlier)) < 0 && clock.millis_to(None) == i64::MAX);
    }

    #[test]
    fn refusals_are_explained_by_their_rule_then_by_their_code() {
        let s = tonic::Status::failed_precondition("the case was contacted already [return-window]");
        assert!(refusal_zh(&s).contains("退回时限"));
        let s = tonic::Status::permission_denied("u may not");
        assert_eq!(refusal_zh(&s), "你没有权限做这一步。");
        let s = tonic::Status::unavailable("down");
        assert!(refusal_zh(&s).contains("稍后"));
    }

    #[test]
    fn every_status_has_a_name() {
        for s in 1..=9 {
            assert_ne!(status_zh(s), "未知", "{s}");
        }
    }
}
