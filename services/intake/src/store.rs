//! Intake's database: submissions and the daily case-number counters.

use jiesu_kit::{CaseKey, Db, Tx, with_pool, with_tx};
use jiesu_proto::v1::{Attachment, Submission};

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
    /// Sealed like the contact.
    pub query_code: String,
    pub proactive: bool,
    pub entered_by: String,
    pub session: String,
}

impl SubmissionRow {
    /// The attachments as submitted: references, never bytes.
    pub fn attachments(&self) -> Vec<Attachment> {
        let stored: Vec<StoredAttachment> = serde_json::from_str(&self.attachments).unwrap_or_default();
        stored
            .into_iter()
            .map(|a| Attachment { kind: a.kind, url: a.url, sha256: a.sha256, media_type: a.media_type, size: a.size })
            .collect()
    }
}

/// An attachment reference as the `attachments` column keeps it (JSON).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredAttachment {
    kind: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    size: u64,
}

const COLUMNS: &str = "case_id, case_no, channel, channel_ref, title, description, street, community, grid, \
    address, latitude, longitude, attachments, category_hint, citizen_name, citizen_phone, anonymous, \
    submitted_at, received_at, query_code, proactive, entered_by, session";

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
    /// The citizen's query code, sealed too: it opens their status page.
    pub query_code: String,
}

/// An accepted submission (already validated) as it is recorded, with its contact sealed.
pub struct NewCase<'a> {
    pub case_id: &'a str,
    pub case_no: &'a str,
    pub submission: &'a Submission,
    pub contact: &'a SealedContact,
    pub proactive: bool,
    pub entered_by: &'a str,
    pub submitted_at: i64,
    pub received_at: i64,
}

/// Records an accepted submission.
pub async fn record_submission(tx: &mut Tx, new: &NewCase<'_>) -> Result<(), Error> {
    let NewCase { case_id, case_no, submission: s, contact, proactive, entered_by, submitted_at, received_at } = *new;
    let loc = s.location.clone().unwrap_or_default();
    let anonymous = s.citizen.as_ref().is_some_and(|c| c.anonymous);
    let attachments: Vec<StoredAttachment> = s
        .attachments
        .iter()
        .map(|a| StoredAttachment {
            kind: a.kind.clone(),
            url: a.url.clone(),
            sha256: a.sha256.clone(),
            media_type: a.media_type.clone(),
            size: a.size,
        })
        .collect();
    let attachments = serde_json::to_string(&attachments).expect("json");
    let sql = format!(
        "INSERT INTO submissions ({COLUMNS}, citizen_phone_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)"
    );
    with_tx!(tx, conn => sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(case_id).bind(case_no).bind(&s.channel).bind(&s.channel_ref).bind(&s.title).bind(&s.description)
        .bind(&loc.street).bind(&loc.community).bind(&loc.grid).bind(&loc.address).bind(loc.latitude).bind(loc.longitude)
        .bind(&attachments).bind(&s.category_hint).bind(&contact.name).bind(&contact.phone).bind(anonymous)
        .bind(submitted_at).bind(received_at).bind(&contact.query_code).bind(proactive).bind(entered_by).bind(&s.session).bind(&contact.phone_hash)
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

/// A file uploaded for a submission, as recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UploadRow {
    pub sha256: String,
    pub stripped_sha256: String,
    pub media_type: String,
    pub kind: String,
    pub size: i64,
    pub channel: String,
    pub uploaded_at: i64,
}

/// Records an upload; the same content uploaded again keeps its first record.
pub async fn record_upload(db: &Db, u: &UploadRow) -> Result<(), Error> {
    let mut tx = db.begin().await?;
    with_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO uploads (sha256, stripped_sha256, media_type, kind, size, channel, uploaded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sha256) DO NOTHING")
        .bind(&u.sha256).bind(&u.stripped_sha256).bind(&u.media_type).bind(&u.kind).bind(u.size).bind(&u.channel).bind(u.uploaded_at)
        .execute(conn).await.map(|_| ()))?;
    tx.commit().await?;
    Ok(())
}

/// The uploads with these hashes, inside the transaction.
pub async fn uploads(tx: &mut Tx, hashes: &[String]) -> Result<Vec<UploadRow>, Error> {
    let mut rows = Vec::with_capacity(hashes.len());
    for h in hashes {
        let row = with_tx!(tx, conn => sqlx::query_as::<_, UploadRow>(
            "SELECT sha256, stripped_sha256, media_type, kind, size, channel, uploaded_at FROM uploads WHERE sha256 = $1")
            .bind(h).fetch_optional(conn).await)?;
        rows.extend(row);
    }
    Ok(rows)
}

/// One upload by its hash.
pub async fn upload(db: &Db, sha256: &str) -> Result<Option<UploadRow>, Error> {
    let row = with_pool!(db, pool => sqlx::query_as::<_, UploadRow>(
        "SELECT sha256, stripped_sha256, media_type, kind, size, channel, uploaded_at FROM uploads WHERE sha256 = $1")
        .bind(sha256).fetch_optional(pool).await)?;
    Ok(row)
}

