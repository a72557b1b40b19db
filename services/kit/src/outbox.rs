//! The outbox: events are written in the same transaction as the change that caused them, and a
//! relay publishes them afterwards with `Nats-Msg-Id` = event id, marking each row sent only
//! after JetStream acknowledged it. Never "commit, then publish and hope".

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_nats::HeaderMap;
use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::{
    Error,
    clock::SharedClock,
    db::{Db, Tx},
    health::Readiness,
    messaging::{Broker, header},
    metrics::Metrics,
    time::to_millis,
    with_pool, with_tx,
};

/// An event (or an answer to a producer) to publish once the transaction that produced it
/// commits. Built by [`Work`](crate::work::Work), never by hand.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub event_id: String,
    /// Full subject, e.g. `jiesu.event.case.received`.
    pub subject: String,
    /// `case.received`.
    pub event_type: &'static str,
    pub case_id: String,
    pub payload: Vec<u8>,
    pub content_type: &'static str,
    /// Headers beside the standard ones (e.g. `Jiesu-Channel-Ref` on an answer).
    pub extra_headers: Vec<(&'static str, String)>,
}

/// Writes events into the outbox inside `tx`, with the current trace context. An event id
/// already in the outbox is skipped: re-running a handler never publishes twice.
pub async fn write(tx: &mut Tx, events: &[Outgoing], now_ms: i64) -> Result<(), Error> {
    let trace = crate::telemetry::current_context();
    for e in events {
        let mut headers = trace.clone();
        if !e.case_id.is_empty() {
            headers.insert(header::CASE_ID.into(), e.case_id.clone());
        }
        headers.insert(header::EVENT_TYPE.into(), e.event_type.into());
        for (k, v) in &e.extra_headers {
            headers.insert((*k).into(), v.clone());
        }
        headers.insert(header::CONTENT_TYPE.into(), e.content_type.into());
        let headers = serde_json::to_string(&headers).expect("string map serialises");
        with_tx!(tx, conn => sqlx::query(
            "INSERT INTO outbox (event_id, subject, event_type, case_id, headers, payload, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING")
            .bind(&e.event_id).bind(&e.subject).bind(e.event_type).bind(&e.case_id)
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
    pub readiness: Readiness,
}

/// How long a relay keeps a claim on rows it is publishing before another may take them.
const LEASE: Duration = Duration::from_secs(30);
const BATCH: i64 = 256;
/// How long published rows stay in the outbox, for inspection.
const KEEP_PUBLISHED: Duration = Duration::from_secs(7 * 86_400);
/// How often the relay purges published rows.
const PURGE_EVERY: Duration = Duration::from_secs(3_600);
/// The longest pause between two attempts while publishing fails. The streams' duplicate
/// window (`nats.duplicate_window`, 10 minutes by default) must be longer than this plus the
/// publish timeout, so that a re-sent event is still recognised by JetStream.
pub const MAX_RETRY_PAUSE: Duration = Duration::from_millis(3_200);
/// Consecutive failed attempts after which the relay reports itself not ready.
const NOT_READY_AFTER: u32 = 3;

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
                Ok(n) if n as i64 == BATCH => {
                    failures = 0;
                    self.readiness.ok("outbox relay");
                    continue;
                }
                Ok(_) => {
                    failures = 0;
                    self.readiness.ok("outbox relay");
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    warn!(error = %e, "outbox relay: publishing failed; will retry");
                    if failures >= NOT_READY_AFTER {
                        self.readiness.failing("outbox relay", &format!("publishing fails: {e}"));
                    }
                }
            }
            let pause = if failures == 0 {
                Duration::from_millis(500)
            } else {
                // At most a few seconds: once NATS is back the backlog should flow promptly.
                Duration::from_millis(200 * 2u64.pow(failures.min(4))).min(MAX_RETRY_PAUSE)
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
    /// the record; the outbox only has to hold what is not yet in it). Returns the rows deleted.
    pub async fn purge(&self) -> Result<u64, Error> {
        let published_before = to_millis(self.clock.now()) - KEEP_PUBLISHED.as_millis() as i64;
        let mut tx = self.db.begin().await?;
        let n = with_tx!(&mut tx, conn => sqlx::query("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1")
            .bind(published_before).execute(conn).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(n)
    }

    /// Publishes one batch; returns how many rows were published.
    pub async fn publish_batch(&self) -> Result<usize, Error> {
        let rows = self.claim().await?;
        if rows.is_empty() {
            return Ok(0);
        }
        // Send the whole batch, then await the acks: one round trip, not one per event.
        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut map: BTreeMap<String, String> = serde_json::from_str(&row.headers).unwrap_or_default();
            // The consumer's span is the child of this PRODUCER span.
            let producer = crate::telemetry::producer_span(&row.subject, &row.event_id, &map);
            producer.in_scope(|| map.extend(crate::telemetry::current_context()));
            let mut headers = HeaderMap::new();
            for (k, v) in &map {
                headers.insert(k.as_str(), v.as_str());
            }
            headers.insert(header::MSG_ID, row.event_id.as_str());
            let ack = self.broker.jetstream.publish_with_headers(row.subject.clone(), headers, row.payload.clone().into()).await;
            pending.push((row, ack, producer));
        }
        let mut sent = Vec::new();
        let mut first_error = None;
        for (row, ack, producer) in pending {
            let result = match ack {
                Ok(fut) => fut.await.map(|_| ()).map_err(Error::nats),
                Err(e) => Err(Error::nats(e)),
            };
            match result {
                Ok(()) => sent.push(row.seq),
                Err(e) => {
                    producer.in_scope(|| crate::telemetry::record_error(&e));
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
