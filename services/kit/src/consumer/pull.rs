//! The pull loop: creates the durable consumer, pulls what has arrived in batches, settles each
//! message after its transaction (ack, NAK with back-off, or dead letter), and comes back by
//! itself from whatever NATS does meanwhile — a lost connection, a deleted consumer or stream —
//! reporting not-ready until it has.

use std::{collections::BTreeMap, time::Duration};

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{BATCH, Consumer, Handler, HandlerError, Incoming, Outcome, dead_letter, inbox};
use crate::{Error, messaging::header};

/// How often a consumer purges its old inbox entries.
const PURGE_EVERY: Duration = Duration::from_secs(3_600);
/// The idle heartbeat of a pull; a pull request lasts three of them.
const HEARTBEAT: Duration = Duration::from_secs(5);

impl<H: Handler> Consumer<H> {
    /// Handles messages until cancelled. Never gives up on a transient failure: it retries
    /// with back-off, and `/readyz` says why it is not consuming meanwhile.
    pub async fn run(&self, cancel: CancellationToken) -> Result<(), Error> {
        let component = format!("consumer {}", self.spec.durable);
        self.readiness.failing(&component, "starting");
        let mut attempt = 0u32;
        let mut last_purge: Option<tokio::time::Instant> = None;
        loop {
            match self.connect().await {
                Ok((consumer, stream_created)) => {
                    attempt = 0;
                    self.readiness.ok(&component);
                    info!(consumer = %self.spec.durable, stream = %self.spec.stream, "consuming");
                    let reason = self.pull(&consumer, stream_created, &cancel, &mut last_purge).await;
                    match reason {
                        None => return Ok(()),
                        Some(reason) => {
                            warn!(consumer = %self.spec.durable, %reason, "consumer interrupted; setting it up again");
                            self.readiness.failing(&component, &reason);
                        }
                    }
                }
                Err(e) => {
                    attempt = attempt.saturating_add(1);
                    warn!(consumer = %self.spec.durable, error = %e, attempt, "cannot set up the consumer; retrying");
                    self.readiness.failing(&component, &e.to_string());
                }
            }
            let pause = Duration::from_millis(250 * 2u64.pow(attempt.min(5)));
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Creates (or updates) the durable consumer — or, with credentials, binds to the one the
    /// operator provisioned and checks it reads what this service consumes; returns it and its
    /// stream's creation time.
    async fn connect(&self) -> Result<(jetstream::consumer::Consumer<pull::Config>, i64), Error> {
        let spec = &self.spec;
        let mut stream =
            self.broker.jetstream.get_stream(&spec.stream).await.map_err(|e| Error::Nats(format!("stream {}: {e}", spec.stream)))?;
        let created = stream.info().await.map_err(|e| Error::Nats(format!("stream {}: {e}", spec.stream)))?.created.unix_timestamp_nanos()
            / 1_000_000;
        let config = crate::access::consumer_config(&spec.durable, spec.filter_subjects.clone(), &spec.settings);
        let consumer = if self.broker.manages_streams {
            stream.create_consumer(config).await.map_err(|e| Error::Nats(format!("consumer {} on {}: {e}", spec.durable, spec.stream)))?
        } else {
            let mut consumer: jetstream::consumer::Consumer<pull::Config> = stream.get_consumer(&spec.durable).await.map_err(|e| {
                Error::Nats(format!("consumer {} on {}: {e} (has the operator run `jiesuctl nats provision`?)", spec.durable, spec.stream))
            })?;
            let found = &consumer.info().await.map_err(|e| Error::Nats(format!("consumer {}: {e}", spec.durable)))?.config;
            if let Some(drift) = crate::access::consumer_drift(found, &config) {
                return Err(Error::Nats(format!(
                    "consumer {} on {} is not what this service expects: {drift} (run `jiesuctl nats provision` with this district file)",
                    spec.durable, spec.stream
                )));
            }
            consumer
        };
        Ok((consumer, created as i64))
    }

    /// Pulls until cancelled (`None`) or until the consumer must be set up again (the reason).
    async fn pull(
        &self,
        consumer: &jetstream::consumer::Consumer<pull::Config>,
        stream_created: i64,
        cancel: &CancellationToken,
        last_purge: &mut Option<tokio::time::Instant>,
    ) -> Option<String> {
        // A short idle heartbeat: when the stream or the consumer disappears without the server
        // saying so (a deleted stream, a lost leader), the missing heartbeats tell within
        // seconds, so readiness follows and the consumer is set up again promptly.
        let mut messages = match consumer.stream().heartbeat(HEARTBEAT).expires(HEARTBEAT * 3).messages().await {
            Ok(m) => m,
            Err(e) => return Some(format!("cannot pull messages: {e}")),
        };
        loop {
            if last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
                *last_purge = Some(tokio::time::Instant::now());
                match inbox::purge(&self.db, &self.spec.durable, self.spec.inbox_retention, self.clock.now()).await {
                    Ok(n) if n > 0 => info!(consumer = %self.spec.durable, entries = n, "inbox: purged old entries"),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "inbox: purging old entries failed"),
                }
                if let Err(e) = crate::case_trace::purge(&self.db, self.spec.inbox_retention, self.clock.now()).await {
                    warn!(error = %e, "purging old case traces failed");
                }
            }
            let next = tokio::select! {
                _ = cancel.cancelled() => return None,
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
                    self.on_batch(batch, stream_created).await;
                }
                Some(Err(e)) => {
                    use pull::MessagesErrorKind as Kind;
                    match e.kind() {
                        // The consumer or its stream is gone: set it up again (or report why not).
                        Kind::ConsumerDeleted | Kind::NoResponders | Kind::PushBasedConsumer => return Some(e.to_string()),
                        // Heartbeats stop when the connection drops; see whether the consumer is still there.
                        Kind::MissingHeartbeat if consumer.get_info().await.is_err() => return Some(e.to_string()),
                        _ => {
                            warn!(error = %e, "pull consumer error");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
                None => return Some("the message stream ended".into()),
            }
        }
    }

    async fn on_batch(&self, batch: Vec<jetstream::Message>, stream_created: i64) {
        let incoming: Vec<Incoming> = batch.iter().map(|m| self.incoming(m, stream_created)).collect();
        let results = self.process_batch(&incoming, None).await;
        for ((msg, incoming), result) in batch.iter().zip(&incoming).zip(results) {
            self.settle(msg, incoming, result).await;
        }
    }

    fn incoming(&self, msg: &jetstream::Message, stream_created: i64) -> Incoming {
        let (delivered, stream_sequence, published_at) = match msg.info() {
            Ok(i) => (i.delivered, i.stream_sequence, (i.published.unix_timestamp_nanos() / 1_000_000) as i64),
            Err(_) => (1, 0, crate::time::to_millis(self.clock.now())),
        };
        let headers: BTreeMap<String, String> = msg
            .headers
            .as_ref()
            .map(|h| h.iter().filter_map(|(k, v)| v.first().map(|v| (k.to_string(), v.to_string()))).collect())
            .unwrap_or_default();
        let subject = msg.subject.to_string();
        let kind = self.broker.subjects.kind_of(&subject).to_string();
        let stream_key = format!("{}@{stream_created}:{stream_sequence}", self.spec.stream);
        let message_id = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(header::MSG_ID))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| stream_key.clone());
        Incoming { subject, kind, message_id, stream_key, headers, payload: msg.payload.clone(), delivered, stream_sequence, published_at }
    }