/// One step of a case's public progress.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PublicStepRow {
    pub event_id: String,
    pub case_id: String,
    pub at: i64,
    pub step: String,
    pub text: String,
    pub unit_name: String,
}

/// Records a step of public progress, once per event.
pub async fn record_step(tx: &mut Tx, r: &PublicStepRow) -> Result<(), Error> {
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO public_steps (event_id, case_id, at, step, text, unit_name) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (event_id) DO NOTHING")
        .bind(&r.event_id).bind(&r.case_id).bind(r.at).bind(&r.step).bind(&r.text).bind(&r.unit_name)
        .execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// A case's public steps, oldest first.
pub async fn steps(db: &Db, case_id: &str) -> Result<Vec<PublicStepRow>, Error> {
    let rows = with_pool!(db, pool => sqlx::query_as::<_, PublicStepRow>(
        "SELECT event_id, case_id, at, step, text, unit_name FROM public_steps WHERE case_id = $1 ORDER BY at, event_id")
        .bind(case_id).fetch_all(pool).await)?;
    Ok(rows)
}

/// Records a wrong query code for a case number and says how many there were since `since`.
pub async fn record_miss(db: &Db, case_no: &str, at: i64, since: i64) -> Result<i64, Error> {
    let mut tx = db.begin().await?;
    // Misses older than the window no longer count: keep the table to the last hour's.
    with_tx!(&mut tx, conn => sqlx::query("DELETE FROM status_misses WHERE case_no = $1 AND at < $2")
        .bind(case_no).bind(since).execute(conn).await.map(|_| ()))?;
    with_tx!(&mut tx, conn => sqlx::query("INSERT INTO status_misses (case_no, at) VALUES ($1, $2)")
        .bind(case_no).bind(at).execute(conn).await.map(|_| ()))?;
    let n = with_tx!(&mut tx, conn => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM status_misses WHERE case_no = $1 AND at >= $2")
        .bind(case_no).bind(since).fetch_one(conn).await)?;
    tx.commit().await?;
    Ok(n)
}

/// How many wrong query codes a case number had since `since`.
pub async fn misses(db: &Db, case_no: &str, since: i64) -> Result<i64, Error> {
    let n = with_pool!(db, pool => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM status_misses WHERE case_no = $1 AND at >= $2")
        .bind(case_no).bind(since).fetch_one(pool).await)?;
    Ok(n)
}

/// Which requests of which channels [`requests_of_channels`] lists.
pub struct ChannelQuery<'a> {
    pub channels: &'a [String],
    pub case_nos: &'a [String],
    pub channel_refs: &'a [String],
    pub received_from: Option<i64>,
    pub received_until: Option<i64>,
    pub limit: u32,
}

/// The submissions of some channels, newest first.
pub async fn requests_of_channels(db: &Db, q: &ChannelQuery<'_>) -> Result<Vec<SubmissionRow>, Error> {
    let mut binds: Vec<String> = Vec::new();
    let list = |values: &[String], binds: &mut Vec<String>| {
        let start = binds.len();
        binds.extend(values.iter().cloned());
        (start + 1..=binds.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
    };
    let mut sql = format!("SELECT {COLUMNS} FROM submissions WHERE channel IN ({})", list(q.channels, &mut binds));
    if !q.case_nos.is_empty() {
        sql.push_str(&format!(" AND case_no IN ({})", list(q.case_nos, &mut binds)));
    }
    if !q.channel_refs.is_empty() {
        sql.push_str(&format!(" AND channel_ref IN ({})", list(q.channel_refs, &mut binds)));
    }
    let n = binds.len();
    sql.push_str(&format!(
        " AND received_at >= ${} AND received_at <= ${} ORDER BY received_at DESC, case_no DESC LIMIT ${}",
        n + 1,
        n + 2,
        n + 3
    ));
    let (from, until) = (q.received_from.unwrap_or(i64::MIN), q.received_until.unwrap_or(i64::MAX));
    let rows = with_pool!(db, pool => {
        let mut query = sqlx::query_as::<_, SubmissionRow>(sqlx::AssertSqlSafe(sql.clone()));
        for b in &binds {
            query = query.bind(b);
        }
        query.bind(from).bind(until).bind(i64::from(q.limit)).fetch_all(pool).await
    })?;
    Ok(rows)
}

/// Requests received in [`from`, `to`) per channel: (channel, received, proactive).
pub async fn count_received(db: &Db, from: i64, to: i64) -> Result<Vec<(String, i64, i64)>, Error> {
    Ok(jiesu_kit::with_pool!(db, pool => sqlx::query_as(
        "SELECT channel, CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(CASE WHEN proactive THEN 1 ELSE 0 END), 0) AS BIGINT)
         FROM submissions WHERE received_at >= $1 AND received_at < $2 GROUP BY channel ORDER BY channel")
        .bind(from).bind(to).fetch_all(pool).await)?)
}
