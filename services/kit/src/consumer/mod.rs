//! Durable pull consumers with exactly-once effects.
//!
//! Each message is handled inside one database transaction that (1) records the message in the
//! [`inbox`] — already there means handled before: ack and skip — (2) lets the [`Handler`] apply
//! its change and (3) writes the events it emits into the outbox. Only after the commit is the
//! message acknowledged. A message that keeps failing lands in the [`dead_letter`] table with its
//! error, is acknowledged so it never blocks the ones behind it, and can be replayed.
//!
//! Messages are typed: a handler names what it consumes ([`Inbound`], for events the
//! [`consumes!`](crate::consumes) macro), and the kit decodes and checks each message once —
//! the type matches the subject, the meta carries its ids — before the handler sees it.

pub mod dead_letter;
pub mod inbox;
mod pull;

use std::{collections::BTreeMap, future::Future, sync::Arc};

use bytes::Bytes;
use jiesu_proto::Event;
use tokio::sync::Notify;
use tracing::{Instrument, warn};

use crate::{
    Error, Subjects,
    clock::SharedClock,
    config::ConsumerSettings,
    db::{Db, Tx},
    health::Readiness,
    messaging::{Broker, header},
    metrics::Metrics,
    outbox, with_tx,
    work::{Emitter, Work},
};

pub use dead_letter::{DeadLetter, Replay, dead_letter, dead_letters};

/// A message as it arrived, before it is decoded.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub subject: String,
    /// `case.received` for events; the channel for submissions.
    pub kind: String,
    /// The producer's `Nats-Msg-Id`, else [`stream_key`](Self::stream_key).
    pub message_id: String,
    /// `<stream>@<created>:<sequence>`: this stream message and no other, for all time (a
    /// recreated stream restarts its sequences but has another creation time).
    pub stream_key: String,
    pub headers: BTreeMap<String, String>,
    pub payload: Bytes,
    /// 1 on first delivery.
    pub delivered: i64,
    pub stream_sequence: u64,
    /// When the stream stored the message (milliseconds since the epoch).
    pub published_at: i64,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Why a handler could not finish. Keeps the error that caused it.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth trying again later (database busy, a dependency down).
    #[error("{0}")]
    Retry(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Will never succeed (undecodable, contradicts the data): dead-letter it at once.
    #[error("{0}")]
    Reject(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl HandlerError {
    pub fn retry(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        HandlerError::Retry(e.into())
    }

    pub fn reject(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        HandlerError::Reject(e.into())
    }
}

impl From<Error> for HandlerError {
    fn from(e: Error) -> Self {
        match e {
            Error::Decode(_) => HandlerError::reject(e),
            other => HandlerError::retry(other),
        }
    }
}

/// A service's one error type: the kit's errors (the database's among them) in one variant,
/// beside the service's own. Implement it with [`service_error!`](crate::service_error) (or by
/// hand, to route the service's own errors differently); `?` in a handler then turns it into a
/// [`HandlerError`].
pub trait ServiceError: std::error::Error + Send + Sync + Sized + 'static {
    /// The kit's error, when this is one; the service's own error back otherwise.
    fn into_kit(self) -> Result<Error, Self>;

    /// What the consumer does about it: the kit's errors keep their route (a database error is
    /// retried); the service's own are rejected — dead-lettered, visible, replayable — because
    /// retrying cannot change them.
    fn into_handler_error(self) -> HandlerError {
        match self.into_kit() {
            Ok(kit) => kit.into(),
            Err(own) => HandlerError::reject(own),
        }
    }
}

impl<E: ServiceError> From<E> for HandlerError {
    fn from(e: E) -> Self {
        e.into_handler_error()
    }
}

/// Implements [`ServiceError`] for a service's error type whose `Kit` variant holds the kit's
/// error: `jiesu_kit::service_error!(Error);`.
#[macro_export]
macro_rules! service_error {
    ($error:ty) => {
        impl $crate::consumer::ServiceError for $error {
            fn into_kit(self) -> Result<$crate::Error, Self> {
                match self {
                    Self::Kit(e) => Ok(e),
                    other => Err(other),
                }
            }
        }
    };
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::retry(Error::Database(e))
    }
}

