//! Notification's database: the deliveries (通知投递记录) and their retry schedule.

use jiesu_kit::{CaseKey, Db, Tx, with_tx};

use crate::{
    Error,
    domain::{RecipientKind, Sink, Status},
};

/// A delivery as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub delivery_id: String,
    pub case_id: String,
    pub case_no: String,
    pub event_id: String,
    pub recipient_kind: String,
    /// A unit id; for a citizen the case id until the masked phone is known.
    pub recipient: String,
    pub template: String,
    pub text: String,
    pub sink: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: String,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    /// JSON map of the W3C trace headers of the event that caused it.
    pub trace_context: String,
}

impl DeliveryRow {
    pub fn kind(&self) -> Result<RecipientKind, Error> {
        RecipientKind::parse(&self.recipient_kind)
            .ok_or_else(|| Error::Corrupt(format!("delivery {} has recipient_kind {:?}", self.delivery_id, self.recipient_kind)))
    }

    pub fn sink(&self) -> Result<Sink, Error> {
        Sink::parse(&self.sink).ok_or_else(|| Error::Corrupt(format!("delivery {} has sink {:?}", self.delivery_id, self.sink)))
    }

    pub fn status(&self) -> Result<Status, Error> {
        Status::parse(&self.status).ok_or_else(|| Error::Corrupt(format!("delivery {} has status {:?}", self.delivery_id, self.status)))
    }
}

const COLUMNS: &str = "delivery_id, case_id, case_no, event_id, recipient_kind, recipient, template, text, sink, \
    status, attempts, next_attempt_at, last_error, created_at, sent_at, trace_context";

/// A delivery to record, pending, due at once.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub delivery_id: String,
    pub case_id: String,
    pub case_no: String,
    pub event_id: String,
    pub recipient_kind: RecipientKind,
    pub recipient: String,
    pub template: &'static str,
    pub text: String,
    pub sink: Sink,
    pub created_at: i64,
    pub trace_context: String,
}

/// Records a pending delivery; `false` when this event already has one for this recipient kind
/// and sink (the event was handled before).
pub async fn insert_delivery(tx: &mut Tx, d: &NewDelivery) -> Result<bool, Error> {
    let n = with_tx!(tx, conn => sqlx::query(
        "INSERT INTO deliveries (delivery_id, case_id, case_no, event_id, recipient_kind, recipient, template, text,
             sink, status, attempts, next_attempt_at, last_error, created_at, sent_at, trace_context)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, '', $10, NULL, $11)
         ON CONFLICT (event_id, recipient_kind, sink) DO NOTHING")
        .bind(&d.delivery_id).bind(&d.case_id).bind(&d.case_no).bind(&d.event_id)
        .bind(d.recipient_kind.as_str()).bind(&d.recipient).bind(d.template).bind(&d.text)
        .bind(d.sink.as_str()).bind(d.created_at).bind(&d.trace_context)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Claims up to `limit` due pending deliveries by moving their next attempt to `lease_until`:
/// another worker will not take them meanwhile, and a worker that dies mid-delivery leaves them
/// to be tried again once the lease has passed. PostgreSQL workers skip rows another is claiming.
pub async fn claim_due(db: &Db, now: i64, lease_until: i64, limit: i64) -> Result<Vec<DeliveryRow>, Error> {
    let lock = db.backend().lock_clause(true);
    let sql = format!(
        "UPDATE deliveries SET next_attempt_at = $1
         WHERE delivery_id IN (SELECT delivery_id FROM deliveries
                               WHERE status = 'pending' AND next_attempt_at <= $2
                               ORDER BY next_attempt_at, delivery_id LIMIT $3{lock})
         RETURNING {COLUMNS}"
    );
    let mut tx = db.begin().await?;
    let mut rows = with_tx!(&mut tx, conn => sqlx::query_as::<_, DeliveryRow>(sqlx::AssertSqlSafe(sql))
        .bind(lease_until).bind(now).bind(limit).fetch_all(conn).await)?;
    tx.commit().await?;
    rows.sort_by(|a, b| (a.created_at, &a.delivery_id).cmp(&(b.created_at, &b.delivery_id)));
    Ok(rows)
}

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub status: Status,
    /// Attempts made so far, this one included.
    pub attempts: i64,
    /// The recipient as it should now be stored (a citizen's masked phone once known).
    pub recipient: String,
    pub next_attempt_at: i64,
    pub last_error: String,
    pub sent_at: Option<i64>,
}

/// Records an attempt of a delivery that is still pending (a delivery already settled is left
/// as it is).
pub async fn record_attempt(db: &Db, delivery_id: &str, o: &AttemptOutcome) -> Result<(), Error> {
    let mut tx = db.begin().await?;
    with_tx!(&mut tx, conn => sqlx::query(
        "UPDATE deliveries SET status = $1, attempts = $2, recipient = $3, next_attempt_at = $4, last_error = $5,
             sent_at = $6
         WHERE delivery_id = $7 AND status = 'pending'")
        .bind(o.status.as_str()).bind(o.attempts).bind(&o.recipient).bind(o.next_attempt_at).bind(&o.last_error)
        .bind(o.sent_at).bind(delivery_id)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(())
}

/// The deliveries of a case, oldest first.
pub async fn for_case(db: &Db, key: &CaseKey) -> Result<Vec<DeliveryRow>, Error> {
    Ok(db.rows_of_case(&format!("SELECT {COLUMNS} FROM deliveries"), key, "ORDER BY created_at, delivery_id").await?)
}
