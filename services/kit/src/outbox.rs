//! The outbox: events are written in the same transaction as the change that caused them, and a
//! relay publishes them afterwards with `Nats-Msg-Id` = event id, marking each row sent only
//! after JetStream acknowledged it. Never "commit, then publish and hope".

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_nats::HeaderMap;
use prost::Message;
use tokio::sync::Notify;
use tracing::{Instrument, debug, warn};

use crate::{
    Error,
    clock::SharedClock,
    db::{Db, Tx},
    messaging::{Broker, PROTOBUF, header},
    metrics::Metrics,
    time::to_millis,
    with_pool, with_tx,
};

/// An event to publish once the transaction that produced it commits.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub event_id: String,
    /// Full subject, e.g. `jiesu.event.case.received`.
    pub subject: String,
    /// `case.received`.
    pub event_type: String,
    pub case_id: String,
    pub payload: Vec<u8>,
    pub content_type: &'static str,
}

impl Outgoing {
    /// An event on `<root>.event.<event_type>`.
    pub fn event(
        subjects: &crate::Subjects,
        event_type: &str,
        event_id: impl Into<String>,
        case_id: impl Into<String>,
        message: &impl Message,
    ) -> Self {
        Self {
            event_id: event_id.into(),
            subject: subjects.event(event_type),
            event_type: event_type.to_string(),
            case_id: case_id.into(),
            payload: message.encode_to_vec(),
            content_type: PROTOBUF,
        }
    }

    /// A message on any subject (e.g. a rejection on `jiesu.intake.rejected.<channel>`).
    pub fn to_subject(subject: String, event_type: &str, event_id: String, message: &impl Message) -> Self {
        Self {
            event_id,
            subject,
            event_type: event_type.to_string(),
            case_id: String::new(),
            payload: message.encode_to_vec(),
            content_type: PROTOBUF,
        }
    }
}

