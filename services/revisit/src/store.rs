//! Revisit's database: one revisit task per case and round.

use jiesu_kit::{CaseKey, Db, Tx, with_tx};

use crate::{
    Error,
    domain::{RevisitStatus, Verdict, satisfaction_str},
};

/// A revisit as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevisitRow {
    pub revisit_id: String,
    pub case_id: String,
    pub case_no: String,
    pub round: i64,
    pub status: String,
    pub unit_id: String,
    pub satisfaction: String,
    pub solved: bool,
    pub comment: String,
    pub recorded_by: String,
    pub reopened: bool,
    pub created_at: i64,
    pub recorded_at: Option<i64>,
}

impl RevisitRow {
    pub fn round(&self) -> u32 {
        u32::try_from(self.round).unwrap_or_default()
    }

    pub fn is_pending(&self) -> bool {
        self.status == RevisitStatus::Pending.as_str()
    }
}

/// A revisit task to create when a case is resolved.
#[derive(Debug, Clone)]
pub struct NewRevisit<'a> {
    pub revisit_id: &'a str,
    pub case_id: &'a str,
    pub case_no: &'a str,
    pub round: u32,
    pub unit_id: &'a str,
    pub at: i64,
}

const COLUMNS: &str =
    "revisit_id, case_id, case_no, round, status, unit_id, satisfaction, solved, comment, recorded_by, reopened, created_at, recorded_at";

/// Creates a pending revisit; `false` when the case's round already has one (nothing changed).
pub async fn insert_pending(tx: &mut Tx, r: &NewRevisit<'_>) -> Result<bool, Error> {
    let inserted = with_tx!(tx, conn => sqlx::query(
        "INSERT INTO revisits (revisit_id, case_id, case_no, round, status, unit_id, satisfaction, solved, comment,
             recorded_by, reopened, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, '', FALSE, '', '', FALSE, $7)
         ON CONFLICT (case_id, round) DO NOTHING")
        .bind(r.revisit_id).bind(r.case_id).bind(r.case_no).bind(i64::from(r.round))
        .bind(RevisitStatus::Pending.as_str()).bind(r.unit_id).bind(r.at)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

/// The revisit of the case's latest round, inside the transaction (to record it).
pub async fn latest(tx: &mut Tx, key: &CaseKey) -> Result<Option<RevisitRow>, Error> {
    let (column, value) = key.column_and_value();
    let sql = format!("SELECT {COLUMNS} FROM revisits WHERE {column} = $1 ORDER BY round DESC LIMIT 1");
    let row = with_tx!(tx, conn => sqlx::query_as::<_, RevisitRow>(sqlx::AssertSqlSafe(sql))
        .bind(value).fetch_optional(conn).await)?;
    Ok(row)
}

/// Records the citizen's answer on a pending revisit. `Conflict` when it was recorded meanwhile.
pub async fn record(tx: &mut Tx, revisit_id: &str, v: &Verdict, reopened: bool, at: i64) -> Result<(), Error> {
    let rows = with_tx!(tx, conn => sqlx::query(
        "UPDATE revisits SET status = $1, satisfaction = $2, solved = $3, comment = $4, recorded_by = $5,
             reopened = $6, recorded_at = $7
         WHERE revisit_id = $8 AND status = $9")
        .bind(RevisitStatus::Recorded.as_str()).bind(satisfaction_str(v.satisfaction)).bind(v.solved)
        .bind(&v.comment).bind(&v.recorded_by).bind(reopened).bind(at)
        .bind(revisit_id).bind(RevisitStatus::Pending.as_str())
        .execute(conn).await.map(|r| r.rows_affected()))?;
    if rows == 1 { Ok(()) } else { Err(Error::Conflict(revisit_id.to_string())) }
}

/// Every revisit of a case, oldest round first.
pub async fn of_case(db: &Db, key: &CaseKey) -> Result<Vec<RevisitRow>, Error> {
    Ok(db.rows_of_case(&format!("SELECT {COLUMNS} FROM revisits"), key, "ORDER BY round").await?)
}

/// The revisits waiting for a call, the longest waiting first.
pub async fn due(db: &Db, limit: u32) -> Result<Vec<RevisitRow>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM revisits WHERE status = $1 ORDER BY created_at, revisit_id LIMIT $2");
    Ok(jiesu_kit::with_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(RevisitStatus::Pending.as_str()).bind(i64::from(limit)).fetch_all(pool).await)?)
}
