//! The dashboard (数据看板): today's or this month's figures — cases held by status, on time and
//! late, yellow and red now — for the whole district, or one unit (a unit's staff see their own).
//! Charts are drawn on the server as SVG: they print and show without script.

use std::collections::BTreeMap;

use askama::Template;
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use chrono::{Datelike, TimeZone};
use jiesu_proto::v1::{
    CaseStatus, CountCasesRequest, CountReceivedRequest, GetOrganisationRequest, GetTaxonomyRequest, OnTimeFiguresRequest,
    PeriodFiguresRequest,
};
use serde::Deserialize;

use super::{AppState, Chrome, render};
use crate::{
    charts::{Bar, Part, bars},
    session::Staff,
    view::{Clock, refusal_zh},
};

#[derive(Deserialize, Default)]
pub struct DashboardQuery {
    #[serde(default)]
    period: String,
    #[serde(default)]
    unit: String,
}

struct Figure {
    label: &'static str,
    value: String,
    note: String,
    class: &'static str,
}

struct Chart {
    title: String,
    svg: String,
    note: String,
}

#[derive(Default)]
struct UnitRow {
    id: String,
    name: String,
    to_sign: u32,
    open: u32,
    resolved: u32,
    on_time: u32,
    late: u32,
    rate: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    period: &'static str,
    period_text: &'static str,
    as_of: String,
    unit_name: String,
    unit_query: String,
    problem: String,
    figures: Vec<Figure>,
    charts: Vec<Chart>,
    units: Vec<UnitRow>,
    overseen: Vec<(String, String)>,
}

fn percent(on_time: u32, late: u32) -> String {
    match on_time + late {
        0 => "—".into(),
        n => format!("{:.1}%", f64::from(on_time) * 100.0 / f64::from(n)),
    }
}

