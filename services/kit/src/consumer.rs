//! Durable pull consumers with exactly-once effects.
//!
//! Each message is handled inside one database transaction that (1) records the message id in
//! the inbox — already there means handled before: ack and skip — (2) lets the [`Handler`] apply
//! its change and (3) writes the events it emits into the outbox. Only after the commit is the
//! message acknowledged. A message that keeps failing lands in the `dead_letters` table with its
//! error, is acknowledged so it never blocks the ones behind it, and can be replayed.

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use async_nats::jetstream::{self, AckKind, consumer::pull};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, warn};

use crate::{
    Error,
    clock::SharedClock,
    config::ConsumerSettings,
    db::{Db, Tx},
    messaging::{Broker, header},
    metrics::Metrics,
    outbox::{self, Outgoing},
    time::to_millis,
    with_pool, with_tx,
};

/// A message as a handler sees it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub subject: String,
    /// `case.received` for events; the channel for submissions.
    pub kind: String,
    /// The de-duplication key: `Nats-Msg-Id`, or `<stream>:<sequence>` when the producer set none.
    pub message_id: String,
    pub headers: BTreeMap<String, String>,
    pub payload: Bytes,
    /// 1 on first delivery.
    pub delivered: i64,
    pub stream_sequence: u64,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Decodes a protobuf payload; a payload that does not decode can never succeed: rejected.
    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, HandlerError> {
        M::decode(self.payload.as_ref())
            .map_err(|e| HandlerError::Reject(format!("payload of {} is not a valid protobuf message: {e}", self.kind)))
    }
}

/// Why a handler could not finish.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth trying again later (database busy, a dependency down).
    #[error("{0}")]
    Retry(String),
    /// Will never succeed (undecodable, contradicts the data): dead-letter it at once.
    #[error("{0}")]
    Reject(String),
}

impl From<Error> for HandlerError {
    fn from(e: Error) -> Self {
        match e {
            Error::Decode(m) => HandlerError::Reject(m),
            other => HandlerError::Retry(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::Retry(format!("database: {e}"))
    }
}

/// A service's reaction to messages. Runs inside the transaction; must do no network I/O
/// (events it returns are published by the outbox relay after the commit).
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, tx: &mut Tx, msg: &Incoming) -> impl Future<Output = Result<Vec<Outgoing>, HandlerError>> + Send;

    /// Called after a message's transaction committed (e.g. to wake a worker).
    fn committed(&self, _msg: &Incoming) {}
}

/// Messages handled in one transaction at most.
const BATCH: usize = 64;

async fn savepoint(tx: &mut Tx, sql: &'static str) -> Result<(), HandlerError> {
    with_tx!(tx, conn => sqlx::query(sql).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// What to consume.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name, e.g. `dispatch`.
    pub durable: String,
    pub stream: String,
    pub filter_subjects: Vec<String>,
    pub settings: ConsumerSettings,
}

/// The outcome of handling one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Handled,
    Duplicate,
}

/// Runs one consumer.
pub struct Consumer<H> {
    pub spec: ConsumerSpec,
    pub broker: Broker,
    pub db: Db,
    pub clock: SharedClock,
    pub handler: Arc<H>,
    pub relay_wake: Arc<Notify>,
    pub metrics: Metrics,
}