    /// Acks what was committed; NAKs with back-off, or dead-letters, what failed.
    async fn settle(&self, msg: &jetstream::Message, incoming: &Incoming, result: Result<Outcome, HandlerError>) {
        let delivered = incoming.delivered;
        let label = self.label(&incoming.kind);
        match result {
            Ok(_) => {
                if let Err(e) = msg.ack().await {
                    // The effect is committed; a redelivery will be recognised by the inbox.
                    warn!(error = %e, "ack failed");
                }
            }
            Err(HandlerError::Retry(reason)) if delivered < self.spec.settings.max_deliver => {
                let backoff = &self.spec.settings.backoff;
                let delay =
                    backoff.get((delivered as usize).saturating_sub(1)).or(backoff.last()).copied().unwrap_or(Duration::from_secs(1));
                warn!(message_id = %incoming.message_id, delivered, ?delay, %reason, "handling failed; will retry");
                self.metrics.count(&self.spec.durable, label, "retried");
                let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
            }
            Err(e) => {
                error!(message_id = %incoming.message_id, delivered, error = %e, "handling failed for good; dead-lettered");
                match dead_letter::store(&self.db, &self.spec.durable, incoming, &e.to_string(), self.clock.now()).await {
                    Ok(()) => {
                        self.metrics.count(&self.spec.durable, label, "dead_lettered");
                        self.metrics.dead_letters_open.inc();
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
}
