//! Dispatch's database: the cases it owns, the units working on each, and their history
//! (办理记录).
//!
//! A case's workflow state is one JSON document (`workflow`, see [`crate::workflow::Case`]) beside
//! the columns the queues filter by, written together by [`save`]. Every change is conditional on
//! the version read (`WHERE version = …`): on PostgreSQL two commands racing on one case cannot
//! both win, without `SELECT … FOR UPDATE`, which SQLite lacks (there `BEGIN IMMEDIATE` already
//! serialises writers).

use jiesu_kit::{CaseKey, Db, Tx, with_pool, with_tx};

use crate::{
    Error,
    workflow::{self, Stage},
};

/// A case as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaseRow {
    pub case_id: String,
    pub case_no: String,
    /// The workflow stage ([`stage_key`]).
    pub status: String,
    /// The owning (lead) unit; empty while the case waits in the centre's manual queue.
    pub unit_id: String,
    pub unit_name: String,
    pub assisting: String,
    pub sub_item: String,
    pub category: String,
    pub urgency: String,
    pub round: i64,
    pub title: String,
    pub street: String,
    pub community: String,
    pub reply: String,
    pub accepted_by: String,
    pub resolved_by: String,
    pub dispatched_at: i64,
    pub accepted_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub updated_at: i64,
    pub workflow: String,
    pub version: i64,
    pub leader_id: String,
    pub deadline: Option<i64>,
    pub colour: String,
}

impl CaseRow {
    /// The case's public identity, for the events about it.
    pub fn ids(&self) -> jiesu_kit::CaseIds<'_> {
        jiesu_kit::CaseIds { case_id: &self.case_id, case_no: &self.case_no }
    }

    /// The assisting unit ids.
    pub fn assisting_ids(&self) -> Vec<String> {
        serde_json::from_str(&self.assisting).unwrap_or_default()
    }

    /// The workflow state as stored; `None` for a case dispatched before the workflow existed
    /// (the service rebuilds it from the columns).
    pub fn stored_workflow(&self) -> Result<Option<workflow::Case>, Error> {
        if self.workflow.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&self.workflow)
            .map(Some)
            .map_err(|e| Error::Corrupt(format!("case {}: workflow state unreadable: {e}", self.case_id)))
    }
}

/// The stored name of a stage.
pub fn stage_key(stage: Stage) -> &'static str {
    match stage {
        Stage::Dispatched => "dispatched",
        Stage::Reopened => "reopened",
        Stage::Accepted => "accepted",
        Stage::Contacted => "contacted",
        Stage::Verified => "verified",
        Stage::Replied => "replied",
        Stage::StagedResolved => "staged",
        Stage::Resolved => "resolved",
        Stage::Closed => "closed",
    }
}

/// Every stage, in order.
pub const STAGES: [Stage; 9] = [
    Stage::Dispatched,
    Stage::Reopened,
    Stage::Accepted,
    Stage::Contacted,
    Stage::Verified,
    Stage::Replied,
    Stage::StagedResolved,
    Stage::Resolved,
    Stage::Closed,
];

/// The stage of a stored name.
pub fn parse_stage(key: &str) -> Option<Stage> {
    STAGES.into_iter().find(|s| stage_key(*s) == key)
}

/// A case being created by its first dispatch (or its arrival in the manual queue).
#[derive(Debug, Clone)]
pub struct NewCase<'a> {
    pub case_id: &'a str,
    pub case_no: &'a str,
    pub unit_name: &'a str,
    pub sub_item: &'a str,
    pub category: &'a str,
    pub urgency: &'a str,
    pub title: &'a str,
    pub street: &'a str,
    pub community: &'a str,
    pub at: i64,
    pub case: &'a workflow::Case,
}

/// One line of a case's history.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub at: i64,
    pub event: String,
    pub detail: String,
    pub actor: String,
}

const COLUMNS: &str = "case_id, case_no, status, unit_id, unit_name, assisting, sub_item, category, urgency, round, \
    title, street, community, reply, accepted_by, resolved_by, dispatched_at, accepted_at, resolved_at, closed_at, updated_at, \
    workflow, version, leader_id, deadline, colour";

fn assisting_json(case: &workflow::Case) -> String {
    let ids: Vec<&str> = case.assisting.iter().map(|p| p.unit.as_str()).collect();
    serde_json::to_string(&ids).expect("a list of strings serialises")
}

fn workflow_json(case: &workflow::Case) -> String {
    serde_json::to_string(case).expect("the workflow state serialises")
}