pub async fn show(staff: Staff, State(app): AppState, Query(q): Query<DashboardQuery>) -> Response {
    let caller = app.services.as_person(&staff.account);
    let clock = Clock::new(&app.district.timezone);
    // A unit's staff see their own unit's page, whatever they ask.
    let unit = match (&staff.account.unit, staff.account.is_unit()) {
        (Some(u), true) => u.clone(),
        _ => q.unit.trim().to_string(),
    };
    let (period, period_text) = if q.period == "month" { ("month", "本月") } else { ("today", "今日") };
    let local_now = clock.now.with_timezone(&clock.zone);
    let start_date =
        if period == "month" { local_now.date_naive().with_day(1).unwrap_or(local_now.date_naive()) } else { local_now.date_naive() };
    let from = clock
        .zone
        .from_local_datetime(&start_date.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or(clock.now);
    let since = Some(jiesu_kit::time::to_proto(from));
    let (mut dispatch, mut sla, mut organisation, mut periods, mut intake, mut classification) =
        (caller.dispatch(), caller.sla(), caller.dispatch(), caller.dispatch(), caller.intake(), caller.classification());
    let (counts, figures, org, period_figures, received, taxonomy) = tokio::join!(
        dispatch.count_cases(caller.req(CountCasesRequest { unit_id: unit.clone() })),
        sla.on_time_figures(caller.req(OnTimeFiguresRequest { from: since, to: None, unit_id: unit.clone() })),
        organisation.get_organisation(caller.req(GetOrganisationRequest {})),
        periods.period_figures(caller.req(PeriodFiguresRequest { from: since, to: None, unit_id: unit.clone() })),
        intake.count_received(caller.req(CountReceivedRequest { from: since, to: None })),
        classification.get_taxonomy(caller.req(GetTaxonomyRequest {})),
    );
    let categories: BTreeMap<String, String> =
        taxonomy.map(|t| t.into_inner().categories.into_iter().map(|c| (c.code, c.name)).collect()).unwrap_or_default();
    let org = org.map(|o| o.into_inner()).unwrap_or_default();
    let names: BTreeMap<String, String> = org.units.iter().map(|u| (u.id.clone(), u.name.clone())).collect();
    // A leader's page leads to the units they oversee (分管单位), whose figures are theirs to see.
    let overseen: Vec<(String, String)> = org
        .leaders
        .iter()
        .filter(|l| staff.account.has(jiesu_kit::auth::Role::Leader) && l.id == staff.account.token_subject())
        .flat_map(|l| l.oversees.iter().map(|u| (u.clone(), names.get(u).cloned().unwrap_or_else(|| u.clone()))))
        .collect();
    let name =
        |id: &str| names.get(id).cloned().unwrap_or_else(|| if id.is_empty() { "中心（待派单）".into() } else { id.to_string() });
    let mut problem = Vec::new();
    let mut rows: BTreeMap<String, UnitRow> = BTreeMap::new();
    let mut figures_out = Vec::new();
    let mut charts = Vec::new();
    match counts {
        Ok(c) => {
            let c = c.into_inner();
            for count in &c.counts {
                let row = rows.entry(count.unit_id.clone()).or_default();
                match CaseStatus::try_from(count.status).unwrap_or(CaseStatus::Unspecified) {
                    CaseStatus::Dispatched => row.to_sign += count.count,
                    CaseStatus::Resolved | CaseStatus::Closed => row.resolved += count.count,
                    _ => row.open += count.count,
                }
            }
            let open: u32 = rows.values().map(|r| r.open + r.to_sign).sum();
            figures_out.push(Figure { label: "在办诉求", value: open.to_string(), note: String::new(), class: "" });
            figures_out.push(Figure {
                label: "待人工派单",
                value: c.manual_queue.to_string(),
                note: String::new(),
                class: if c.manual_queue > 0 { "yellow" } else { "" },
            });
            figures_out.push(Figure { label: "黄灯预警", value: c.yellow.to_string(), note: String::new(), class: "yellow" });
            figures_out.push(Figure {
                label: "红灯超时",
                value: c.red.to_string(),
                note: format!("逾期未办结 {}", c.overdue),
                class: "red",
            });
            figures_out.push(Figure {
                label: "督办 / 包案",
                value: format!("{} / {}", c.supervised, c.escalated),
                note: String::new(),
                class: "",
            });
            let status_bars: Vec<Bar> = rows
                .iter()
                .filter(|(id, _)| !id.is_empty())
                .map(|(id, r)| Bar {
                    label: name(id),
                    parts: vec![
                        Part { value: u64::from(r.to_sign), class: "yellow", name: "待签收" },
                        Part { value: u64::from(r.open), class: "blue", name: "在办" },
                        Part { value: u64::from(r.resolved), class: "green", name: "已办结" },
                    ],
                })
                .collect();
            charts.push(Chart {
                title: "各单位诉求（全部）".into(), svg: bars("各单位诉求", &status_bars), note: String::new()
            });
        }
        Err(e) => problem.push(format!("办理数据：{}", refusal_zh(&e))),
    }
    match figures {
        Ok(f) => {
            let f = f.into_inner();
            let resolve: Vec<_> = f.figures.iter().filter(|m| m.milestone == "resolve").collect();
            let (on_time, late) = resolve.iter().fold((0, 0), |(a, b), m| (a + m.met_on_time, b + m.met_late));
            figures_out.insert(
                1,
                Figure {
                    label: "办结按时率",
                    value: percent(on_time, late),
                    note: format!("{period_text}办结 {}", on_time + late),
                    class: "green",
                },
            );
            for m in &resolve {
                let row = rows.entry(m.unit_id.clone()).or_default();
                row.on_time += m.met_on_time;
                row.late += m.met_late;
            }
            let mut risk: BTreeMap<String, (u32, u32)> = BTreeMap::new();
            for m in &f.figures {
                let e = risk.entry(m.unit_id.clone()).or_default();
                e.0 += m.open_yellow;
                e.1 += m.open_red;
            }
            let on_time_bars: Vec<Bar> = resolve
                .iter()
                .map(|m| Bar {
                    label: name(&m.unit_id),
                    parts: vec![
                        Part { value: u64::from(m.met_on_time), class: "green", name: "按时办结" },
                        Part { value: u64::from(m.met_late), class: "red", name: "超时办结" },
                    ],
                })
                .collect();
            charts.push(Chart {
                title: format!("{period_text}办结：按时与超时"),
                svg: bars("按时与超时办结", &on_time_bars),
                note: "延期获批的以延期后时限计；原时限另有统计。".into(),
            });
            let risk_bars: Vec<Bar> = risk
                .iter()
                .filter(|(_, (y, r))| y + r > 0)
                .map(|(unit, (y, r))| Bar {
                    label: name(unit),
                    parts: vec![
                        Part { value: u64::from(*y), class: "yellow", name: "黄灯" },
                        Part { value: u64::from(*r), class: "red", name: "红灯" },
                    ],
                })
                .collect();
            charts.push(Chart {
                title: "当前黄灯与红灯（按单位）".into(), svg: bars("黄灯与红灯", &risk_bars), note: String::new()
            });
        }
        Err(e) => problem.push(format!("时限数据：{}", refusal_zh(&e))),
    }
    match period_figures {
        Ok(p) => {
            let p = p.into_inner();
            let (dispatched, resolved) = p.figures.iter().fold((0, 0), |(d, r), f| (d + f.dispatched, r + f.resolved));
            figures_out.insert(
                0,
                Figure { label: "派单", value: dispatched.to_string(), note: format!("{period_text}办结 {resolved}"), class: "" },
            );
            let mut by_unit: BTreeMap<String, (u32, u32)> = BTreeMap::new();
            let mut by_category: BTreeMap<String, (u32, u32)> = BTreeMap::new();
            for f in &p.figures {
                let u = by_unit.entry(f.unit_id.clone()).or_default();
                (u.0, u.1) = (u.0 + f.dispatched, u.1 + f.resolved);
                let c = by_category.entry(f.category.clone()).or_default();
                (c.0, c.1) = (c.0 + f.dispatched, c.1 + f.resolved);
            }
            let pair = |label: String, (d, r): (u32, u32)| Bar {
                label,
                parts: vec![
                    Part { value: u64::from(d), class: "blue", name: "派单" },
                    Part { value: u64::from(r), class: "green", name: "办结" },
                ],
            };
            let unit_bars = by_unit.iter().map(|(u, v)| pair(name(u), *v)).collect::<Vec<_>>();
            charts.insert(
                0,
                Chart {
                    title: format!("{period_text}派单与办结（按单位）"),
                    svg: bars("派单与办结，按单位", &unit_bars),
                    note: String::new(),
                },
            );
            let category_bars = by_category
                .iter()
                .map(|(c, v)| {
                    pair(categories.get(c).cloned().unwrap_or_else(|| if c.is_empty() { "未分类".into() } else { c.clone() }), *v)
                })
                .collect::<Vec<_>>();
            charts.insert(
                1,
                Chart {
                    title: format!("{period_text}派单与办结（按类别）"),
                    svg: bars("派单与办结，按类别", &category_bars),
                    note: String::new(),
                },
            );
        }
        Err(e) => problem.push(format!("时段数据：{}", refusal_zh(&e))),
    }
    // The channels' figures are the centre's and the leaders': a unit's page goes without them.
    if let Ok(r) = received {
        let r = r.into_inner();
        let total: u32 = r.channels.iter().map(|c| c.received).sum();
        figures_out.insert(0, Figure { label: "受理", value: total.to_string(), note: format!("{period_text}，各渠道合计"), class: "" });
        let channel_bars: Vec<Bar> = r
            .channels
            .iter()
            .map(|c| Bar {
                label: app.channels.get(&c.channel).cloned().unwrap_or_else(|| c.channel.clone()),
                parts: vec![
                    Part { value: u64::from(c.received - c.proactive.min(c.received)), class: "blue", name: "群众反映" },
                    Part { value: u64::from(c.proactive), class: "green", name: "主动发现" },
                ],
            })
            .collect();
        charts.insert(
            0,
            Chart {
                title: format!("{period_text}受理（按渠道）"), svg: bars("受理，按渠道", &channel_bars), note: String::new()
            },
        );
    }
    // The table's lines: every unit met above (the manual queue, which has none, apart).
    let units: Vec<UnitRow> = rows
        .into_iter()
        .filter(|(id, _)| !id.is_empty())
        .map(|(id, r)| UnitRow { name: name(&id), rate: percent(r.on_time, r.late), id, ..r })
        .collect();
    let page = DashboardPage {
        chrome: Chrome::of(&app, &staff, "dashboard"),
        period,
        period_text,
        as_of: clock.full(Some(&jiesu_kit::time::to_proto(clock.now))),
        unit_name: if unit.is_empty() { String::new() } else { name(&unit) },
        unit_query: if unit.is_empty() { String::new() } else { format!("&unit={unit}") },
        problem: problem.join("；"),
        figures: figures_out,
        charts,
        units,
        overseen,
    };
    render(StatusCode::OK, &page)
}
