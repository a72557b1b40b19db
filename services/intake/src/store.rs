//! Intake's database: submissions and the daily case-number counters.

use jiesu_kit::{CaseKey, Db, Tx, with_pool, with_tx};
use jiesu_proto::v1::Submission;

use crate::Error;

/// A submission as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubmissionRow {
    pub case_id: String,
    pub case_no: String,
    pub channel: String,
    pub channel_ref: String,
    pub title: String,
    pub description: String,
    pub street: String,
    pub community: String,
    pub grid: String,
    pub address: String,
    pub latitude: f64,
    pub longitude: f64,
    pub attachments: String,
    pub category_hint: String,
    pub citizen_name: String,
    pub citizen_phone: String,
    pub anonymous: bool,
    pub submitted_at: i64,
    pub received_at: i64,
}

const COLUMNS: &str = "case_id, case_no, channel, channel_ref, title, description, street, community, grid, \
    address, latitude, longitude, attachments, category_hint, citizen_name, citizen_phone, anonymous, \
    submitted_at, received_at";

/// Finds the case already registered for (channel, channel_ref), inside the transaction.
pub async fn find_by_channel_ref(tx: &mut Tx, channel: &str, channel_ref: &str) -> Result<Option<SubmissionRow>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM submissions WHERE channel = $1 AND channel_ref = $2");
    let row = with_tx!(tx, conn => sqlx::query_as::<_, SubmissionRow>(sqlx::AssertSqlSafe(sql))
        .bind(channel).bind(channel_ref).fetch_optional(conn).await)?;
    Ok(row)
}

/// Takes the next case-number sequence of a local day.
pub async fn next_sequence(tx: &mut Tx, day: &str) -> Result<i64, Error> {
    let n: i64 = with_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO case_no_counters (day, last) VALUES ($1, 1)
         ON CONFLICT (day) DO UPDATE SET last = case_no_counters.last + 1
         RETURNING last")
        .bind(day).fetch_one(conn).await)?;
    Ok(n)
}

/// The citizen's contact as it is stored: sealed name and phone, and the phone's keyed hash.
pub struct SealedContact {
    pub name: String,
    pub phone: String,
    pub phone_hash: String,
}

/// Records an accepted submission (already validated), with its contact sealed.
pub async fn record_submission(
    tx: &mut Tx,
    case_id: &str,
    case_no: &str,
    s: &Submission,
    contact: &SealedContact,
    submitted_at: i64,
    received_at: i64,
) -> Result<(), Error> {
    let loc = s.location.clone().unwrap_or_default();
    let anonymous = s.citizen.as_ref().is_some_and(|c| c.anonymous);
    let attachments =
        serde_json::to_string(&s.attachments.iter().map(|a| serde_json::json!({"kind": a.kind, "url": a.url})).collect::<Vec<_>>())
            .expect("json");
    let sql = format!(
        "INSERT INTO submissions ({COLUMNS}, citizen_phone_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
    );
    with_tx!(tx, conn => sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(case_id).bind(case_no).bind(&s.channel).bind(&s.channel_ref).bind(&s.title).bind(&s.description)
        .bind(&loc.street).bind(&loc.community).bind(&loc.grid).bind(&loc.address).bind(loc.latitude).bind(loc.longitude)
        .bind(&attachments).bind(&s.category_hint).bind(&contact.name).bind(&contact.phone).bind(anonymous)
        .bind(submitted_at).bind(received_at).bind(&contact.phone_hash)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Looks a submission up by case id or case number.
pub async fn get(db: &Db, key: &CaseKey) -> Result<Option<SubmissionRow>, Error> {
    Ok(db.rows_of_case(&format!("SELECT {COLUMNS} FROM submissions"), key, "").await?.pop())
}

/// Records the unit that owns a case (the latest dispatch wins).
pub async fn set_owner(tx: &mut Tx, case_id: &str, unit_id: &str, at: i64) -> Result<(), Error> {
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO case_owners (case_id, unit_id, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (case_id) DO UPDATE SET unit_id = excluded.unit_id, updated_at = excluded.updated_at")
        .bind(case_id).bind(unit_id).bind(at)
        .execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// The unit that owns a case, once dispatched.
pub async fn owner(db: &Db, case_id: &str) -> Result<Option<String>, Error> {
    let owner = with_pool!(db, pool => sqlx::query_scalar::<_, String>("SELECT unit_id FROM case_owners WHERE case_id = $1")
        .bind(case_id).fetch_optional(pool).await)?;
    Ok(owner)
}

/// One request for a citizen's contact, as recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactReadRow {
    pub read_id: String,
    pub at: i64,
    pub case_id: String,
    pub reader: String,
    pub reader_name: String,
    /// Comma-separated role keys.
    pub roles: String,
    pub unit_id: String,
    pub purpose: String,
    pub allowed: bool,
    pub refusal: String,
}

/// Records a contact read, allowed or refused, in its own transaction: the record stands even
/// when the read is refused.
pub async fn record_read(db: &Db, r: &ContactReadRow) -> Result<(), Error> {
    let mut tx = db.begin().await?;
    with_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO contact_reads (read_id, at, case_id, reader, reader_name, roles, unit_id, purpose, allowed, refusal)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(&r.read_id).bind(r.at).bind(&r.case_id).bind(&r.reader).bind(&r.reader_name).bind(&r.roles)
        .bind(&r.unit_id).bind(&r.purpose).bind(r.allowed).bind(&r.refusal)
        .execute(conn).await.map(|_| ()))?;
    tx.commit().await?;
    Ok(())
}

/// The latest contact reads, of one case or of all, newest first.
pub async fn contact_reads(db: &Db, case_id: Option<&str>, limit: u32) -> Result<Vec<ContactReadRow>, Error> {
    const COLUMNS: &str = "read_id, at, case_id, reader, reader_name, roles, unit_id, purpose, allowed, refusal";
    let rows = match case_id {
        Some(case_id) => with_pool!(db, pool => sqlx::query_as::<_, ContactReadRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM contact_reads WHERE case_id = $1 ORDER BY at DESC, read_id DESC LIMIT $2")))
            .bind(case_id).bind(i64::from(limit)).fetch_all(pool).await)?,
        None => with_pool!(db, pool => sqlx::query_as::<_, ContactReadRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM contact_reads ORDER BY at DESC, read_id DESC LIMIT $1")))
            .bind(i64::from(limit)).fetch_all(pool).await)?,
    };
    Ok(rows)
}
