//! One piece of work — the handling of a message or of a gRPC command — and the events it emits.
//!
//! A service applies its change inside a [`Work`]: the write transaction, the time of the work,
//! and [`Work::emit`], which builds each event's [`EventMeta`] (the only place it is built) and
//! puts the event into the outbox with the rest of the change.
//!
//! An event's id is derived from what caused it — the message being handled, or the command's
//! idempotency key — with the service, the event type, the case and a counter: handling the same
//! message again (a redelivery, a replay after a database was restored from a backup) yields the
//! same ids, so JetStream and every downstream inbox drop the second copy.
//!
//! Commands take the [`Commands`] path: [`Commands::begin`] opens the transaction, the service
//! applies its change through [`Command::work`], and [`Command::commit`] writes the outbox,
//! commits and wakes the relay. A command dropped without commit is rolled back.

use std::sync::Arc;
use tracing::Instrument;

use chrono::{DateTime, Utc};
use jiesu_proto::{Event, Named, v1::EventMeta};
use tokio::sync::Notify;

use crate::{
    Error, Subjects,
    clock::SharedClock,
    db::{Db, Tx},
    messaging::PROTOBUF,
    outbox::{self, Outgoing},
    time::{to_millis, to_proto},
};

/// The namespace of derived event ids (UUIDv5).
const EVENT_ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x8c3e_0f5a_6b1d_4e8a_9f2c_1a7b_3d5e_9c01);

/// What every event a service emits shares: the service, its district, the subject names.
#[derive(Debug, Clone)]
pub struct Emitter {
    pub service: &'static str,
    pub district: String,
    pub subjects: Subjects,
}

/// The public identity of the case an event is about.
#[derive(Debug, Clone, Copy)]
pub struct CaseIds<'a> {
    pub case_id: &'a str,
    pub case_no: &'a str,
}

/// The handling of one message or one command: its transaction, its time and what it emits.
pub struct Work<'a> {
    /// The write transaction every change of this work goes into.
    pub tx: &'a mut Tx,
    emitter: &'a Emitter,
    /// What derived event ids hang on: the handled message's inbox key or the command's key.
    cause_key: &'a str,
    /// The event this work answers (`causation_id` of what it emits), if it answers one.
    causation_id: &'a str,
    now: DateTime<Utc>,
    out: &'a mut Vec<Outgoing>,
}

impl<'a> Work<'a> {
    pub(crate) fn new(
        tx: &'a mut Tx,
        emitter: &'a Emitter,
        cause_key: &'a str,
        causation_id: &'a str,
        now: DateTime<Utc>,
        out: &'a mut Vec<Outgoing>,
    ) -> Self {
        Self { tx, emitter, cause_key, causation_id, now, out }
    }

    /// When this work happens (the injected clock, read once).
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// [`now`](Self::now) in milliseconds since the epoch, as stored.
    pub fn now_millis(&self) -> i64 {
        to_millis(self.now)
    }

    /// The district the service runs for.
    pub fn district(&self) -> &str {
        &self.emitter.district
    }

    /// Emits `event` about `case`: fills its meta and puts it into the outbox, to be published
    /// after the commit. Returns the event id.
    pub fn emit<E: Event>(&mut self, case: CaseIds<'_>, event: E) -> String {
        let causation = self.causation_id.to_string();
        self.emit_answering(case, event, &causation)
    }

    /// [`emit`](Self::emit) for an event that answers another one this work emitted
    /// (`case.reopened` answering the `revisit.recorded` it follows).
    pub fn emit_answering<E: Event>(&mut self, case: CaseIds<'_>, mut event: E, causation_id: &str) -> String {
        let n = self.out.iter().filter(|o| o.event_type == E::TYPE && o.case_id == case.case_id).count();
        let event_id = self.derive_id(&format!("{}|{}|{n}", E::TYPE, case.case_id));
        event.set_meta(EventMeta {
            event_id: event_id.clone(),
            case_id: case.case_id.to_string(),
            case_no: case.case_no.to_string(),
            occurred_at: Some(to_proto(self.now)),
            causation_id: causation_id.to_string(),
            district: self.emitter.district.clone(),
        });
        self.out.push(Outgoing {
            event_id: event_id.clone(),
            subject: self.emitter.subjects.event(E::TYPE),
            event_type: E::TYPE,
            case_id: case.case_id.to_string(),
            payload: event.encode_to_vec(),
            content_type: PROTOBUF,
            extra_headers: Vec::new(),
        });
        event_id
    }

