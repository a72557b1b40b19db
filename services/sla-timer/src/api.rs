//! `jiesu.v1.SlaService`: a case's clocks and what happened to them, and what a limit would come
//! to (`PreviewDeadline`).

use chrono_tz::Tz;
use jiesu_kit::{
    CaseKey, Db,
    time::{from_millis, millis_to_proto},
};
use jiesu_proto::v1::{
    CaseRef, ClockView, ListAtRiskRequest, ListAtRiskResponse, ListClocksResponse, MilestoneFigures, OnTimeFiguresRequest,
    OnTimeFiguresResponse, PreviewDeadlineRequest, PreviewDeadlineResponse, TimelineEntry, sla_service_server::SlaService,
};
use jiesu_reference::{Organisation, time::Limit};
use std::sync::Arc;
use tonic::{Request, Response, Status};

use crate::{
    SERVICE,
    domain::{Milestone, Policy},
    store::{self, ClockRow, HistoryRow},
};

/// The gRPC API. Read-only: clocks change only through case events and the firing loop.
pub struct SlaApi {
    pub db: Db,
    /// The district's time zone, in which the timeline shows times.
    pub timezone: Tz,
    pub preview: Arc<Preview>,
    pub clock: jiesu_kit::clock::SharedClock,
}

/// What `PreviewDeadline` computes with: the same calendar and policy the clocks use, the
/// district's business hours and each unit's.
pub struct Preview {
    pub rules: Arc<crate::Rules>,
    /// The organisation, to tell a unit the district does not have.
    pub units: Organisation,
}

fn invalid(message: String) -> Status {
    Status::invalid_argument(message)
}

#[tonic::async_trait]
impl SlaService for SlaApi {
    async fn list_clocks(&self, request: Request<CaseRef>) -> Result<Response<ListClocksResponse>, Status> {
        let key = CaseKey::required(Some(request.get_ref()))?;
        let mut rows = store::list(&self.db, &key).await?;
        let Some(case_id) = rows.first().map(|r| r.case_id.clone()) else {
            return Err(key.not_found("the SLA timer"));
        };
        if let Some(who) = jiesu_kit::auth::caller(&request) {
            jiesu_kit::auth::may_see_case(who, rows.iter().map(|r| r.unit_id.as_str()))?;
        }
        rows.sort_by_key(|r| (milestone_rank(&r.milestone), r.started_at));
        let mut history = store::history(&self.db, &case_id).await?;
        history.sort_by_key(|h| (h.happened_at, event_rank(&h.event), milestone_rank(&h.milestone)));
        let now_ms = self.clock.now().timestamp_millis();
        Ok(Response::new(ListClocksResponse {
            clocks: rows.iter().map(|r| view(r, now_ms, &self.preview.rules.policy)).collect(),
            timeline: history.iter().map(|h| timeline_entry(h, self.timezone, &self.preview.rules.policy)).collect(),
        }))
    }

    async fn list_at_risk(&self, request: Request<ListAtRiskRequest>) -> Result<Response<ListAtRiskResponse>, Status> {
        let unit_id = unit_scope(&request, &request.get_ref().unit_id)?;
        let req = request.into_inner();
        let states = match req.colour.trim() {
            "" => ["warned", "breached", "escalated"],
            "yellow" => ["warned", "warned", "warned"],
            "red" => ["breached", "escalated", "escalated"],
            other => return Err(invalid(format!("colour {other:?} is not yellow or red (or empty for both)"))),
        };
        let limit = match req.limit {
            0 => 100,
            n if n > 1000 => return Err(invalid(format!("limit {n} is over the maximum of 1000"))),
            n => n,
        };
        let rows = store::at_risk(&self.db, &unit_id, states, limit).await?;
        let now_ms = self.clock.now().timestamp_millis();
        Ok(Response::new(ListAtRiskResponse { clocks: rows.iter().map(|r| view(r, now_ms, &self.preview.rules.policy)).collect() }))
    }

    async fn on_time_figures(&self, request: Request<OnTimeFiguresRequest>) -> Result<Response<OnTimeFiguresResponse>, Status> {
        let unit_id = unit_scope(&request, &request.get_ref().unit_id)?;
        let req = request.into_inner();
        let instant = |field: &str, t: Option<&jiesu_proto::Timestamp>| {
            t.map(|t| jiesu_kit::time::from_proto(t).ok_or_else(|| invalid(format!("{field} is not a valid instant")))).transpose()
        };
        let from = instant("from", req.from.as_ref())?.ok_or_else(|| invalid("from is required: the start of the period".into()))?;
        let to = instant("to", req.to.as_ref())?.unwrap_or_else(|| self.clock.now());
        if to <= from {
            return Err(invalid(format!("to ({to}) must be after from ({from})")));
        }
        let (met, open) = store::on_time(&self.db, from.timestamp_millis(), to.timestamp_millis(), &unit_id).await?;
        let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        let mut figures: Vec<MilestoneFigures> = met
            .into_iter()
            .map(|m| MilestoneFigures {
                on_time_rate: if m.on_time + m.late > 0 { m.on_time as f64 / (m.on_time + m.late) as f64 } else { 0.0 },
                milestone: m.milestone,
                unit_id: m.unit_id,
                met_on_time: n(m.on_time),
                met_late: n(m.late),
                extended: n(m.extended),
                met_within_original: n(m.within_original),
                ..Default::default()
            })
            .collect();
        for o in open {
            let i = match figures.iter().position(|f| f.milestone == o.milestone && f.unit_id == o.unit_id) {
                Some(i) => i,
                None => {
                    figures.push(MilestoneFigures { milestone: o.milestone.clone(), unit_id: o.unit_id.clone(), ..Default::default() });
                    figures.len() - 1
                }
            };
            match o.state.as_str() {
                "warned" => figures[i].open_yellow += n(o.n),
                _ => figures[i].open_red += n(o.n),
            }
        }
        figures.sort_by(|a, b| (&a.unit_id, milestone_rank(&a.milestone)).cmp(&(&b.unit_id, milestone_rank(&b.milestone))));
        Ok(Response::new(OnTimeFiguresResponse { figures }))
    }

