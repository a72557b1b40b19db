//! The firing loop (计时轮): keeps the soonest clocks of the `clocks` table in a bounded
//! in-memory window, sleeps until the earliest, and fires each due clock in one transaction.
//!
//! The table is the record; the window is only a cache of it, rebuilt whenever the consumer
//! arms or stops a clock, whenever "now" passes what the window covers, and every
//! [`RESYNC`] in any case (clocks changed by another process). "Now" always comes from the
//! injected [`Clock`](jiesu_kit::Clock); tokio's timer only decides how long to wait, and never
//! longer than [`MAX_SLEEP`], so a clock that jumps (a test's `ManualClock`, a stepped wall
//! clock) is noticed quickly.
//!
//! A firing is exactly-once: the transaction compare-and-sets the clock's (version, state), and
//! the alert's event id derives from `sla:<clock_id>:<version>:<warning|breach>`, so
//! neither a second process nor a retried publish can produce a second alert.

use std::{
    collections::BTreeSet,
    sync::{Arc, atomic::AtomicI64},
    time::Duration,
};

use chrono::TimeDelta;
use jiesu_kit::{CaseIds, Commands, Db, clock::SharedClock, metrics::Metrics, time::to_millis};
use jiesu_proto::v1::{SlaBreached, SlaEscalationDue, SlaWarning};
use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge};
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::{
    Error, Rules,
    domain::{ClockState, Firing, Level},
    store::{self, HistoryRow},
};

/// How many clocks the window holds at most.
pub const WINDOW: usize = 1_000;
/// How far ahead of "now" the window looks.
pub const HORIZON: TimeDelta = TimeDelta::minutes(10);
/// The longest the loop sleeps before looking at the clock again.
pub const MAX_SLEEP: Duration = Duration::from_secs(1);
/// The window is rebuilt from the table at least this often, even if nothing woke the loop.
pub const RESYNC: Duration = Duration::from_secs(30);
/// How many due clocks fire in one transaction at most. Each firing is its own compare-and-set
/// and its own alert with its own id; sharing the commit (one disk flush) is what lets the timer
/// keep up when thousands fall due each second, and a batch holds only what is due already, so
/// a lone clock is not kept waiting for company.
pub const BATCH: usize = 200;
/// The pause after a database error before trying again.
const RETRY: Duration = Duration::from_secs(1);

/// The timer's own metrics, on the service's `/metrics`.
#[derive(Clone)]
pub struct TimerMetrics {
    /// Clocks that have not stopped, by state (`armed`, `warned`, `breached`).
    pub clocks: Family<Vec<(&'static str, String)>, Gauge<i64, AtomicI64>>,
    /// `sla.warning` alerts fired.
    pub warnings: Counter,
    /// `sla.breached` alerts fired.
    pub breaches: Counter,
    /// `sla.escalation_due` alerts fired (the ladder's last rung).
    pub escalations: Counter,
}

impl TimerMetrics {
    /// Creates the metrics and registers them with the service's registry.
    pub fn register(metrics: &Metrics) -> Self {
        let m = TimerMetrics {
            clocks: Family::default(),
            warnings: Counter::default(),
            breaches: Counter::default(),
            escalations: Counter::default(),
        };
        metrics.register("sla_clocks", "Milestone clocks not yet stopped, by state", m.clocks.clone());
        metrics.register("sla_warnings_fired", "Warnings (预警黄) the timer fired", m.warnings.clone());
        metrics.register("sla_breaches_fired", "Breaches (警报红) the timer fired", m.breaches.clone());
        metrics.register("sla_escalations_fired", "Escalations (红灯提级) the timer fired", m.escalations.clone());
        m
    }

    fn set_counts(&self, counts: &[(String, i64)]) {
        for state in [ClockState::Armed, ClockState::Warned, ClockState::Breached, ClockState::Escalated] {
            let n = counts.iter().find(|(s, _)| s == state.as_str()).map_or(0, |(_, n)| *n);
            self.clocks.get_or_create(&vec![("state", state.as_str().to_string())]).set(n);
        }
    }
}

/// The soonest clocks, by the instant they may fire.
#[derive(Debug, Default)]
struct Window {
    entries: BTreeSet<(i64, String)>,
    /// Every clock that may fire up to this instant is in `entries` (as of the last load).
    covered_until: i64,
}

impl Window {
    /// A window that covers nothing, so that the loop loads one at once.
    fn empty() -> Self {
        Window { entries: BTreeSet::new(), covered_until: i64::MIN }
    }

