//! The inbox: which messages a consumer has handled, so that a redelivered or re-published one
//! is recognised inside the transaction that would handle it again.
//!
//! Entries are kept as long as a stream can still hold (and so redeliver or replay) their
//! message, then purged by [`purge`], which each consumer runs for its own entries.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{Error, db::Db, db::Tx, time::to_millis, with_tx};

/// Records `key` as handled by `consumer`; `false` when it already was.
pub async fn record(tx: &mut Tx, consumer: &str, key: &str, now: DateTime<Utc>) -> Result<bool, Error> {
    let inserted = with_tx!(tx, conn => sqlx::query(
        "INSERT INTO inbox (consumer, message_id, handled_at) VALUES ($1, $2, $3)
         ON CONFLICT (consumer, message_id) DO NOTHING")
        .bind(consumer).bind(key).bind(to_millis(now))
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

/// Deletes `consumer`'s entries handled longer ago than `retention`; returns how many.
pub async fn purge(db: &Db, consumer: &str, retention: Duration, now: DateTime<Utc>) -> Result<u64, Error> {
    let before = to_millis(now) - retention.as_millis() as i64;
    let mut tx = db.begin().await?;
    let n = with_tx!(&mut tx, conn => sqlx::query("DELETE FROM inbox WHERE consumer = $1 AND handled_at < $2")
        .bind(consumer).bind(before).execute(conn).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(n)
}
