//! The timer's database: the `clocks` table (the system of record of every milestone clock) and
//! `clock_history` (what happened to each clock version, for the case timeline).
//!
//! Every change of a clock's state is guarded by its `version` (and, for firings, its `state`),
//! so a stale writer — a second firing process, a late event — changes nothing.

use jiesu_kit::{
    CaseKey, Db, Tx,
    time::{from_millis, to_millis},
    with_pool, with_tx,
};

use crate::{
    Error,
    domain::{Clock, ClockState, Milestone, Tracked},
};

/// The id of a case's clock of `milestone`: `<case_id>:<milestone>`, and for an assisting
/// part `<case_id>:assist:<unit_id>`.
pub fn clock_id(case_id: &str, milestone: Milestone, part: &str) -> String {
    if part.is_empty() { format!("{case_id}:{milestone}") } else { format!("{case_id}:{milestone}:{part}") }
}

/// A clock as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClockRow {
    pub clock_id: String,
    pub case_id: String,
    pub case_no: String,
    pub milestone: String,
    pub version: i64,
    pub round: i64,
    pub state: String,
    pub started_at: i64,
    pub warn_at: i64,
    pub deadline: i64,
    pub stopped_at: Option<i64>,
    pub unit_id: String,
    pub urgency: String,
    pub next_fire_at: Option<i64>,
    pub armed_by: String,
    pub updated_at: i64,
    /// The deadline before an extension moved it; `None` when it never moved.
    pub original_deadline: Option<i64>,
    /// The assisting unit whose part it times; empty for the case's own clocks.
    pub part: String,
    pub paused_at: Option<i64>,
    pub escalate_at: Option<i64>,
}

const COLUMNS: &str = "clock_id, case_id, case_no, milestone, version, round, state, started_at, warn_at, \
    deadline, stopped_at, unit_id, urgency, next_fire_at, armed_by, updated_at, part, paused_at, escalate_at";

/// What a read returns: the written columns and the original deadline an extension kept.
const READ_COLUMNS: &str = "clock_id, case_id, case_no, milestone, version, round, state, started_at, warn_at, \
    deadline, stopped_at, unit_id, urgency, next_fire_at, armed_by, updated_at, part, paused_at, escalate_at, original_deadline";

impl ClockRow {
    /// The domain's view of the row; a row the domain cannot read is reported, never guessed at.
    pub fn tracked(&self) -> Result<Tracked, Error> {
        let corrupt = |reason: String| Error::CorruptClock { clock_id: self.clock_id.clone(), reason };
        let number = |name: &str, v: i64| u32::try_from(v).map_err(|_| corrupt(format!("{name} {v} is out of range")));
        Ok(Tracked {
            clock: Clock {
                milestone: self.milestone.parse().map_err(|e: crate::domain::DomainError| corrupt(e.to_string()))?,
                version: number("version", self.version)?,
                started_at: from_millis(self.started_at),
                warn_at: from_millis(self.warn_at),
                deadline: from_millis(self.deadline),
                state: self.state.parse().map_err(|e: crate::domain::DomainError| corrupt(e.to_string()))?,
                escalate_at: self.escalate_at.map(from_millis),
                paused_at: self.paused_at.map(from_millis),
            },
            part: self.part.clone(),
            round: number("round", self.round)?,
            unit_id: self.unit_id.clone(),
            urgency: self.urgency.parse().map_err(|e: jiesu_reference::UrgencyError| corrupt(e.to_string()))?,
        })
    }
}

/// Every clock of a case, locked for the handler that is about to change them.
pub async fn case_clocks(tx: &mut Tx, case_id: &str) -> Result<Vec<ClockRow>, Error> {
    let sql = format!("SELECT {READ_COLUMNS} FROM clocks WHERE case_id = $1 ORDER BY clock_id{}", tx.backend().lock_clause(false));
    let rows = with_tx!(tx, conn => sqlx::query_as::<_, ClockRow>(sqlx::AssertSqlSafe(sql))
        .bind(case_id).fetch_all(conn).await)?;
    Ok(rows)
}