    fn load(rows: Vec<store::Due>, horizon_end: i64) -> Self {
        // A full window covers only up to its last entry: later ones did not fit.
        let covered_until = match rows.last() {
            Some(last) if rows.len() >= WINDOW => last.next_fire_at,
            _ => horizon_end,
        };
        Window { entries: rows.into_iter().map(|d| (d.next_fire_at, d.clock_id)).collect(), covered_until }
    }

    fn pop_due(&mut self, now_ms: i64) -> Option<String> {
        match self.entries.first() {
            Some((at, _)) if *at <= now_ms => self.entries.pop_first().map(|(_, id)| id),
            _ => None,
        }
    }

    /// Empty, and what it covered is past: clocks beyond it may be due already.
    fn exhausted(&self, now_ms: i64) -> bool {
        self.entries.is_empty() && now_ms >= self.covered_until
    }

    /// Up to `max` due clocks, the earliest first.
    fn pop_due_batch(&mut self, now_ms: i64, max: usize) -> Vec<String> {
        std::iter::from_fn(|| self.pop_due(now_ms)).take(max).collect()
    }

    fn insert(&mut self, at: i64, clock_id: String) {
        if at <= self.covered_until {
            self.entries.insert((at, clock_id));
        }
    }

    fn earliest(&self) -> Option<i64> {
        self.entries.first().map(|(at, _)| *at)
    }
}

/// The firing loop of one process.
pub struct Timer {
    /// A firing is a piece of work of the timer's own: the kit's command path.
    pub commands: Commands,
    pub db: Db,
    pub clock: SharedClock,
    /// The district's rules, for the milestones' names.
    pub rules: Arc<Rules>,
    /// Notified by the consumer after it armed or stopped clocks.
    pub wake: Arc<Notify>,
    pub metrics: TimerMetrics,
}

impl Timer {
    /// Fires due clocks until `cancel`; database trouble is logged and retried, never fatal.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), jiesu_kit::Error> {
        let mut window = Window::empty();
        let mut stale = true;
        let mut synced_at = Instant::now();
        tracing::info!(window = WINDOW, horizon_minutes = HORIZON.num_minutes(), "SLA timer running");
        loop {
            let now = to_millis(self.clock.now());
            let mut trouble = false;
            if stale || now >= window.covered_until || synced_at.elapsed() >= RESYNC {
                match self.load(now).await {
                    Ok(w) => {
                        window = w;
                        stale = false;
                        synced_at = Instant::now();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "SLA timer cannot read the clocks; will retry");
                        window = Window::empty();
                        trouble = true;
                    }
                }
            }
            loop {
                let due = window.pop_due_batch(to_millis(self.clock.now()), BATCH);
                if due.is_empty() {
                    break;
                }
                if cancel.is_cancelled() {
                    return Ok(());
                }
                match self.fire(&due).await {
                    Ok(next) => {
                        for (clock_id, at) in next {
                            window.insert(at, clock_id);
                        }
                    }
                    Err(e) => {
                        // The rows are still due in the table: the next load brings them back.
                        tracing::error!(clocks = due.len(), first = %due[0], error = %e, "SLA timer cannot fire; will retry");
                        stale = true;
                        trouble = true;
                        break;
                    }
                }
            }
            let wait = match window.earliest() {
                _ if trouble => RETRY,
                // A full window fired to its end: more may be due behind it, read them at once.
                None if window.exhausted(to_millis(self.clock.now())) => continue,
                None => MAX_SLEEP,
                Some(at) => {
                    let until = u64::try_from(at - to_millis(self.clock.now())).unwrap_or(0);
                    MAX_SLEEP.min(Duration::from_millis(until))
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = self.wake.notified() => stale = true,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Reads the window from the table.
    async fn load(&self, now_ms: i64) -> Result<Window, Error> {
        let horizon_end = now_ms.saturating_add(HORIZON.num_milliseconds());
        let rows = store::soonest(&self.db, horizon_end, WINDOW as i64).await?;
        Ok(Window::load(rows, horizon_end))
    }

    /// Fires the clocks of `ids` that are due, in one transaction. Returns, for each that may
    /// fire again (or was changed since the window was loaded but is still to fire), when.
    async fn fire(&self, ids: &[String]) -> Result<Vec<(String, i64)>, Error> {
        let mut command = self.commands.begin_with_key(String::new(), String::new()).await?;
        let now = command.now();
        let now_ms = to_millis(now);
        let mut next = Vec::new();
        let mut fired: Vec<(Firing, String, String)> = Vec::new();
        let mut corrected = 0;
        for clock_id in ids {
            let work = command.work();
            let Some(row) = store::claim_clock(work.tx, clock_id).await? else { continue };
            let mut clock = row.tracked()?.clock;
            let Some(firing) = clock.due(now) else {
                // Re-armed, paused or stopped since the window was loaded: keep it in view if it
                // is still to fire. A row that says it is due when its clock is not would come
                // back on every load: its next firing is put right.
                let wake = clock.next_wake().map(to_millis);
                if row.next_fire_at.is_some_and(|at| at <= now_ms) && wake != row.next_fire_at {
                    tracing::warn!(clock_id, "a clock's next firing did not match its state; corrected");
                    store::advance(work.tx, clock_id, clock.version, clock.state, clock.state, wake, now_ms).await?;
                    corrected += 1;
                }
                next.extend(row.next_fire_at.filter(|at| *at > now_ms).map(|at| (clock_id.clone(), at)));
                continue;
            };
            let from = clock.state;
            let to = clock.apply(firing)?;
            let wake = clock.next_wake().map(to_millis);
            if !store::advance(work.tx, clock_id, clock.version, from, to, wake, now_ms).await? {
                continue; // changed meanwhile (another process fired it): nothing to do
            }
            let (history, level) = match firing {
                Firing::Warning => ("warning", Level::Yellow),
                Firing::Breach => ("breached", Level::Red),
                Firing::Escalation => ("escalation", Level::Red),
            };
            let history_row = HistoryRow {
                clock_id: clock_id.to_string(),
                version: i64::from(clock.version),
                event: history.to_string(),
                case_id: row.case_id.clone(),
                milestone: row.milestone.clone(),
                happened_at: now_ms,
                deadline: to_millis(clock.deadline),
            };
            store::record_history(work.tx, &history_row).await?;
            // The alert's id derives from the clock, its version and the firing: however often
            // the firing is attempted, JetStream and every inbox see one alert.
            command.set_cause(alert_key(clock_id, clock.version, firing), row.armed_by.clone());
            let mut work = command.work();
            let case = CaseIds { case_id: &row.case_id, case_no: &row.case_no };
            let alert = Alert {
                clock_id: row.clock_id.clone(),
                milestone: row.milestone.clone(),
                milestone_name: self.rules.policy.display_name(&row.milestone).to_string(),
                version: clock.version,
                deadline: Some(jiesu_kit::time::millis_to_proto(row.deadline)),
                unit_id: row.unit_id.clone(),
                level: level.as_str().to_string(),
            };
            match firing {
                Firing::Warning => work.emit(case, alert.warning()),
                Firing::Breach => work.emit(case, alert.breached()),
                Firing::Escalation => work.emit(case, alert.escalation_due()),
            };
            next.extend(wake.map(|at| (clock_id.clone(), at)));
            fired.push((firing, row.case_id.clone(), format!("{} v{} {}", row.milestone, clock.version, row.unit_id)));
        }
        if fired.is_empty() && corrected == 0 {
            return Ok(next); // nothing written: dropping the command rolls the reads back
        }
        command.commit().await?;
        for (firing, case_id, what) in &fired {
            match firing {
                Firing::Warning => self.metrics.warnings.inc(),
                Firing::Breach => self.metrics.breaches.inc(),
                Firing::Escalation => self.metrics.escalations.inc(),
            };
            tracing::info!(case_id = %case_id, firing = firing.as_str(), clock = %what, "clock fired");
        }
        Ok(next)
    }
}

/// Keeps the clock gauges up to date, every [`RESYNC`], beside the firing loop: counting scans
/// the running clocks, which at city scale takes longer than a firing may wait.
pub async fn count_clocks(db: Db, metrics: TimerMetrics, cancel: CancellationToken) -> Result<(), jiesu_kit::Error> {
    loop {
        match store::count_running(&db).await {
            Ok(counts) => metrics.set_counts(&counts),
            Err(e) => tracing::warn!(error = %e, "SLA timer cannot count the clocks"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(RESYNC) => {}
        }
    }
}

/// What the two alert events carry.
struct Alert {
    clock_id: String,
    milestone: String,
    milestone_name: String,
    version: u32,
    deadline: Option<jiesu_proto::Timestamp>,
    unit_id: String,
    level: String,
}

impl Alert {
    fn warning(self) -> SlaWarning {
        let Alert { clock_id, milestone, milestone_name, version, deadline, unit_id, level } = self;
        SlaWarning { meta: None, clock_id, milestone, milestone_name, version, deadline, unit_id, level }
    }

    fn breached(self) -> SlaBreached {
        let Alert { clock_id, milestone, milestone_name, version, deadline, unit_id, level } = self;
        SlaBreached { meta: None, clock_id, milestone, milestone_name, version, deadline, unit_id, level }
    }

    fn escalation_due(self) -> SlaEscalationDue {
        let Alert { clock_id, milestone, milestone_name, version, deadline, unit_id, level } = self;
        SlaEscalationDue { meta: None, clock_id, milestone, milestone_name, version, red_since: deadline, deadline, unit_id, level }
    }
}

/// What an alert's event id derives from, the same however often the firing is attempted:
/// JetStream drops a re-publish within its duplicate window, and the outbox and the clock's
/// compare-and-set refuse a second write at any time.
pub fn alert_key(clock_id: &str, version: u32, firing: Firing) -> String {
    format!("sla:{clock_id}:{version}:{}", firing.as_str())
}
#[cfg(test)]
mod tests {
    use super::*;

    fn due(id: &str, at: i64) -> store::Due {
        store::Due { clock_id: id.into(), next_fire_at: at }
    }

    #[test]
    fn a_partial_window_covers_the_whole_horizon() {
        let mut w = Window::load(vec![due("a", 5), due("b", 9)], 100);
        assert_eq!(w.covered_until, 100);
        assert_eq!(w.earliest(), Some(5));
        assert_eq!(w.pop_due(4), None);
        assert_eq!(w.pop_due(5).as_deref(), Some("a"));
        assert_eq!(w.pop_due(20).as_deref(), Some("b"));
        assert_eq!(w.pop_due(20), None);
        w.insert(50, "a".into());
        w.insert(101, "c".into());
        assert_eq!(w.earliest(), Some(50));
        assert_eq!(w.entries.len(), 1, "beyond the horizon stays in the table");
    }

    #[test]
    fn a_full_window_covers_only_up_to_its_last_entry() {
        let rows = (0..WINDOW as i64).map(|i| due(&format!("c{i}"), i)).collect();
        let w = Window::load(rows, 1_000_000);
        assert_eq!(w.covered_until, WINDOW as i64 - 1);
    }

    #[test]
    fn due_clocks_come_in_batches_and_a_full_window_asks_for_more() {
        let rows = (0..WINDOW as i64).map(|i| due(&format!("c{i}"), i)).collect();
        let mut w = Window::load(rows, 1_000_000);
        assert_eq!(w.pop_due_batch(99, BATCH).len(), 100, "only what is due");
        assert_eq!(w.pop_due_batch(5_000, BATCH).len(), BATCH);
        while !w.pop_due_batch(5_000, BATCH).is_empty() {}
        assert!(w.exhausted(5_000), "a full window fired to its end: read on at once");
        // A partial window covers the horizon: nothing more before it.
        let w = Window::load(vec![], 1_000_000);
        assert!(!w.exhausted(5_000));
        assert!(w.exhausted(1_000_000));
    }

    #[test]
    fn an_empty_window_asks_to_be_loaded() {
        assert!(0 >= Window::empty().covered_until);
    }

    #[test]
    fn alert_ids_are_deterministic() {
        assert_eq!(alert_key("c1:accept", 2, Firing::Warning), "sla:c1:accept:2:warning");
        assert_eq!(alert_key("c1:accept", 2, Firing::Breach), "sla:c1:accept:2:breach");
    }
}