    /// Publishes a non-event message (an answer to a producer) on `subject` after the commit,
    /// already encoded in `content_type`, with extra headers.
    pub fn answer<M: Named>(
        &mut self,
        subject: String,
        payload: Vec<u8>,
        content_type: &'static str,
        headers: Vec<(&'static str, String)>,
    ) {
        let id = self.derive_id(&format!("{}|{subject}", M::TYPE));
        self.out.push(Outgoing {
            event_id: id,
            subject,
            event_type: M::TYPE,
            case_id: String::new(),
            payload,
            content_type,
            extra_headers: headers,
        });
    }

    fn derive_id(&self, what: &str) -> String {
        derive_id(self.emitter.service, self.cause_key, what)
    }
}

/// The id of what `service` emits because of `cause`: the same inputs, the same id.
fn derive_id(service: &str, cause: &str, what: &str) -> String {
    uuid::Uuid::new_v5(&EVENT_ID_NAMESPACE, format!("{service}|{cause}|{what}").as_bytes()).to_string()
}

/// The one path of a gRPC command: begin, apply, write the outbox, commit, wake the relay.
#[derive(Clone)]
pub struct Commands {
    pub(crate) db: Db,
    pub(crate) emitter: Arc<Emitter>,
    pub(crate) clock: SharedClock,
    pub(crate) relay_wake: Arc<Notify>,
}

/// The gRPC metadata key a client may set so that a retried command is recognised: the events
/// of two calls with the same key have the same ids.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

impl Commands {
    /// The service's clock now.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Begins a command; its events' ids derive from the request's `idempotency-key` when the
    /// client sent one (printable ASCII, at most 128 characters), else from a fresh id.
    pub async fn begin<T>(&self, request: &tonic::Request<T>) -> Result<Command, Error> {
        let key = request
            .metadata()
            .get(IDEMPOTENCY_KEY)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 128)
            .map(|k| format!("key:{k}"))
            .unwrap_or_else(|| format!("command:{}", uuid::Uuid::now_v7()));
        self.begin_with_key(key, String::new()).await
    }

    /// Begins a piece of work of the service's own (a timer firing, a worker's step) whose
    /// events' ids derive from `key`, answering the event `causation_id` (may be empty).
    pub async fn begin_with_key(&self, key: String, causation_id: String) -> Result<Command, Error> {
        let tx = self.db.begin().await?;
        Ok(Command { tx, key, causation_id, now: self.clock.now(), out: Vec::new(), commands: self.clone() })
    }

    /// The database, for reads outside a command.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

impl Command {
    /// When this command happens.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

/// A command in progress. Dropped without [`commit`](Self::commit), it is rolled back.
pub struct Command {
    tx: Tx,
    key: String,
    causation_id: String,
    now: DateTime<Utc>,
    out: Vec<Outgoing>,
    commands: Commands,
}

impl Command {
    /// The work of this command, to apply its change in.
    pub fn work(&mut self) -> Work<'_> {
        Work::new(&mut self.tx, &self.commands.emitter, &self.key, &self.causation_id, self.now, &mut self.out)
    }

    /// Sets what the ids of the events emitted from now on derive from, when the command learns
    /// it only from what it read (a timer firing learns the clock's version).
    pub fn set_cause(&mut self, key: String, causation_id: String) {
        self.key = key;
        self.causation_id = causation_id;
    }

    /// Writes the emitted events into the outbox, commits, and wakes the relay.
    /// The events are written under a span of their case's trace (see [`crate::case_trace`]);
    /// a command about several cases (a batch of timer firings) writes each case's events
    /// under that case's own trace.
    pub async fn commit(mut self) -> Result<(), Error> {
        let now_ms = to_millis(self.now);
        let mut out = std::mem::take(&mut self.out);
        // Stable: each case's events keep their order.
        out.sort_by(|a, b| a.case_id.cmp(&b.case_id));
        for of_case in out.chunk_by(|a, b| a.case_id == b.case_id) {
            self.write_outbox(&of_case[0].case_id, of_case, now_ms).await?;
        }
        self.tx.commit().await?;
        if !out.is_empty() {
            self.commands.relay_wake.notify_one();
        }
        Ok(())
    }

    async fn write_outbox(&mut self, case_id: &str, out: &[Outgoing], now_ms: i64) -> Result<(), Error> {
        let trace = match case_id {
            "" => None,
            case_id => crate::case_trace::recall(&mut self.tx, case_id).await?,
        };
        match trace {
            Some(trace) => {
                let span = crate::case_trace::command_span(self.commands.emitter.service, case_id, &trace);
                outbox::write(&mut self.tx, out, now_ms).instrument(span).await
            }
            None => outbox::write(&mut self.tx, out, now_ms).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let id = |cause: &str, what: &str| derive_id("dispatch", cause, what);
        assert_eq!(id("m-1", "case.dispatched|c|0"), id("m-1", "case.dispatched|c|0"));
        assert_ne!(id("m-1", "case.dispatched|c|0"), id("m-2", "case.dispatched|c|0"));
        assert_ne!(id("m-1", "case.dispatched|c|0"), id("m-1", "case.dispatched|c|1"));
        assert_ne!(derive_id("dispatch", "m", "x"), derive_id("revisit", "m", "x"));
    }
}