impl<H: Handler> Consumer<H> {
    /// Creates (or updates) the durable consumer, then handles messages until cancelled.
    pub async fn run(&self, cancel: CancellationToken) -> Result<(), Error> {
        let stream = self
            .broker
            .jetstream
            .get_stream(&self.spec.stream)
            .await
            .map_err(|e| Error::Nats(format!("stream {}: {e}", self.spec.stream)))?;
        let s = &self.spec.settings;
        let config = pull::Config {
            durable_name: Some(self.spec.durable.clone()),
            description: Some(format!("jiesu {}", self.spec.durable)),
            filter_subjects: self.spec.filter_subjects.clone(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: s.ack_wait,
            max_deliver: s.max_deliver,
            max_ack_pending: s.max_ack_pending,
            // No server-side `backoff`: it would replace `ack_wait` by its first step and redeliver
            // a message still being handled. Failures are NAK'd with their delay instead.
            ..Default::default()
        };
        let consumer = stream
            .create_consumer(config)
            .await
            .map_err(|e| Error::Nats(format!("consumer {} on {}: {e}", self.spec.durable, self.spec.stream)))?;
        info!(consumer = %self.spec.durable, stream = %self.spec.stream, "consuming");
        loop {
            let mut messages = match consumer.messages().await {
                Ok(m) => m,
                Err(e) => {
                    warn!(error = %e, "cannot pull messages; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            loop {
                let next = tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(msg)) => {
                        // Whatever else has already arrived shares the transaction: one commit
                        // (one fsync) for many messages under load, no waiting when idle.
                        let mut batch = vec![msg];
                        while batch.len() < BATCH {
                            match messages.next().now_or_never() {
                                Some(Some(Ok(m))) => batch.push(m),
                                _ => break,
                            }
                        }
                        self.on_batch(batch).await;
                    }
                    Some(Err(e)) => {
                        warn!(error = %e, "pull consumer error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    None => break,
                }
            }
        }
    }

    async fn on_batch(&self, batch: Vec<jetstream::Message>) {
        let incoming: Vec<Incoming> = batch.iter().map(|m| self.incoming(m)).collect();
        let results = self.process_batch(&incoming, None).await;
        for ((msg, incoming), result) in batch.iter().zip(&incoming).zip(results) {
            self.settle(msg, incoming, result).await;
        }
    }

    fn incoming(&self, msg: &jetstream::Message) -> Incoming {
        let (delivered, stream_sequence) = match msg.info() {
            Ok(i) => (i.delivered, i.stream_sequence),
            Err(_) => (1, 0),
        };
        let headers: BTreeMap<String, String> = msg
            .headers
            .as_ref()
            .map(|h| h.iter().filter_map(|(k, v)| v.first().map(|v| (k.to_string(), v.to_string()))).collect())
            .unwrap_or_default();
        let subject = msg.subject.to_string();
        let kind = self.broker.subjects.kind_of(&subject).to_string();
        let message_id = headers
            .get(header::MSG_ID)
            .cloned()
            .unwrap_or_else(|| format!("{}:{stream_sequence}", self.spec.stream));
        Incoming { subject, kind, message_id, headers, payload: msg.payload.clone(), delivered, stream_sequence }
    }

    /// Acks what was committed; NAKs with back-off, or dead-letters, what failed.
    async fn settle(&self, msg: &jetstream::Message, incoming: &Incoming, result: Result<Outcome, HandlerError>) {
        let delivered = incoming.delivered;
        match result {
            Ok(_) => {
                if let Err(e) = msg.ack().await {
                    // The effect is committed; a redelivery will be recognised by the inbox.
                    warn!(error = %e, "ack failed");
                }
            }
            Err(HandlerError::Retry(reason)) if delivered < self.spec.settings.max_deliver => {
                let backoff = &self.spec.settings.backoff;
                let delay = backoff
                    .get((delivered as usize).saturating_sub(1))
                    .or(backoff.last())
                    .copied()
                    .unwrap_or(Duration::from_secs(1));
                warn!(message_id = %incoming.message_id, delivered, ?delay, %reason, "handling failed; will retry");
                self.metrics.count(&self.spec.durable, &incoming.kind, "retried");
                let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
            }
            Err(e) => {
                error!(message_id = %incoming.message_id, delivered, error = %e, "handling failed for good; dead-lettered");
                match self.dead_letter(incoming, &e.to_string()).await {
                    Ok(()) => {
                        let _ = msg.ack().await;
                    }
                    Err(db) => {
                        // Nowhere to keep it: leave it to JetStream's redelivery rather than lose it.
                        error!(error = %db, "cannot write the dead letter");
                        let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(30)))).await;
                    }
                }
            }
        }
    }

    /// Handles one message in one transaction. `replaying` marks a dead letter as replayed in
    /// the same transaction.
    pub async fn process(&self, incoming: &Incoming, replaying: Option<&str>) -> Result<Outcome, HandlerError> {
        self.process_batch(std::slice::from_ref(incoming), replaying)
            .await
            .pop()
            .unwrap_or(Err(HandlerError::Retry("nothing was processed".into())))
    }