/// What a consumer reads: where from, how a message is decoded, and what makes it "the same".
pub trait Inbound: Sized + Send + 'static {
    /// The kinds it consumes, for metric labels (anything else is counted as `unknown`).
    const KINDS: &'static [&'static str];

    /// The stream and the subject filters.
    fn source(subjects: &Subjects) -> (String, Vec<String>);

    /// Decodes and checks a message; an error here can never succeed later: rejected.
    fn decode(msg: &Incoming) -> Result<Self, HandlerError>;

    /// The inbox key: a message with a key already in the inbox was handled. Events are keyed
    /// by their event id (`Nats-Msg-Id`), so a re-published event is still recognised.
    fn inbox_key(msg: &Incoming) -> &str {
        &msg.message_id
    }

    /// The event a message is, for the `causation_id` of what its handling emits.
    fn causation_id(msg: &Incoming) -> &str {
        &msg.message_id
    }
}

/// Decodes an event of type `E` and checks its meta: the one place every consumer does it.
pub fn decode_event<E: Event>(msg: &Incoming) -> Result<E, HandlerError> {
    let bad = |reason: String| HandlerError::reject(Error::Decode(format!("{} event: {reason}", E::TYPE)));
    if msg.kind != E::TYPE {
        return Err(bad(format!("arrived on {}, the subject of another type", msg.subject)));
    }
    if let Some(t) = msg.header(header::EVENT_TYPE).filter(|t| *t != E::TYPE) {
        return Err(bad(format!("its {} header says {t:?}", header::EVENT_TYPE)));
    }
    let event = E::decode(msg.payload.as_ref()).map_err(|e| bad(format!("not a valid protobuf message: {e}")))?;
    let meta = event.meta().ok_or_else(|| bad("carries no meta".into()))?;
    for (field, value) in [("event_id", &meta.event_id), ("case_id", &meta.case_id), ("case_no", &meta.case_no)] {
        if value.trim().is_empty() {
            return Err(bad(format!("meta.{field} is empty")));
        }
    }
    if let Some(id) = msg.header(header::CASE_ID).filter(|id| *id != meta.case_id) {
        return Err(bad(format!("meta.case_id differs from its {} {id:?}", header::CASE_ID)));
    }
    Ok(event)
}

