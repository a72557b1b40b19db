//! # jiesu-sla-timer — 时限管理
//!
//! Times every milestone of a case against the district's limits (时限标准) and raises the colour
//! levels supervisors act on: `sla.warning` (预警黄) when a clock passes the warning point and
//! `sla.breached` (警报红) when it passes its deadline.
//!
//! Case events start and stop the clocks ([`consume`], rules in [`domain::plan`]): received →
//! dispatch (分拨) and escalate (包案, counted from receipt); dispatched → accept (签收), reply
//! (回复) and resolve (办结, by urgency); accepted → contact (联系); resolved stops them;
//! reopened restarts resolve one version up and resumes escalate; closed stops everything.
//! Working days follow the district's calendar (法定节假日, 调休).
//!
//! The `clocks` table is the system of record ([`store`]); a background loop ([`timer`]) keeps
//! the soonest clocks in a bounded in-memory window and fires each in one transaction that
//! compare-and-sets the clock's state and writes the alert to the outbox under a deterministic
//! event id, so a firing is published once, across restarts and concurrent processes.
//! `jiesu.v1.SlaService/ListClocks` shows a case's clocks and their timeline ([`api`]).

pub mod api;
pub mod consume;
pub mod domain;
mod error;
pub mod store;
pub mod timer;

use std::sync::Arc;

use chrono::Datelike;
use jiesu_kit::{
    DistrictConfig,
    clock::SharedClock,
    host::{Host, Running},
};
use serde::Deserialize;
use tokio::sync::Notify;

use jiesu_reference::{
    Organisation,
    time::{HoursBook, HoursEntry},
};

use crate::domain::{Calendar, Policy, UnitHours};
pub use error::Error;

/// The service's name: its config section, durable consumer and database.
pub const SERVICE: &str = "sla_timer";

/// `[sla_timer]` of the district file (besides the keys every service has).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {
    /// `[sla_timer.policy]`: the limit of each milestone and the warning point; every key
    /// defaults to the seeds' figures.
    #[serde(default)]
    pub policy: Policy,
    /// `[sla_timer.business_hours]`: named business hours (办公时间) for limits in working hours,
    /// besides the built-in "office" (5×8 with a lunch break) and "always" (24×7).
    #[serde(default)]
    pub business_hours: HoursSettings,
}

/// `[sla_timer.business_hours]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursSettings {
    /// The set units without their own `hours` count on; "office" when absent.
    #[serde(default)]
    pub default: Option<String>,
    /// `[sla_timer.business_hours.sets.<name>]`: `days` and `periods`.
    #[serde(default)]
    pub sets: std::collections::BTreeMap<String, HoursEntry>,
}

pub type Config = jiesu_kit::ServiceConfig<Settings>;

/// The rules every clock is armed with: the district's policy, working-day calendar, and each
/// unit's business hours.
#[derive(Debug, Clone)]
pub struct Rules {
    pub policy: Policy,
    pub calendar: Calendar,
    pub hours: UnitHours,
}

/// The district's calendar (`[reference] calendar = "…"`), else China's built-in schedule.
pub fn load_calendar(config: &Config) -> Result<Calendar, Error> {
    Calendar::from_reference(config.reference_text("calendar")?.as_deref()).map_err(|e| Error::Calendar(e.to_string()))
}

/// The district's business hours and the organisation's units with theirs; every problem at
/// once, naming the entry.
pub fn load_hours(config: &Config) -> Result<(HoursBook, Organisation), Error> {
    let hours = &config.settings.business_hours;
    let book =
        HoursBook::new(&hours.sets, hours.default.as_deref()).map_err(|e| Error::Calendar(format!("[sla_timer.business_hours]: {e}")))?;
    let org: Organisation = config.reference("organisation")?.unwrap_or_default();
    let problems: Vec<String> = org
        .units
        .iter()
        .filter_map(|u| u.hours.as_deref().filter(|h| book.get(h).is_none()).map(|h| (u, h)))
        .map(|(u, h)| format!("unit {:?} keeps hours {h:?}, which [sla_timer.business_hours] does not define", u.id))
        .collect();
    if !problems.is_empty() {
        return Err(Error::Calendar(problems.join("; ")));
    }
    Ok((book, org))
}

/// Says so when the calendar does not know this year's holidays (or, in December, next year's,
/// which working-day limits started now reach into): those years count Monday to Friday.
fn check_calendar(calendar: &Calendar, config: &Config, clock: &SharedClock) {
    let today = clock.now().with_timezone(&calendar.timezone()).date_naive();
    let mut years = vec![today.year()];
    if today.month() == 12 {
        years.push(today.year() + 1);
    }
    for year in years.into_iter().filter(|y| !calendar.covers(*y)) {
        tracing::warn!(
            year,
            "the working-day calendar has no official holiday schedule for {year}: working days of {year} \
             are counted Monday to Friday; add [[years]] year = {year} to the calendar file"
        );
    }
    if calendar.timezone() != config.timezone() {
        tracing::warn!(
            calendar = %calendar.timezone(), district = %config.timezone(),
            "the calendar counts working days in another time zone than the district's"
        );
    }
}

/// Starts the timer: its consumer of case events, the firing loop and its gRPC API.
pub async fn start(district: &DistrictConfig, clock: SharedClock) -> Result<Running, Error> {
    let config: Config = district.service(SERVICE)?;
    config.settings.policy.validate()?;
    let calendar = load_calendar(&config)?;
    check_calendar(&calendar, &config, &clock);
    let mut host = Host::start(&config, &jiesu_kit::migrations!(), clock.clone()).await?;
    let (hours, units) = load_hours(&config)?;
    let by_unit = units.units.iter().filter_map(|u| u.hours.clone().map(|h| (u.id.clone(), h))).collect();
    let unit_hours = UnitHours { book: hours, by_unit };
    let rules = Arc::new(Rules { policy: config.settings.policy.clone(), calendar, hours: unit_hours });
    let timer_wake = Arc::new(Notify::new());
    let metrics = timer::TimerMetrics::register(&host.metrics);

    host.consume(Arc::new(consume::Events { rules: rules.clone(), timer_wake: timer_wake.clone(), warned: Default::default() }));

    let (db, gauges) = (host.db.clone(), metrics.clone());
    host.spawn("sla clock gauges", move |cancel| timer::count_clocks(db, gauges, cancel));
    let timer = timer::Timer { commands: host.commands(), db: host.db.clone(), clock, rules: rules.clone(), wake: timer_wake, metrics };
    host.spawn("sla timer", move |cancel| timer.run(cancel));

    let api = api::SlaApi {
        db: host.db.clone(),
        timezone: config.timezone(),
        preview: Arc::new(api::Preview { rules, units }),
        clock: host.clock.clone(),
    };
    Ok(host.serve(jiesu_proto::v1::sla_service_server::SlaServiceServer::new(api))?)
}
