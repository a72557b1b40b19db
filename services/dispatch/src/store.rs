//! Dispatch's database: the cases it owns and their history (办理记录).
//!
//! State changes are conditional updates (`WHERE status = <the state read> AND round = …`): on
//! PostgreSQL two commands racing on one case cannot both win, without `SELECT … FOR UPDATE`,
//! which SQLite lacks (there `BEGIN IMMEDIATE` already serialises writers).

use jiesu_kit::{CaseKey, Db, Tx, with_pool, with_tx};

use crate::{
    Error,
    domain::{CaseState, CaseStatus},
};

/// A case as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaseRow {
    pub case_id: String,
    pub case_no: String,
    pub status: String,
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
}

impl CaseRow {
    /// The case's public identity, for the events about it.
    pub fn ids(&self) -> jiesu_kit::CaseIds<'_> {
        jiesu_kit::CaseIds { case_id: &self.case_id, case_no: &self.case_no }
    }

    /// What the state machine works on. A status this version does not know is a corrupt row.
    pub fn state(&self) -> Result<CaseState, Error> {
        let status = CaseStatus::parse(&self.status)
            .ok_or_else(|| Error::Corrupt(format!("case {} has an unknown status {:?}", self.case_id, self.status)))?;
        Ok(CaseState {
            case_no: self.case_no.clone(),
            status,
            unit_id: self.unit_id.clone(),
            round: u32::try_from(self.round).unwrap_or_default(),
        })
    }

    /// The assisting unit ids.
    pub fn assisting_ids(&self) -> Vec<String> {
        serde_json::from_str(&self.assisting).unwrap_or_default()
    }
}

/// A case being created by its first dispatch.
#[derive(Debug, Clone)]
pub struct NewCase<'a> {
    pub case_id: &'a str,
    pub case_no: &'a str,
    pub unit_id: &'a str,
    pub unit_name: &'a str,
    pub assisting: &'a [String],
    pub sub_item: &'a str,
    pub category: &'a str,
    pub urgency: &'a str,
    pub title: &'a str,
    pub street: &'a str,
    pub community: &'a str,
    pub at: i64,
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
    title, street, community, reply, accepted_by, resolved_by, dispatched_at, accepted_at, resolved_at, closed_at, updated_at";

/// Creates a dispatched case in round 1; `false` when the case already exists (nothing changed).
pub async fn insert_case(tx: &mut Tx, c: &NewCase<'_>) -> Result<bool, Error> {
    let assisting = serde_json::to_string(c.assisting).expect("a list of strings serialises");
    let inserted = with_tx!(tx, conn => sqlx::query(
        "INSERT INTO cases (case_id, case_no, status, unit_id, unit_name, assisting, sub_item, category, urgency, round,
             title, street, community, reply, accepted_by, resolved_by, dispatched_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11, $12, '', '', '', $13, $13)
         ON CONFLICT (case_id) DO NOTHING")
        .bind(c.case_id).bind(c.case_no).bind(CaseStatus::Dispatched.as_str()).bind(c.unit_id).bind(c.unit_name)
        .bind(&assisting).bind(c.sub_item).bind(c.category).bind(c.urgency).bind(c.title).bind(c.street)
        .bind(c.community).bind(c.at)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
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

/// Fails with `Conflict` when a conditional update found the case changed since it was read.
fn changed_once(rows: u64, case_id: &str) -> Result<(), Error> {
    if rows == 1 { Ok(()) } else { Err(Error::Conflict(case_id.to_string())) }
}

/// 签收: `from` is the state the decision was taken on.
pub async fn mark_accepted(tx: &mut Tx, from: &CaseRow, accepted_by: &str, at: i64) -> Result<(), Error> {
    let rows = with_tx!(tx, conn => sqlx::query(
        "UPDATE cases SET status = $1, accepted_by = $2, accepted_at = $3, updated_at = $3
         WHERE case_id = $4 AND status = $5 AND round = $6")
        .bind(CaseStatus::Accepted.as_str()).bind(accepted_by).bind(at)
        .bind(&from.case_id).bind(&from.status).bind(from.round)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    changed_once(rows, &from.case_id)
}

/// 办结 with the reply to the citizen.
pub async fn mark_resolved(tx: &mut Tx, from: &CaseRow, resolved_by: &str, reply: &str, at: i64) -> Result<(), Error> {
    let rows = with_tx!(tx, conn => sqlx::query(
        "UPDATE cases SET status = $1, resolved_by = $2, reply = $3, resolved_at = $4, updated_at = $4
         WHERE case_id = $5 AND status = $6 AND round = $7")
        .bind(CaseStatus::Resolved.as_str()).bind(resolved_by).bind(reply).bind(at)
        .bind(&from.case_id).bind(&from.status).bind(from.round)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    changed_once(rows, &from.case_id)
}

/// 重新办理 into round `round`; the unit keeps the case.
pub async fn mark_reopened(tx: &mut Tx, from: &CaseRow, round: u32, at: i64) -> Result<(), Error> {
    let rows = with_tx!(tx, conn => sqlx::query(
        "UPDATE cases SET status = $1, round = $2, closed_at = NULL, updated_at = $3
         WHERE case_id = $4 AND status = $5 AND round = $6")
        .bind(CaseStatus::Reopened.as_str()).bind(i64::from(round)).bind(at)
        .bind(&from.case_id).bind(&from.status).bind(from.round)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    changed_once(rows, &from.case_id)
}

/// 结案.
pub async fn mark_closed(tx: &mut Tx, from: &CaseRow, at: i64) -> Result<(), Error> {
    let rows = with_tx!(tx, conn => sqlx::query(
        "UPDATE cases SET status = $1, closed_at = $2, updated_at = $2
         WHERE case_id = $3 AND status = $4 AND round = $5")
        .bind(CaseStatus::Closed.as_str()).bind(at)
        .bind(&from.case_id).bind(&from.status).bind(from.round)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    changed_once(rows, &from.case_id)
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

/// A page of cases ordered by case id: of one unit (`""`: all) in one status (`None`: all),
/// after `after_case_id` (`""`: from the start).
pub async fn list(db: &Db, unit_id: &str, status: Option<CaseStatus>, after_case_id: &str, limit: u32) -> Result<Vec<CaseRow>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM cases
         WHERE ($1 = '' OR unit_id = $1) AND ($2 = '' OR status = $2) AND case_id > $3
         ORDER BY case_id LIMIT $4"
    );
    let status = status.map(CaseStatus::as_str).unwrap_or_default();
    let rows = with_pool!(db, pool => sqlx::query_as::<_, CaseRow>(sqlx::AssertSqlSafe(sql))
        .bind(unit_id).bind(status).bind(after_case_id).bind(i64::from(limit))
        .fetch_all(pool).await)?;
    Ok(rows)
}