    async fn preview_deadline(&self, request: Request<PreviewDeadlineRequest>) -> Result<Response<PreviewDeadlineResponse>, Status> {
        let req = request.into_inner();
        let p = &self.preview;
        let limit: Limit = req.limit.parse().map_err(|e: jiesu_reference::time::TimeError| invalid(format!("limit: {e}")))?;
        let start = match req.start.as_ref() {
            None => self.clock.now(),
            Some(t) => jiesu_kit::time::from_proto(t).ok_or_else(|| invalid("start is not a valid instant".into()))?,
        };
        let fraction = match req.warn_at {
            0.0 => p.rules.policy.warn_at,
            f if f > 0.0 && f < 1.0 => f,
            f => return Err(invalid(format!("warn_at {f} must be strictly between 0 and 1 (a fraction of the span)"))),
        };
        let unit_id = req.unit_id.trim();
        if !unit_id.is_empty() && p.units.unit(unit_id).is_none() {
            return Err(invalid(format!("unit_id {unit_id:?} is not a unit of the district's organisation")));
        }
        let (name, hours) = p.rules.hours.named(unit_id);
        let deadline = p.rules.calendar.deadline_in(start, limit, hours);
        if deadline == chrono::DateTime::<chrono::Utc>::MAX_UTC {
            return Err(invalid(format!("limit {limit} from {start} runs past any date this calendar can count")));
        }
        let warn_at = crate::domain::warning_point(start, deadline, fraction);
        let local = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&self.timezone).format("%Y-%m-%d %H:%M:%S").to_string();
        // Only working time depends on the holidays: elapsed limits cross any year safely.
        let uncovered = if limit.elapsed().is_none() { p.rules.calendar.uncovered_years(start, deadline) } else { Vec::new() };
        if !uncovered.is_empty() {
            tracing::warn!(?uncovered, %limit, "a deadline was counted across years without an official holiday schedule");
        }
        Ok(Response::new(PreviewDeadlineResponse {
            deadline: Some(jiesu_kit::time::to_proto(deadline)),
            warn_at: Some(jiesu_kit::time::to_proto(warn_at)),
            limit: limit.to_string(),
            hours: if matches!(limit, Limit::WorkingHours(_)) { format!("{name}（{hours}）") } else { String::new() },
            local_deadline: local(deadline),
            local_warn_at: local(warn_at),
            uncovered_years: uncovered,
        }))
    }
}

/// The unit a query of figures or risks is narrowed to: a unit sees its own; the centre,
/// leaders, auditors and services any unit's (`""`: all).
fn unit_scope<T>(request: &Request<T>, requested: &str) -> Result<String, Status> {
    let requested = requested.trim().to_string();
    match jiesu_kit::auth::caller(request) {
        Some(who) if !jiesu_kit::auth::sees_every_case(who) && !who.has(jiesu_kit::auth::Role::Leader) => match &who.unit {
            Some(unit) if requested.is_empty() || requested == *unit => Ok(unit.clone()),
            Some(unit) => Err(Status::permission_denied(format!(
                "{} may see only the figures of its own unit {unit}, not of {requested}",
                who.describe()
            ))),
            None => Err(Status::permission_denied(format!("{} may not see the units' time limits", who.describe()))),
        },
        _ => Ok(requested),
    }
}

/// A running clock's colour now; a paused one keeps the colour it had when it paused.
fn colour(r: &ClockRow, now_ms: i64) -> &'static str {
    let at = r.paused_at.unwrap_or(now_ms);
    match r.state.as_str() {
        "stopped" => "",
        "breached" | "escalated" => "red",
        _ if at >= r.deadline => "red",
        _ if at >= r.warn_at || r.state == "warned" => "yellow",
        _ => "green",
    }
}