/// Creates a case; `false` when it already exists (nothing changed).
pub async fn insert_case(tx: &mut Tx, c: &NewCase<'_>) -> Result<bool, Error> {
    let case = c.case;
    let inserted = with_tx!(tx, conn => sqlx::query(
        "INSERT INTO cases (case_id, case_no, status, unit_id, unit_name, assisting, sub_item, category, urgency, round,
             title, street, community, reply, accepted_by, resolved_by, dispatched_at, updated_at,
             workflow, version, manual_queue, deadline)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11, $12, '', '', '', $13, $13, $14, 1, $15, $16)
         ON CONFLICT (case_id) DO NOTHING")
        .bind(c.case_id).bind(c.case_no).bind(stage_key(case.stage)).bind(case.owner.as_deref().unwrap_or_default())
        .bind(c.unit_name).bind(assisting_json(case)).bind(c.sub_item).bind(c.category).bind(c.urgency).bind(c.title)
        .bind(c.street).bind(c.community).bind(c.at).bind(workflow_json(case)).bind(case.owner.is_none())
        .bind(case.deadline.timestamp_millis())
        .execute(conn).await.map(|r| r.rows_affected()))?;
    if inserted == 1 {
        write_units(tx, c.case_id, case, true).await?;
    }
    Ok(inserted == 1)
}

/// Which person-and-time columns a change fills in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    None,
    Accepted,
    Resolved,
    Closed,
}