    /// Handles messages in order in one transaction, each inside its own savepoint, so that one
    /// failing message is rolled back alone and the others still commit. Returns one result per
    /// message; if the commit itself fails, every message is to be retried.
    pub async fn process_batch(&self, batch: &[Incoming], replaying: Option<&str>) -> Vec<Result<Outcome, HandlerError>> {
        let started = std::time::Instant::now();
        let mut results = Vec::with_capacity(batch.len());
        let mut tx = match self.db.begin().await {
            Ok(tx) => tx,
            Err(e) => return batch.iter().map(|_| Err(HandlerError::Retry(format!("cannot begin a transaction: {e}")))).collect(),
        };
        let mut emitted = false;
        for incoming in batch {
            let case_id = incoming.header(header::CASE_ID).unwrap_or_default().to_string();
            let span = tracing::info_span!(
                "consume",
                consumer = %self.spec.durable,
                event_type = %incoming.kind,
                case_id = %case_id,
                otel.kind = "consumer",
            );
            crate::telemetry::set_parent(&span, |k| incoming.header(k));
            let result = async {
                savepoint(&mut tx, "SAVEPOINT jiesu_message").await?;
                let outcome = self.handle_one(&mut tx, incoming, replaying).await;
                match &outcome {
                    Ok(_) => savepoint(&mut tx, "RELEASE SAVEPOINT jiesu_message").await?,
                    Err(_) => {
                        savepoint(&mut tx, "ROLLBACK TO SAVEPOINT jiesu_message").await?;
                        savepoint(&mut tx, "RELEASE SAVEPOINT jiesu_message").await?;
                    }
                }
                outcome
            }
            .instrument(span)
            .await;
            emitted |= matches!(result, Ok((Outcome::Handled, true)));
            results.push(result.map(|(o, _)| o));
        }
        if let Err(e) = tx.commit().await {
            warn!(error = %e, messages = batch.len(), "commit failed; the batch will be redelivered");
            return batch.iter().map(|_| Err(HandlerError::Retry(format!("commit failed: {e}")))).collect();
        }
        if emitted {
            self.relay_wake.notify_one();
        }
        self.metrics.handle_seconds.observe(started.elapsed().as_secs_f64());
        for (incoming, result) in batch.iter().zip(&results) {
            match result {
                Ok(Outcome::Handled) => {
                    self.metrics.count(&self.spec.durable, &incoming.kind, "handled");
                    self.handler.committed(incoming);
                }
                Ok(Outcome::Duplicate) => self.metrics.count(&self.spec.durable, &incoming.kind, "duplicate"),
                Err(_) => {}
            }
        }
        results
    }