/// Writes events into the outbox inside `tx`, with the current trace context. An event id
/// already in the outbox is skipped: re-running a handler never publishes twice.
pub async fn write(tx: &mut Tx, events: &[Outgoing], now_ms: i64) -> Result<(), Error> {
    let trace = crate::telemetry::current_context();
    for e in events {
        let mut headers = trace.clone();
        headers.insert(header::CASE_ID.into(), e.case_id.clone());
        headers.insert(header::EVENT_TYPE.into(), e.event_type.clone());
        headers.insert(header::CONTENT_TYPE.into(), e.content_type.into());
        let headers = serde_json::to_string(&headers).expect("string map serialises");
        with_tx!(tx, conn => sqlx::query(
            "INSERT INTO outbox (event_id, subject, event_type, case_id, headers, payload, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING")
            .bind(&e.event_id).bind(&e.subject).bind(&e.event_type).bind(&e.case_id)
            .bind(&headers).bind(&e.payload).bind(now_ms)
            .execute(conn).await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    event_id: String,
    subject: String,
    headers: String,
    payload: Vec<u8>,
}

/// Publishes the outbox. One per service process; on PostgreSQL several processes may run
/// relays side by side: rows are leased with `FOR UPDATE SKIP LOCKED` before publishing.
pub struct Relay {
    pub db: Db,
    pub broker: Broker,
    pub clock: SharedClock,
    pub wake: Arc<Notify>,
    pub metrics: Metrics,
    /// How long the inbox remembers a handled message: as long as the longest a message can stay
    /// in a stream (and so be redelivered or replayed), i.e. the longer stream retention.
    pub inbox_retention: Duration,
}

/// How long a relay keeps a claim on rows it is publishing before another may take them.
const LEASE: Duration = Duration::from_secs(30);
const BATCH: i64 = 256;
/// How long published rows stay in the outbox, for inspection.
const KEEP_PUBLISHED: Duration = Duration::from_secs(7 * 86_400);
/// How often the relay purges published rows.
const PURGE_EVERY: Duration = Duration::from_secs(3_600);

impl Relay {
    /// Runs until `shutdown` resolves; wakes on every commit that wrote events, and polls.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut failures = 0u32;
        let mut last_purge = tokio::time::Instant::now();
        loop {
            if last_purge.elapsed() >= PURGE_EVERY {
                last_purge = tokio::time::Instant::now();
                match self.purge().await {
                    Ok(n) if n > 0 => debug!(rows = n, "outbox: purged published rows"),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "outbox: purging published rows failed"),
                }
            }
            match self.publish_batch().await {
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    warn!(error = %e, "outbox relay: publishing failed; will retry");
                }
            }
            let pause = if failures == 0 {
                Duration::from_millis(500)
            } else {
                // At most a few seconds: once NATS is back the backlog should flow promptly.
                Duration::from_millis(200 * 2u64.pow(failures.min(4)))
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wake.notified() => {},
                _ = tokio::time::sleep(pause) => {},
            }
        }
        // Drain what the last transactions wrote, so a clean stop leaves nothing behind.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.publish_batch()).await;
    }

    /// Deletes outbox rows published more than [`KEEP_PUBLISHED`] ago (the events stream is
    /// the record; the outbox only has to hold what is not yet in it) and inbox entries older
    /// than any message the streams still hold. Returns the rows deleted.
    pub async fn purge(&self) -> Result<u64, Error> {
        let now = to_millis(self.clock.now());
        let published_before = now - KEEP_PUBLISHED.as_millis() as i64;
        let handled_before = now - self.inbox_retention.as_millis() as i64;
        let mut tx = self.db.begin().await?;
        let outbox = with_tx!(&mut tx, conn => sqlx::query("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1")
            .bind(published_before).execute(conn).await.map(|r| r.rows_affected()))?;
        let inbox = with_tx!(&mut tx, conn => sqlx::query("DELETE FROM inbox WHERE handled_at < $1")
            .bind(handled_before).execute(conn).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(outbox + inbox)
    }

    /// Publishes one batch; returns how many rows were published.
    pub async fn publish_batch(&self) -> Result<usize, Error> {
        let rows = self.claim().await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let span = tracing::debug_span!("outbox.publish", count = rows.len());
        async {
            // Send the whole batch, then await the acks: one round trip, not one per event.
            let mut pending = Vec::with_capacity(rows.len());
            for row in &rows {
                let map: BTreeMap<String, String> = serde_json::from_str(&row.headers).unwrap_or_default();
                let mut headers = HeaderMap::new();
                for (k, v) in &map {
                    headers.insert(k.as_str(), v.as_str());
                }
                headers.insert(header::MSG_ID, row.event_id.as_str());
                let ack = self
                    .broker
                    .jetstream
                    .publish_with_headers(row.subject.clone(), headers, row.payload.clone().into())
                    .await;
                pending.push((row, ack));
            }
            let mut sent = Vec::new();
            let mut first_error = None;
            for (row, ack) in pending {
                let result = match ack {
                    Ok(fut) => fut.await.map(|_| ()).map_err(Error::nats),
                    Err(e) => Err(Error::nats(e)),
                };
                match result {
                    Ok(()) => sent.push(row.seq),
                    Err(e) => {
                        self.note_failure(row.seq, &e).await;
                        first_error.get_or_insert(e);
                    }
                }
            }
            self.mark_sent(&sent).await?;
            self.metrics.outbox_published.inc_by(sent.len() as u64);
            debug!(published = sent.len(), "outbox batch published");
            match first_error {
                Some(e) if sent.is_empty() => Err(e),
                _ => Ok(sent.len()),
            }
        }
        .instrument(span)
        .await
    }

    async fn claim(&self) -> Result<Vec<Row>, Error> {
        let now = to_millis(self.clock.now());
        let until = now + LEASE.as_millis() as i64;
        let sql = format!(
            "UPDATE outbox SET claimed_until = $1
             WHERE seq IN (SELECT seq FROM outbox
                           WHERE sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < $2)
                           ORDER BY seq LIMIT $3{})
             RETURNING seq, event_id, subject, headers, payload",
            self.db.backend().lock_clause(true)
        );
        // The writer, not the read pool: a claim is a write.
        let rows = match &self.db {
            Db::Sqlite { writer, .. } => {
                sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql)).bind(until).bind(now).bind(BATCH).fetch_all(writer).await?
            }
            Db::Postgres(pool) => {
                sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql)).bind(until).bind(now).bind(BATCH).fetch_all(pool).await?
            }
        };
        let mut rows = rows;
        rows.sort_by_key(|r| r.seq);
        Ok(rows)
    }

    async fn mark_sent(&self, seqs: &[i64]) -> Result<(), Error> {
        if seqs.is_empty() {
            return Ok(());
        }
        let now = to_millis(self.clock.now());
        let mut tx = self.db.begin().await?;
        for seq in seqs {
            with_tx!(&mut tx, conn => sqlx::query(
                "UPDATE outbox SET sent_at = $1, claimed_until = NULL, attempts = attempts + 1 WHERE seq = $2")
                .bind(now).bind(*seq).execute(conn).await.map(|r| r.rows_affected()))?;
        }
        tx.commit().await
    }

    async fn note_failure(&self, seq: i64, e: &Error) {
        let result = async {
            let mut tx = self.db.begin().await?;
            with_tx!(&mut tx, conn => sqlx::query(
                "UPDATE outbox SET claimed_until = NULL, attempts = attempts + 1, last_error = $1 WHERE seq = $2")
                .bind(e.to_string()).bind(seq).execute(conn).await.map(|r| r.rows_affected()))?;
            tx.commit().await
        }
        .await;
        if let Err(err) = result {
            warn!(error = %err, "cannot record an outbox failure");
        }
    }
}

/// Rows not yet published (for `/readyz` and metrics).
pub async fn backlog(db: &Db) -> Result<i64, Error> {
    let n: i64 = with_pool!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
        .fetch_one(pool).await)?;
    Ok(n)
}