/// Declares the events a service consumes, as one enum: the typed list of its consumed events.
///
/// ```text
/// jiesu_kit::consumes! {
///     /// The events dispatch reacts to.
///     pub enum Consumed { CaseClassified, CaseReopened, RevisitRecorded }
/// }
/// ```
#[macro_export]
macro_rules! consumes {
    ($(#[$attr:meta])* $vis:vis enum $name:ident { $($event:ident),+ $(,)? }) => {
        $(#[$attr])*
        #[derive(Debug)]
        $vis enum $name {
            $($event($crate::proto::v1::$event)),+
        }

        impl $name {
            /// The event's meta (id, case, time), whichever event it is.
            #[allow(dead_code)]
            pub fn meta(&self) -> Option<&$crate::proto::v1::EventMeta> {
                match self {
                    $(Self::$event(e) => <$crate::proto::v1::$event as $crate::proto::Event>::meta(e)),+
                }
            }
        }

        impl $crate::consumer::Inbound for $name {
            const KINDS: &'static [&'static str] = &[$(<$crate::proto::v1::$event as $crate::proto::Named>::TYPE),+];

            fn source(subjects: &$crate::Subjects) -> (String, Vec<String>) {
                (subjects.events_stream(), Self::KINDS.iter().map(|t| subjects.event(t)).collect())
            }

            fn decode(msg: &$crate::Incoming) -> Result<Self, $crate::HandlerError> {
                $(
                    if msg.kind == <$crate::proto::v1::$event as $crate::proto::Named>::TYPE {
                        return $crate::consumer::decode_event(msg).map(Self::$event);
                    }
                )+
                Err($crate::HandlerError::reject($crate::Error::Decode(format!("{} is not consumed here", msg.kind))))
            }
        }
    };
}

/// A service's reaction to messages. Runs inside the transaction; must do no network I/O
/// (events it emits are published by the outbox relay after the commit).
pub trait Handler: Send + Sync + 'static {
    type Message: Inbound;

    fn handle(&self, work: &mut Work<'_>, msg: Self::Message) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Whether `kind` is one this handler knows, for metric labels; by default the kinds of
    /// its [`Inbound`] message.
    fn knows(&self, kind: &str) -> bool {
        Self::Message::KINDS.contains(&kind)
    }

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
    /// How long the inbox remembers a handled message: as long as a stream can hold it.
    pub inbox_retention: std::time::Duration,
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
    pub emitter: Arc<Emitter>,
    pub relay_wake: Arc<Notify>,
    pub metrics: Metrics,
    pub readiness: Readiness,
}

impl<H: Handler> Consumer<H> {
    /// The metric label of a message kind: only kinds the handler knows, so that messages on
    /// made-up subjects cannot grow the number of series.
    fn label<'a>(&self, kind: &'a str) -> &'a str {
        if self.handler.knows(kind) { kind } else { "unknown" }
    }

    /// Handles one message in one transaction. `replaying` marks a dead letter as replayed in
    /// the same transaction.
    pub async fn process(&self, incoming: &Incoming, replaying: Option<&str>) -> Result<Outcome, HandlerError> {
        self.process_batch(std::slice::from_ref(incoming), replaying)
            .await
            .pop()
            .unwrap_or_else(|| Err(HandlerError::retry("nothing was processed")))
    }

    /// Handles messages in order in one transaction, each inside its own savepoint, so that one
    /// failing message is rolled back alone and the others still commit. Returns one result per
    /// message; if the commit itself fails, every message is to be retried.
    pub async fn process_batch(&self, batch: &[Incoming], replaying: Option<&str>) -> Vec<Result<Outcome, HandlerError>> {
        let started = std::time::Instant::now();
        let mut results = Vec::with_capacity(batch.len());
        let mut tx = match self.db.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                let e = Arc::new(e);
                return batch.iter().map(|_| Err(HandlerError::retry(SharedError(e.clone())))).collect();
            }
        };
        let mut emitted = false;
        for incoming in batch {
            let span = crate::telemetry::consumer_span(&self.spec.durable, incoming);
            let result = async {
                savepoint(&mut tx, "SAVEPOINT jiesu_message").await?;
                let outcome = self.handle_one(&mut tx, incoming, replaying).await;
                match &outcome {
                    Ok(_) => savepoint(&mut tx, "RELEASE SAVEPOINT jiesu_message").await?,
                    Err(e) => {
                        crate::telemetry::record_error(e);
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
            let e = Arc::new(e);
            return batch.iter().map(|_| Err(HandlerError::retry(SharedError(e.clone())))).collect();
        }
        if emitted {
            self.relay_wake.notify_one();
        }
        self.metrics.handle_seconds.observe(started.elapsed().as_secs_f64());
        for (incoming, result) in batch.iter().zip(&results) {
            let label = self.label(&incoming.kind);
            match result {
                Ok(Outcome::Handled) => {
                    self.metrics.count(&self.spec.durable, label, "handled");
                    self.handler.committed(incoming);
                }
                Ok(Outcome::Duplicate) => self.metrics.count(&self.spec.durable, label, "duplicate"),
                Err(_) => {}
            }
        }
        results
    }

    /// Inbox, handler, outbox for one message; `true` when it emitted events.
    async fn handle_one(&self, tx: &mut Tx, incoming: &Incoming, replaying: Option<&str>) -> Result<(Outcome, bool), HandlerError> {
        let now = self.clock.now();
        let key = H::Message::inbox_key(incoming);
        if !inbox::record(tx, &self.spec.durable, key, now).await? {
            return Ok((Outcome::Duplicate, false));
        }
        if let (Some(case_id), Some(traceparent)) = (incoming.header(header::CASE_ID), incoming.header(header::TRACEPARENT)) {
            let tracestate = incoming.header("tracestate").unwrap_or_default();
            crate::case_trace::remember(tx, case_id, traceparent, tracestate, now).await?;
        }
        let message = H::Message::decode(incoming)?;
        let causation = H::Message::causation_id(incoming);
        let mut out = Vec::new();
        let mut work = Work::new(tx, &self.emitter, key, causation, now, &mut out);
        self.handler.handle(&mut work, message).await?;
        outbox::write(tx, &out, crate::time::to_millis(now)).await?;
        if let Some(id) = replaying {
            dead_letter::mark_replayed(tx, id, now).await?;
        }
        Ok((Outcome::Handled, !out.is_empty()))
    }
}

/// One database error reported for every message of a failed batch.
#[derive(Debug)]
struct SharedError(Arc<Error>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}