    /// Inbox, handler, outbox for one message; `true` when it emitted events.
    async fn handle_one(&self, tx: &mut Tx, incoming: &Incoming, replaying: Option<&str>) -> Result<(Outcome, bool), HandlerError> {
        let now = to_millis(self.clock.now());
        let fresh = with_tx!(tx, conn => sqlx::query(
            "INSERT INTO inbox (consumer, message_id, handled_at) VALUES ($1, $2, $3)
             ON CONFLICT (consumer, message_id) DO NOTHING")
            .bind(&self.spec.durable).bind(&incoming.message_id).bind(now)
            .execute(conn).await.map(|r| r.rows_affected()))?
            == 1;
        if !fresh {
            return Ok((Outcome::Duplicate, false));
        }
        let out = self.handler.handle(tx, incoming).await?;
        outbox::write(tx, &out, now).await?;
        if let Some(id) = replaying {
            with_tx!(tx, conn => sqlx::query("UPDATE dead_letters SET replayed_at = $1 WHERE id = $2")
                .bind(now).bind(id).execute(conn).await.map(|r| r.rows_affected()))?;
        }
        Ok((Outcome::Handled, !out.is_empty()))
    }

    async fn dead_letter(&self, m: &Incoming, error: &str) -> Result<(), Error> {
        let mut tx = self.db.begin().await?;
        let headers = serde_json::to_string(&m.headers).expect("string map serialises");
        with_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO dead_letters (id, consumer, message_id, stream_seq, subject, headers, payload, error, deliveries, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(uuid::Uuid::now_v7().to_string()).bind(&self.spec.durable).bind(&m.message_id)
            .bind(m.stream_sequence as i64).bind(&m.subject).bind(&headers).bind(m.payload.to_vec())
            .bind(error).bind(m.delivered).bind(to_millis(self.clock.now()))
            .execute(conn).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        self.metrics.count(&self.spec.durable, &m.kind, "dead_lettered");
        self.metrics.dead_letters_open.inc();
        Ok(())
    }
}

/// A dead letter as the admin port shows it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: String,
    pub consumer: String,
    pub message_id: String,
    pub stream_seq: i64,
    pub subject: String,
    pub error: String,
    pub deliveries: i64,
    pub created_at: i64,
    pub replayed_at: Option<i64>,
}

/// The dead letters, newest first.
pub async fn dead_letters(db: &Db, include_replayed: bool) -> Result<Vec<DeadLetter>, Error> {
    let rows = with_pool!(db, pool => sqlx::query_as::<_, DeadLetter>(
        "SELECT id, consumer, message_id, stream_seq, subject, error, deliveries, created_at, replayed_at
         FROM dead_letters WHERE ($1 OR replayed_at IS NULL) ORDER BY created_at DESC LIMIT 500")
        .bind(include_replayed).fetch_all(pool).await)?;
    Ok(rows)
}

/// One dead letter by id.
pub async fn dead_letter(db: &Db, id: &str) -> Result<Option<DeadLetter>, Error> {
    let row = with_pool!(db, pool => sqlx::query_as::<_, DeadLetter>(
        "SELECT id, consumer, message_id, stream_seq, subject, error, deliveries, created_at, replayed_at
         FROM dead_letters WHERE id = $1")
        .bind(id).fetch_optional(pool).await)?;
    Ok(row)
}

#[derive(sqlx::FromRow)]
struct StoredLetter {
    consumer: String,
    message_id: String,
    stream_seq: i64,
    subject: String,
    headers: String,
    payload: Vec<u8>,
    deliveries: i64,
    replayed_at: Option<i64>,
}

/// Replays dead letters through their consumer's handler.
pub trait Replay: Send + Sync {
    fn consumer(&self) -> &str;
    fn replay<'a>(&'a self, id: &'a str) -> futures::future::BoxFuture<'a, Result<Outcome, String>>;
}

impl<H: Handler> Replay for Consumer<H> {
    fn consumer(&self) -> &str {
        &self.spec.durable
    }

    fn replay<'a>(&'a self, id: &'a str) -> futures::future::BoxFuture<'a, Result<Outcome, String>> {
        Box::pin(async move {
            let row = with_pool!(&self.db, pool => sqlx::query_as::<_, StoredLetter>(
                "SELECT consumer, message_id, stream_seq, subject, headers, payload, deliveries, replayed_at
                 FROM dead_letters WHERE id = $1")
                .bind(id).fetch_optional(pool).await)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no dead letter {id}"))?;
            if row.replayed_at.is_some() {
                return Err(format!("dead letter {id} was already replayed"));
            }
            if row.consumer != self.spec.durable {
                return Err(format!("dead letter {id} belongs to consumer {}", row.consumer));
            }
            let headers: BTreeMap<String, String> = serde_json::from_str(&row.headers).unwrap_or_default();
            let kind = self.broker.subjects.kind_of(&row.subject).to_string();
            let incoming = Incoming {
                subject: row.subject,
                kind,
                message_id: row.message_id,
                headers,
                payload: row.payload.into(),
                delivered: row.deliveries + 1,
                stream_sequence: row.stream_seq as u64,
            };
            let outcome = self.process(&incoming, Some(id)).await.map_err(|e| e.to_string())?;
            if outcome == Outcome::Duplicate {
                // Handled meanwhile (e.g. redelivered after a restart): nothing left to replay.
                let now = to_millis(self.clock.now());
                let mut tx = self.db.begin().await.map_err(|e| e.to_string())?;
                with_tx!(&mut tx, conn => sqlx::query("UPDATE dead_letters SET replayed_at = $1 WHERE id = $2")
                    .bind(now).bind(id).execute(conn).await.map(|r| r.rows_affected()))
                .map_err(|e| e.to_string())?;
                tx.commit().await.map_err(|e| e.to_string())?;
            }
            self.metrics.dead_letters_open.dec();
            Ok(outcome)
        })
    }
}