/// Writes the case's new workflow state, on the condition that nobody changed it since `from`
/// was read; `Conflict` otherwise.
pub async fn save(
    tx: &mut Tx,
    from: &CaseRow,
    case: &workflow::Case,
    unit_name: &str,
    stamp: Stamp,
    by: &str,
    at: i64,
) -> Result<(), Error> {
    let stamp_key = match stamp {
        Stamp::None => "",
        Stamp::Accepted => "accepted",
        Stamp::Resolved => "resolved",
        Stamp::Closed => "closed",
    };
    let reply = case
        .explanation
        .as_deref()
        .filter(|_| case.unreasonable)
        .or(case.reply_letter.as_ref().map(|l| l.handling.as_str()))
        .unwrap_or(&from.reply)
        .to_string();
    // A new owner or a new round starts the clocks afresh: the colour was the old ones'.
    let fresh_clocks = i64::from(case.round) != from.round || case.owner.as_deref().unwrap_or_default() != from.unit_id;
    let rows = with_tx!(tx, conn => sqlx::query(
        "UPDATE cases SET status = $1, unit_id = $2, unit_name = $3, assisting = $4, round = $5, reply = $6,
             workflow = $7, manual_queue = $8, return_pending = $9, extension_pending = $10, supervised = $11,
             unreasonable = $12, leader_id = $13, deadline = $14, updated_at = $15, version = version + 1,
             accepted_by = CASE WHEN $16 = 'accepted' THEN $17 ELSE accepted_by END,
             accepted_at = CASE WHEN $16 = 'accepted' THEN $15 ELSE accepted_at END,
             resolved_by = CASE WHEN $16 = 'resolved' THEN $17 ELSE resolved_by END,
             resolved_at = CASE WHEN $16 = 'resolved' THEN $15 ELSE resolved_at END,
             closed_at = CASE WHEN $16 = 'closed' THEN $15 WHEN $1 = 'closed' THEN closed_at ELSE NULL END,
             colour = CASE WHEN $20 THEN 'green' ELSE colour END
         WHERE case_id = $18 AND version = $19")
        .bind(stage_key(case.stage)).bind(case.owner.as_deref().unwrap_or_default()).bind(unit_name)
        .bind(assisting_json(case)).bind(i64::from(case.round)).bind(&reply).bind(workflow_json(case))
        .bind(case.owner.is_none() && case.stage != Stage::Closed).bind(case.pending_return.is_some())
        .bind(case.pending_extension.is_some()).bind(case.supervised).bind(case.unreasonable)
        .bind(case.leader.as_deref().unwrap_or_default()).bind(case.deadline.timestamp_millis()).bind(at)
        .bind(stamp_key).bind(by).bind(&from.case_id).bind(from.version).bind(fresh_clocks)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    if rows != 1 {
        return Err(Error::Conflict(from.case_id.clone()));
    }
    if units_changed(from, case) {
        write_units(tx, &from.case_id, case, false).await?;
    }
    Ok(())
}

/// Whether the owner or the assisting units differ from the stored row's.
fn units_changed(from: &CaseRow, case: &workflow::Case) -> bool {
    case.owner.as_deref().unwrap_or_default() != from.unit_id || assisting_json(case) != from.assisting
}

/// The units working on the case: its owner and each assisting unit. `fresh`: the case was just
/// created, so there is nothing to clear. One statement for all the rows: on PostgreSQL every
/// statement is a round trip inside the dispatch transaction.
async fn write_units(tx: &mut Tx, case_id: &str, case: &workflow::Case, fresh: bool) -> Result<(), Error> {
    if !fresh {
        with_tx!(tx, conn => sqlx::query("DELETE FROM case_units WHERE case_id = $1").bind(case_id).execute(conn).await.map(|_| ()))?;
    }
    let units: Vec<(&str, bool)> =
        case.owner.iter().map(|o| (o.as_str(), true)).chain(case.assisting.iter().map(|p| (p.unit.as_str(), false))).collect();
    if units.is_empty() {
        return Ok(());
    }
    let values: Vec<String> = (0..units.len()).map(|i| format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3)).collect();
    let sql = format!("INSERT INTO case_units (case_id, unit_id, lead) VALUES {}", values.join(", "));
    with_tx!(tx, conn => {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(case_id);
        for (unit, lead) in &units {
            q = q.bind(*unit).bind(*lead);
        }
        q.execute(conn).await.map(|_| ())
    })?;
    Ok(())
}

/// Raises the case's colour from an SLA alert; a colour never goes down (red stays red).
pub async fn raise_colour(tx: &mut Tx, case_id: &str, colour: &str) -> Result<bool, Error> {
    let rows = with_tx!(tx, conn => sqlx::query(
        "UPDATE cases SET colour = $1
         WHERE case_id = $2 AND colour <> $1 AND NOT (colour = 'red')")
        .bind(colour).bind(case_id)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(rows == 1)
}

/// Finds a case inside the transaction (to change it).
pub async fn find(tx: &mut Tx, key: &CaseKey) -> Result<Option<CaseRow>, Error> {
    let (column, value) = key.column_and_value();
    let sql = format!("SELECT {COLUMNS} FROM cases WHERE {column} = $1");
    let row = with_tx!(tx, conn => sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(sql))
        .bind(value).fetch_optional(conn).await)?;
    Ok(row)
}

/// Looks a case up for reading.
pub async fn get(db: &Db, key: &CaseKey) -> Result<Option<CaseRow>, Error> {
    Ok(db.rows_of_case(&format!("SELECT {COLUMNS} FROM cases"), key, "").await?.pop())
}

/// Adds a line to a case's history.
pub async fn add_history(tx: &mut Tx, case_id: &str, at: i64, event: &str, detail: &str, actor: &str) -> Result<(), Error> {
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO case_history (case_id, at, event, detail, actor) VALUES ($1, $2, $3, $4, $5)")
        .bind(case_id).bind(at).bind(event).bind(detail).bind(actor)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A case's history, oldest first.
pub async fn history(db: &Db, case_id: &str) -> Result<Vec<HistoryRow>, Error> {
    let rows = with_pool!(db, pool => sqlx::query_as::<_, HistoryRow>(
        "SELECT at, event, detail, actor FROM case_history WHERE case_id = $1 ORDER BY at, id")
        .bind(case_id).fetch_all(pool).await)?;
    Ok(rows)
}

/// What a list or a count narrows to. Empty strings and `false` narrow nothing.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Cases this unit owns or assists.
    pub unit_id: String,
    /// Cases escalated to this leader.
    pub leader_id: String,
    pub stage: Option<Stage>,
    pub manual_queue: bool,
    pub return_pending: bool,
    pub extension_pending: bool,
    pub escalated: bool,
    pub supervised: bool,
    /// Unresolved past the deadline in force at `now`.
    pub overdue: bool,
    pub colour: String,
    pub open_only: bool,
    pub now: i64,
}

/// The WHERE clause of a [`Filter`]; its parameters are bound by [`bind_filter`] as $1 … $12.
const FILTER: &str = "($1 = '' OR case_id IN (SELECT case_id FROM case_units WHERE unit_id = $1))
    AND ($2 = '' OR leader_id = $2)
    AND ($3 = '' OR status = $3)
    AND (NOT $4 OR manual_queue)
    AND (NOT $5 OR return_pending)
    AND (NOT $6 OR extension_pending)
    AND (NOT $7 OR leader_id <> '')
    AND (NOT $8 OR supervised)
    AND (NOT $9 OR (deadline < $10 AND status NOT IN ('staged', 'resolved', 'closed')))
    AND ($11 = '' OR colour = $11)
    AND (NOT $12 OR status <> 'closed')";

macro_rules! bind_filter {
    ($query:expr, $f:expr) => {
        $query
            .bind($f.unit_id.as_str())
            .bind($f.leader_id.as_str())
            .bind($f.stage.map(stage_key).unwrap_or_default())
            .bind($f.manual_queue)
            .bind($f.return_pending)
            .bind($f.extension_pending)
            .bind($f.escalated)
            .bind($f.supervised)
            .bind($f.overdue)
            .bind($f.now)
            .bind($f.colour.as_str())
            .bind($f.open_only)
    };
}

/// A page of cases ordered by case id, after `after_case_id` (`""`: from the start).
pub async fn list(db: &Db, filter: &Filter, after_case_id: &str, limit: u32) -> Result<Vec<CaseRow>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM cases WHERE {FILTER} AND case_id > $13 ORDER BY case_id LIMIT $14");
    let rows = with_pool!(db, pool => bind_filter!(sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(sql)), filter)
        .bind(after_case_id).bind(i64::from(limit))
        .fetch_all(pool).await)?;
    Ok(rows)
}