/// Claims one clock for firing. `None` when it is gone, or on PostgreSQL when another process
/// is firing it right now (it holds the row lock; skipping beats waiting to find nothing to do).
pub async fn claim_clock(tx: &mut Tx, clock_id: &str) -> Result<Option<ClockRow>, Error> {
    let sql = format!("SELECT {READ_COLUMNS} FROM clocks WHERE clock_id = $1{}", tx.backend().lock_clause(true));
    let row = with_tx!(tx, conn => sqlx::query_as::<_, ClockRow>(sqlx::AssertSqlSafe(sql))
        .bind(clock_id).fetch_optional(conn).await)?;
    Ok(row)
}

/// Arms a clock, or re-arms it one version up. Returns `false` (and changes nothing) when the
/// stored version is already the same or newer: arming is idempotent.
pub async fn arm(tx: &mut Tx, case_id: &str, case_no: &str, t: &Tracked, armed_by: &str, now_ms: i64) -> Result<bool, Error> {
    let c = &t.clock;
    let sql = format!(
        "INSERT INTO clocks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT (clock_id) DO UPDATE SET
             case_no = excluded.case_no, version = excluded.version, round = excluded.round,
             state = excluded.state, started_at = excluded.started_at, warn_at = excluded.warn_at,
             deadline = excluded.deadline, stopped_at = NULL, unit_id = excluded.unit_id,
             urgency = excluded.urgency, next_fire_at = excluded.next_fire_at,
             armed_by = excluded.armed_by, updated_at = excluded.updated_at, original_deadline = NULL,
             paused_at = excluded.paused_at, escalate_at = excluded.escalate_at
         WHERE clocks.version < excluded.version"
    );
    let n = with_tx!(tx, conn => sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(clock_id(case_id, c.milestone, &t.part)).bind(case_id).bind(case_no).bind(c.milestone.as_str())
        .bind(i64::from(c.version)).bind(i64::from(t.round)).bind(c.state.as_str())
        .bind(to_millis(c.started_at)).bind(to_millis(c.warn_at)).bind(to_millis(c.deadline))
        .bind(&t.unit_id).bind(t.urgency.key()).bind(c.next_wake().map(to_millis))
        .bind(armed_by).bind(now_ms).bind(&t.part).bind(c.paused_at.map(to_millis)).bind(c.escalate_at.map(to_millis))
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Stops a running clock of this version at `at_ms`; `false` when it was already stopped or
/// re-armed since.
pub async fn stop(tx: &mut Tx, clock_id: &str, version: u32, at_ms: i64, now_ms: i64) -> Result<bool, Error> {
    let n = with_tx!(tx, conn => sqlx::query(
        "UPDATE clocks SET state = 'stopped', stopped_at = $1, next_fire_at = NULL, updated_at = $2
         WHERE clock_id = $3 AND version = $4 AND state <> 'stopped'")
        .bind(at_ms).bind(now_ms).bind(clock_id).bind(i64::from(version))
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Hands a running clock of this version over to another unit.
pub async fn reassign(tx: &mut Tx, clock_id: &str, version: u32, unit_id: &str, now_ms: i64) -> Result<bool, Error> {
    let n = with_tx!(tx, conn => sqlx::query(
        "UPDATE clocks SET unit_id = $1, updated_at = $2 WHERE clock_id = $3 AND version = $4 AND state <> 'stopped'")
        .bind(unit_id).bind(now_ms).bind(clock_id).bind(i64::from(version))
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Running clocks past their yellow point (`warned`) or deadline (`breached`, `escalated`) of
/// `unit_id` (`""`: all), the nearest deadline first.
pub async fn at_risk(db: &Db, unit_id: &str, states: [&str; 3], limit: u32) -> Result<Vec<ClockRow>, Error> {
    let [a, b, c] = states;
    let sql = format!(
        "SELECT {READ_COLUMNS} FROM clocks WHERE state IN ($1, $2, $3) AND ($4 = '' OR unit_id = $4) ORDER BY deadline, clock_id LIMIT $5"
    );
    let rows = with_pool!(db, pool => sqlx::query_as::<_, ClockRow>(sqlx::AssertSqlSafe(sql))
        .bind(a).bind(b).bind(c).bind(unit_id).bind(i64::from(limit)).fetch_all(pool).await)?;
    Ok(rows)
}

/// Met stops in a period, per milestone and unit.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MetFigures {
    pub milestone: String,
    pub unit_id: String,
    pub on_time: i64,
    pub late: i64,
    pub extended: i64,
    pub within_original: i64,
}

/// Running clocks per milestone, unit and colour.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenFigures {
    pub milestone: String,
    pub unit_id: String,
    pub state: String,
    pub n: i64,
}

/// The milestones met in [`from`, `to`) and the clocks yellow and red now, of `unit_id` (`""`: all).
pub async fn on_time(db: &Db, from: i64, to: i64, unit_id: &str) -> Result<(Vec<MetFigures>, Vec<OpenFigures>), Error> {
    let met = with_pool!(db, pool => sqlx::query_as::<_, MetFigures>(
        "SELECT c.milestone AS milestone, c.unit_id AS unit_id,
             SUM(CASE WHEN h.happened_at <= h.deadline THEN 1 ELSE 0 END) AS on_time,
             SUM(CASE WHEN h.happened_at > h.deadline THEN 1 ELSE 0 END) AS late,
             SUM(CASE WHEN c.original_deadline IS NOT NULL THEN 1 ELSE 0 END) AS extended,
             SUM(CASE WHEN h.happened_at <= COALESCE(c.original_deadline, h.deadline) THEN 1 ELSE 0 END) AS within_original
         FROM clock_history h JOIN clocks c ON c.clock_id = h.clock_id
         WHERE h.event = 'met' AND h.happened_at >= $1 AND h.happened_at < $2 AND ($3 = '' OR c.unit_id = $3)
         GROUP BY c.milestone, c.unit_id ORDER BY c.unit_id, c.milestone")
        .bind(from).bind(to).bind(unit_id).fetch_all(pool).await)?;
    let open = with_pool!(db, pool => sqlx::query_as::<_, OpenFigures>(
        "SELECT milestone, unit_id, state, COUNT(*) AS n FROM clocks
         WHERE state IN ('warned', 'breached', 'escalated') AND ($1 = '' OR unit_id = $1)
         GROUP BY milestone, unit_id, state")
        .bind(unit_id).fetch_all(pool).await)?;
    Ok((met, open))
}

/// Gives the running clock of `version` the times of `clock` (one version up): an approved
/// extension (`extension`: the deadline it had is kept as the original, the first one if it
/// moves twice; only before red), a pause or a resume. `false` when it was stopped or re-armed
/// meanwhile.
pub async fn retime(tx: &mut Tx, clock_id: &str, version: u32, clock: &Clock, extension: bool, now_ms: i64) -> Result<bool, Error> {
    let states = if extension { "('armed', 'warned')" } else { "('armed', 'warned', 'breached', 'escalated')" };
    let original = if extension { "COALESCE(original_deadline, deadline)" } else { "original_deadline" };
    let sql = format!(
        "UPDATE clocks SET version = $1, warn_at = $2, deadline = $3, next_fire_at = $4, paused_at = $5, escalate_at = $6,
             original_deadline = {original}, updated_at = $7
         WHERE clock_id = $8 AND version = $9 AND state IN {states}"
    );
    let n = with_tx!(tx, conn => sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(i64::from(clock.version)).bind(to_millis(clock.warn_at)).bind(to_millis(clock.deadline))
        .bind(clock.next_wake().map(to_millis)).bind(clock.paused_at.map(to_millis)).bind(clock.escalate_at.map(to_millis))
        .bind(now_ms).bind(clock_id).bind(i64::from(version))
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Moves a clock from `from` to `to` after a firing — a compare-and-set on (version, state):
/// `false` when another process fired it first, or it was stopped or re-armed meanwhile.
pub async fn advance(
    tx: &mut Tx,
    clock_id: &str,
    version: u32,
    from: ClockState,
    to: ClockState,
    next_fire_at: Option<i64>,
    now_ms: i64,
) -> Result<bool, Error> {
    let n = with_tx!(tx, conn => sqlx::query(
        "UPDATE clocks SET state = $1, next_fire_at = $2, updated_at = $3
         WHERE clock_id = $4 AND version = $5 AND state = $6")
        .bind(to.as_str()).bind(next_fire_at).bind(now_ms).bind(clock_id).bind(i64::from(version)).bind(from.as_str())
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// One line of a clock's history.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub clock_id: String,
    pub version: i64,
    /// `armed`, `warning`, `breached`, `met`, `closed` or `superseded`.
    pub event: String,
    pub case_id: String,
    pub milestone: String,
    pub happened_at: i64,
    pub deadline: i64,
}

/// Records what happened to a clock version; each event at most once per version.
pub async fn record_history(tx: &mut Tx, h: &HistoryRow) -> Result<(), Error> {
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO clock_history (clock_id, version, event, case_id, milestone, happened_at, deadline)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (clock_id, version, event) DO NOTHING")
        .bind(&h.clock_id).bind(h.version).bind(&h.event).bind(&h.case_id).bind(&h.milestone)
        .bind(h.happened_at).bind(h.deadline)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A clock that may fire soon.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub clock_id: String,
    pub next_fire_at: i64,
}

/// The `limit` clocks that may fire soonest, up to `until_ms`, soonest first.
pub async fn soonest(db: &Db, until_ms: i64, limit: i64) -> Result<Vec<Due>, Error> {
    let rows = with_pool!(db, pool => sqlx::query_as::<_, Due>(
        "SELECT clock_id, next_fire_at FROM clocks
         WHERE next_fire_at IS NOT NULL AND next_fire_at <= $1
         ORDER BY next_fire_at, clock_id LIMIT $2")
        .bind(until_ms).bind(limit).fetch_all(pool).await)?;
    Ok(rows)
}

/// How many clocks are in each state other than `stopped`.
pub async fn count_running(db: &Db) -> Result<Vec<(String, i64)>, Error> {
    let rows = with_pool!(db, pool => sqlx::query_as::<_, (String, i64)>(
        "SELECT state, COUNT(*) FROM clocks WHERE state <> 'stopped' GROUP BY state")
        .fetch_all(pool).await)?;
    Ok(rows)
}

/// Every clock of a case, by case id or case number, in the order they started.
pub async fn list(db: &Db, key: &CaseKey) -> Result<Vec<ClockRow>, Error> {
    Ok(db.rows_of_case(&format!("SELECT {READ_COLUMNS} FROM clocks"), key, "ORDER BY started_at, clock_id").await?)
}

/// What happened to a case's clocks, oldest first.
pub async fn history(db: &Db, case_id: &str) -> Result<Vec<HistoryRow>, Error> {
    let rows = with_pool!(db, pool => sqlx::query_as::<_, HistoryRow>(
        "SELECT clock_id, version, event, case_id, milestone, happened_at, deadline FROM clock_history
         WHERE case_id = $1 ORDER BY happened_at, clock_id, version")
        .bind(case_id).fetch_all(pool).await)?;
    Ok(rows)
}

/// What the policy chooses a case's limits by, as stored.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct FactsRow {
    pub channel: String,
    pub urgency: String,
    pub request_type: String,
    pub category: String,
}

/// The case's facts so far (all empty, normal urgency, for a case not heard of).
pub async fn facts(tx: &mut Tx, case_id: &str) -> Result<FactsRow, Error> {
    let row = with_tx!(tx, conn => sqlx::query_as::<_, FactsRow>(
        "SELECT channel, urgency, request_type, category FROM case_facts WHERE case_id = $1")
        .bind(case_id).fetch_optional(conn).await)?;
    Ok(row.unwrap_or_else(|| FactsRow { urgency: "normal".into(), ..FactsRow::default() }))
}

/// Stores the case's facts.
pub async fn save_facts(tx: &mut Tx, case_id: &str, f: &FactsRow, now_ms: i64) -> Result<(), Error> {
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO case_facts (case_id, channel, urgency, request_type, category, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (case_id) DO UPDATE SET channel = excluded.channel, urgency = excluded.urgency,
             request_type = excluded.request_type, category = excluded.category, updated_at = excluded.updated_at")
        .bind(case_id).bind(&f.channel).bind(&f.urgency).bind(&f.request_type).bind(&f.category).bind(now_ms)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}
