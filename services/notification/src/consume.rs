//! The events someone must hear of: each becomes pending deliveries, one per sink, recorded in
//! the consumer's transaction. Nothing is sent here — the worker does that after the commit.

use std::sync::Arc;

use jiesu_kit::{
    Handler, HandlerError, Incoming, Outgoing, Tx,
    time::{from_proto, to_millis},
};
use jiesu_proto::v1::{CaseDispatched, CaseReceived, EventMeta, SlaAlert};
use tokio::sync::Notify;

use crate::{
    Settings,
    domain::{self, RecipientKind, Sink, UnitNames},
    store::{self, NewDelivery},
};

/// The event types notification consumes.
pub const EVENT_TYPES: [&str; 3] = ["case.received", "case.dispatched", "sla.breached"];

/// Turns events into pending deliveries and wakes the delivery worker once they are committed.
pub struct Notifier {
    pub settings: Settings,
    /// The district's name, for `{district}`.
    pub district_name: String,
    pub timezone: chrono_tz::Tz,
    pub units: Arc<UnitNames>,
    pub clock: jiesu_kit::clock::SharedClock,
    pub wake: Arc<Notify>,
}

/// A notification decided from an event, before it is split by sink.
struct Notice<'a> {
    meta: &'a EventMeta,
    kind: RecipientKind,
    recipient: String,
    template: &'static str,
    text: String,
}

impl Handler for Notifier {
    async fn handle(&self, tx: &mut Tx, msg: &Incoming) -> Result<Vec<Outgoing>, HandlerError> {
        let district = self.district_name.as_str();
        let t = &self.settings.templates;
        match msg.kind.as_str() {
            "case.received" => {
                let e: CaseReceived = msg.decode()?;
                let meta = meta(&e.meta, msg)?;
                if !e.has_contact {
                    tracing::debug!(case_id = %meta.case_id, "no phone number to tell the citizen on");
                    return Ok(vec![]);
                }
                let vars = [("district", district), ("case_no", &meta.case_no), ("title", &e.title)];
                let text = domain::render(&t.case_received, &vars);
                // The phone number is asked from intake when sending; until then the case stands for the citizen.
                let notice = Notice { meta, kind: RecipientKind::Citizen, recipient: meta.case_id.clone(), template: "case_received", text };
                self.record(tx, notice, &t.case_received).await?;
            }
            "case.dispatched" => {
                let e: CaseDispatched = msg.decode()?;
                let meta = meta(&e.meta, msg)?;
                if e.unit_id.trim().is_empty() {
                    return Err(HandlerError::Reject(format!("case.dispatched {} names no unit_id", meta.event_id)));
                }
                let unit_name = self.units.name_or(&e.unit_id, &e.unit_name);
                let vars = [("district", district), ("case_no", &meta.case_no), ("title", &e.title), ("unit_name", unit_name)];
                let text = domain::render(&t.case_dispatched, &vars);
                let notice = Notice { meta, kind: RecipientKind::Unit, recipient: e.unit_id.clone(), template: "case_dispatched", text };
                self.record(tx, notice, &t.case_dispatched).await?;
            }
            "sla.breached" => {
                let e: SlaAlert = msg.decode()?;
                let meta = meta(&e.meta, msg)?;
                let unit_name = if e.unit_id.is_empty() { "尚未派单" } else { self.units.name_or(&e.unit_id, "") };
                let deadline = e.deadline.as_ref().and_then(from_proto).map(|d| domain::local_minute(d, self.timezone));
                let mut vars = vec![
                    ("district", district),
                    ("case_no", meta.case_no.as_str()),
                    ("unit_name", unit_name),
                    ("milestone", domain::milestone_zh(&e.milestone)),
                ];
                if let Some(d) = &deadline {
                    vars.push(("deadline", d));
                }
                let text = domain::render(&t.sla_breached, &vars);
                let notice = Notice {
                    meta,
                    kind: RecipientKind::Supervisor,
                    recipient: self.settings.supervisor.clone(),
                    template: "sla_breached",
                    text,
                };
                self.record(tx, notice, &t.sla_breached).await?;
            }
            other => return Err(HandlerError::Reject(format!("notification does not handle {other:?} events"))),
        }
        Ok(vec![])
    }

    fn committed(&self, _msg: &Incoming) {
        self.wake.notify_one();
    }
}

impl Notifier {
    /// Records one pending delivery per sink; an empty template means the district turned this
    /// notification off.
    async fn record(&self, tx: &mut Tx, n: Notice<'_>, template_text: &str) -> Result<(), HandlerError> {
        if template_text.trim().is_empty() {
            tracing::debug!(case_id = %n.meta.case_id, template = n.template, "template is empty: notification off");
            return Ok(());
        }
        let mut sinks = vec![Sink::Log];
        if self.settings.webhook_enabled() {
            sinks.push(Sink::Webhook);
        }
        let now = to_millis(self.clock.now());
        // The consume span's context: the delivery attempt later joins the case's trace under it.
        let trace = serde_json::to_string(&jiesu_kit::telemetry::current_context()).unwrap_or_else(|_| "{}".into());
        for sink in sinks {
            let d = NewDelivery {
                delivery_id: uuid::Uuid::now_v7().to_string(),
                case_id: n.meta.case_id.clone(),
                case_no: n.meta.case_no.clone(),
                event_id: n.meta.event_id.clone(),
                recipient_kind: n.kind,
                recipient: n.recipient.clone(),
                template: n.template,
                text: n.text.clone(),
                sink,
                created_at: now,
                trace_context: trace.clone(),
            };
            let fresh = store::insert_delivery(tx, &d).await.map_err(|e| HandlerError::Retry(e.to_string()))?;
            if fresh {
                tracing::info!(case_id = %d.case_id, recipient_kind = n.kind.as_str(), sink = sink.as_str(), template = n.template, "delivery recorded");
            } else {
                tracing::debug!(case_id = %d.case_id, event_id = %d.event_id, sink = sink.as_str(), "delivery already recorded for this event");
            }
        }
        Ok(())
    }
}

/// The event's meta, which every notification needs (case id and number, event id).
fn meta<'a>(meta: &'a Option<EventMeta>, msg: &Incoming) -> Result<&'a EventMeta, HandlerError> {
    let m = meta.as_ref().ok_or_else(|| HandlerError::Reject(format!("{} {} carries no meta", msg.kind, msg.message_id)))?;
    if m.case_id.trim().is_empty() || m.event_id.trim().is_empty() {
        return Err(HandlerError::Reject(format!("{} {}: meta.case_id and meta.event_id are required", msg.kind, msg.message_id)));
    }
    Ok(m)
}