/// Cases dispatched and resolved in a period, per owning unit and category.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PeriodRow {
    pub unit_id: String,
    pub category: String,
    pub dispatched: i64,
    pub resolved: i64,
}

/// The cases of `filter` dispatched or resolved in [`from`, `to`).
pub async fn period(db: &Db, filter: &Filter, from: i64, to: i64) -> Result<Vec<PeriodRow>, Error> {
    let sql = format!(
        "SELECT unit_id, category,
            CAST(COALESCE(SUM(CASE WHEN dispatched_at >= $13 AND dispatched_at < $14 THEN 1 ELSE 0 END), 0) AS BIGINT) AS dispatched,
            CAST(COALESCE(SUM(CASE WHEN resolved_at >= $13 AND resolved_at < $14 THEN 1 ELSE 0 END), 0) AS BIGINT) AS resolved
         FROM cases WHERE {FILTER}
            AND ((dispatched_at >= $13 AND dispatched_at < $14) OR (resolved_at >= $13 AND resolved_at < $14))
         GROUP BY unit_id, category ORDER BY unit_id, category"
    );
    Ok(with_pool!(db, pool => bind_filter!(sqlx::query_as::<_, PeriodRow>(sqlx::AssertSqlSafe(sql)), filter)
        .bind(from).bind(to).fetch_all(pool).await)?)
}

/// Cases per owning unit and stage.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CountRow {
    pub unit_id: String,
    pub status: String,
    pub count: i64,
}

/// The flags of a dashboard.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct FlagCounts {
    pub manual_queue: i64,
    pub return_pending: i64,
    pub extension_pending: i64,
    pub escalated: i64,
    pub supervised: i64,
    pub overdue: i64,
    pub yellow: i64,
    pub red: i64,
}

/// Reopenings (重办) of one unit's cases.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReopenRow {
    pub unit_id: String,
    pub reopens: i64,
}

/// How many cases each unit holds in each stage, how many carry each flag (open cases), and
/// how often each unit's cases were reopened.
pub async fn count(db: &Db, filter: &Filter) -> Result<(Vec<CountRow>, FlagCounts, Vec<ReopenRow>), Error> {
    let by_unit =
        format!("SELECT unit_id, status, COUNT(*) AS count FROM cases WHERE {FILTER} GROUP BY unit_id, status ORDER BY unit_id, status");
    let rows = with_pool!(db, pool => bind_filter!(sqlx::query_as::<_, CountRow>(sqlx::AssertSqlSafe(by_unit)), filter)
        .fetch_all(pool).await)?;
    let flags = format!(
        "SELECT
            COALESCE(SUM(CASE WHEN manual_queue THEN 1 ELSE 0 END), 0) AS manual_queue,
            COALESCE(SUM(CASE WHEN return_pending THEN 1 ELSE 0 END), 0) AS return_pending,
            COALESCE(SUM(CASE WHEN extension_pending THEN 1 ELSE 0 END), 0) AS extension_pending,
            COALESCE(SUM(CASE WHEN leader_id <> '' THEN 1 ELSE 0 END), 0) AS escalated,
            COALESCE(SUM(CASE WHEN supervised THEN 1 ELSE 0 END), 0) AS supervised,
            COALESCE(SUM(CASE WHEN deadline < $10 AND status NOT IN ('staged', 'resolved', 'closed') THEN 1 ELSE 0 END), 0) AS overdue,
            COALESCE(SUM(CASE WHEN colour = 'yellow' THEN 1 ELSE 0 END), 0) AS yellow,
            COALESCE(SUM(CASE WHEN colour = 'red' THEN 1 ELSE 0 END), 0) AS red
         FROM cases WHERE {FILTER} AND status <> 'closed'"
    );
    let flags = with_pool!(db, pool => bind_filter!(sqlx::query_as::<_, FlagCounts>(sqlx::AssertSqlSafe(flags)), filter)
        .fetch_one(pool).await)?;
    let reopens = format!(
        "SELECT unit_id, CAST(SUM(round - 1) AS BIGINT) AS reopens FROM cases WHERE {FILTER} AND round > 1 GROUP BY unit_id ORDER BY unit_id"
    );
    let reopens = with_pool!(db, pool => bind_filter!(sqlx::query_as::<_, ReopenRow>(sqlx::AssertSqlSafe(reopens)), filter)
        .fetch_all(pool).await)?;
    Ok((rows, flags, reopens))
}
