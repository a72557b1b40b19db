//! Dead letters: messages that kept failing (or can never succeed), kept with their error in
//! the service's database — visible on the admin port, replayable, never silently dropped, and
//! never blocking the messages behind them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Consumer, Handler, Incoming, Outcome};
use crate::{
    Error,
    db::{Db, Tx},
    time::to_millis,
    with_pool, with_tx,
};

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

/// How many dead letters are waiting for a replay.
pub async fn open_count(db: &Db) -> Result<i64, Error> {
    let n: i64 = with_pool!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters WHERE replayed_at IS NULL")
        .fetch_one(pool).await)?;
    Ok(n)
}

/// One dead letter by id.
pub async fn dead_letter(db: &Db, id: &str) -> Result<Option<DeadLetter>, Error> {
    let row = with_pool!(db, pool => sqlx::query_as::<_, DeadLetter>(
        "SELECT id, consumer, message_id, stream_seq, subject, error, deliveries, created_at, replayed_at
         FROM dead_letters WHERE id = $1")
        .bind(id).fetch_optional(pool).await)?;
    Ok(row)
}

/// Keeps a message that failed for good, with its error.
pub(super) async fn store(db: &Db, consumer: &str, m: &Incoming, error: &str, now: DateTime<Utc>) -> Result<(), Error> {
    let mut tx = db.begin().await?;
    let headers = serde_json::to_string(&m.headers).expect("string map serialises");
    with_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO dead_letters (id, consumer, message_id, stream_seq, subject, headers, payload, error, deliveries, created_at, stream_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(uuid::Uuid::now_v7().to_string()).bind(consumer).bind(&m.message_id)
        .bind(m.stream_sequence as i64).bind(&m.subject).bind(&headers).bind(m.payload.to_vec())
        .bind(error).bind(m.delivered).bind(to_millis(now)).bind(&m.stream_key)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    tx.commit().await
}

/// Marks a dead letter replayed, inside the transaction that handled it.
pub(super) async fn mark_replayed(tx: &mut Tx, id: &str, now: DateTime<Utc>) -> Result<(), Error> {
    with_tx!(tx, conn => sqlx::query("UPDATE dead_letters SET replayed_at = $1 WHERE id = $2")
        .bind(to_millis(now)).bind(id).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct StoredLetter {
    consumer: String,
    message_id: String,
    stream_key: String,
    stream_seq: i64,
    subject: String,
    headers: String,
    payload: Vec<u8>,
    deliveries: i64,
    created_at: i64,
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
                "SELECT consumer, message_id, stream_key, stream_seq, subject, headers, payload, deliveries, created_at, replayed_at
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
            // A letter kept before stream keys were recorded stands for itself.
            let stream_key = if row.stream_key.is_empty() { format!("dead-letter:{id}") } else { row.stream_key };
            let incoming = Incoming {
                subject: row.subject,
                kind,
                message_id: row.message_id,
                stream_key,
                headers,
                payload: row.payload.into(),
                delivered: row.deliveries + 1,
                stream_sequence: row.stream_seq as u64,
                published_at: row.created_at,
            };
            let outcome = self.process(&incoming, Some(id)).await.map_err(|e| e.to_string())?;
            if outcome == Outcome::Duplicate {
                // Handled meanwhile (e.g. redelivered after a restart): nothing left to replay.
                let mut tx = self.db.begin().await.map_err(|e| e.to_string())?;
                mark_replayed(&mut tx, id, self.clock.now()).await.map_err(|e| e.to_string())?;
                tx.commit().await.map_err(|e| e.to_string())?;
            }
            self.metrics.dead_letters_open.dec();
            Ok(outcome)
        })
    }
}