fn view(r: &ClockRow, now_ms: i64, policy: &Policy) -> ClockView {
    ClockView {
        clock_id: r.clock_id.clone(),
        case_id: r.case_id.clone(),
        milestone: r.milestone.clone(),
        version: u32::try_from(r.version).unwrap_or(u32::MAX),
        state: r.state.clone(),
        started_at: Some(millis_to_proto(r.started_at)),
        warn_at: Some(millis_to_proto(r.warn_at)),
        deadline: Some(millis_to_proto(r.deadline)),
        stopped_at: r.stopped_at.map(millis_to_proto),
        unit_id: r.unit_id.clone(),
        original_deadline: r.original_deadline.map(millis_to_proto),
        case_no: r.case_no.clone(),
        round: u32::try_from(r.round).unwrap_or(0),
        part: r.part.clone(),
        paused_at: r.paused_at.map(millis_to_proto),
        escalate_at: r.escalate_at.map(millis_to_proto),
        colour: colour(r, now_ms).to_string(),
        milestone_name: policy.display_name(&r.milestone).to_string(),
    }
}

/// The case's life order, so a timeline reads naturally when several things happen at once.
fn milestone_rank(m: &str) -> usize {
    Milestone::BUILT_IN.iter().position(|x| x.as_str() == m).unwrap_or(Milestone::BUILT_IN.len())
}

/// At one instant a clock stops before the next one starts (dispatch met, then accept armed).
fn event_rank(event: &str) -> u8 {
    match event {
        "met" | "closed" | "superseded" => 0,
        "warning" | "breached" | "escalation" | "paused" | "resumed" | "refitted" => 1,
        _ => 2,
    }
}

fn timeline_entry(h: &HistoryRow, tz: Tz, policy: &Policy) -> TimelineEntry {
    TimelineEntry {
        at: Some(millis_to_proto(h.happened_at)),
        service: SERVICE.into(),
        event: format!("{}.{}", h.milestone, h.event),
        detail: describe(h, tz, policy.display_name(&h.milestone)),
        actor: String::new(),
    }
}

/// What a clerk reads in the case's timeline.
fn describe(h: &HistoryRow, tz: Tz, name: &str) -> String {
    let deadline = from_millis(h.deadline).with_timezone(&tz).format("%Y-%m-%d %H:%M");
    match h.event.as_str() {
        "armed" if h.version > 1 => format!("{name}时限重新起算，截止 {deadline}"),
        "armed" => format!("{name}时限已启动，截止 {deadline}"),
        "moved" => format!("{name}时限经批准延期至 {deadline}"),
        "paused" => format!("{name}暂停计时"),
        "refitted" => format!("{name}时限按诉求分类调整，截止 {deadline}"),
        "resumed" => format!("{name}恢复计时，截止顺延至 {deadline}"),
        "escalation" => format!("{name}超时未办，已提级（截止 {deadline}）"),
        "warning" => format!("{name}时限预警（黄），截止 {deadline}"),
        "breached" => format!("{name}超时（红），截止 {deadline}"),
        "met" if h.happened_at < h.deadline => format!("{name}按时完成"),
        "met" => format!("{name}逾期完成（截止 {deadline}）"),
        "closed" => format!("已结案，{name}计时停止"),
        "superseded" => format!("进入新一轮办理，{name}计时停止"),
        other => format!("{name}：{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiesu_reference::milestone_zh;

    fn h(milestone: &str, event: &str, version: i64, happened_at: &str, deadline: &str) -> HistoryRow {
        let ms = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap().timestamp_millis();
        HistoryRow {
            clock_id: format!("c:{milestone}"),
            version,
            event: event.into(),
            case_id: "c".into(),
            milestone: milestone.into(),
            happened_at: ms(happened_at),
            deadline: ms(deadline),
        }
    }

    #[test]
    fn timeline_details_are_chinese_in_the_district_time_zone() {
        let tz = chrono_tz::Asia::Shanghai;
        let d = |m, e, v, at| describe(&h(m, e, v, at, "2026-11-23T02:10:00Z"), tz, milestone_zh(m));
        assert_eq!(d("accept", "armed", 1, "2026-11-23T02:00:00Z"), "签收时限已启动，截止 2026-11-23 10:10");
        assert_eq!(d("resolve", "armed", 2, "2026-11-23T02:00:00Z"), "办结时限重新起算，截止 2026-11-23 10:10");
        assert_eq!(d("resolve", "warning", 1, "2026-11-23T02:08:00Z"), "办结时限预警（黄），截止 2026-11-23 10:10");
        assert_eq!(d("accept", "breached", 1, "2026-11-23T02:10:00Z"), "签收超时（红），截止 2026-11-23 10:10");
        assert_eq!(d("contact", "met", 1, "2026-11-23T02:09:59Z"), "联系按时完成");
        assert_eq!(d("contact", "met", 1, "2026-11-23T02:10:00Z"), "联系逾期完成（截止 2026-11-23 10:10）");
        assert_eq!(d("reply", "closed", 1, "2026-11-23T02:00:00Z"), "已结案，回复计时停止");
    }

    #[test]
    fn every_milestone_has_a_chinese_name() {
        for m in Milestone::BUILT_IN {
            assert_ne!(milestone_zh(m.as_str()), m.as_str());
        }
    }
}
