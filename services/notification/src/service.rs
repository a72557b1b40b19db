//! Notification's use cases: the events someone must hear of become pending deliveries, one per
//! sink, recorded in the consumer's transaction. Nothing is sent here — the worker does that
//! after the commit.

use std::sync::Arc;

use jiesu_kit::{Work, time::from_proto};
use jiesu_proto::{
    Event,
    v1::{CaseAssistAdded, CaseClosed, CaseDispatched, CaseEscalated, CaseReceived, CaseReturned, EventMeta, SlaBreached},
};
use jiesu_reference::{Organisation, milestone_zh};

use crate::{
    Error, Settings,
    domain::{self, RecipientKind, Sink},
    store::{self, NewDelivery},
};

/// Turns events into pending deliveries and wakes the delivery worker once they are committed.
pub struct Notifier {
    pub settings: Settings,
    /// The district's name, for `{district}`.
    pub district_name: String,
    pub timezone: chrono_tz::Tz,
    pub units: Arc<Organisation>,
}

/// A notification decided from an event, before it is split by sink.
struct Notice<'a> {
    meta: &'a EventMeta,
    kind: RecipientKind,
    recipient: String,
    template: &'static str,
    text: String,
}

impl Notifier {
    /// 受理告知: the citizen hears their case number.
    pub async fn on_received(&self, work: &mut Work<'_>, e: &CaseReceived) -> Result<(), Error> {
        let (district, t, meta) = (self.district_name.as_str(), &self.settings.templates, meta(e));
        if !e.has_contact {
            tracing::debug!(case_id = %meta.case_id, "no phone number to tell the citizen on");
            return Ok(());
        }
        let vars = [("district", district), ("case_no", &meta.case_no), ("title", &e.title)];
        let text = domain::render(&t.case_received, &vars);
        // The phone number is asked from intake when sending; until then the case stands for the citizen.
        let notice = Notice { meta, kind: RecipientKind::Citizen, recipient: meta.case_id.clone(), template: "case_received", text };
        self.record(work, notice, &t.case_received).await
    }

    /// 派单通知: the unit hears it owns a case.
    pub async fn on_dispatched(&self, work: &mut Work<'_>, e: &CaseDispatched) -> Result<(), Error> {
        let (district, t, meta) = (self.district_name.as_str(), &self.settings.templates, meta(e));
        if e.unit_id.trim().is_empty() {
            return Err(Error::BadEvent(format!("case.dispatched {} names no unit_id", meta.event_id)));
        }
        let unit_name = self.units.name_or(&e.unit_id, &e.unit_name);
        let vars = [("district", district), ("case_no", &meta.case_no), ("title", &e.title), ("unit_name", unit_name)];
        let text = domain::render(&t.case_dispatched, &vars);
        let notice = Notice { meta, kind: RecipientKind::Unit, recipient: e.unit_id.clone(), template: "case_dispatched", text };
        self.record(work, notice, &t.case_dispatched).await
    }

    /// 超时督办: the supervisor hears a limit was passed.
    pub async fn on_breached(&self, work: &mut Work<'_>, e: &SlaBreached) -> Result<(), Error> {
        let (district, t, meta) = (self.district_name.as_str(), &self.settings.templates, meta(e));
        let unit_name = if e.unit_id.is_empty() { "尚未派单" } else { self.units.name_or(&e.unit_id, "") };
        let deadline = e.deadline.as_ref().and_then(from_proto).map(|d| domain::local_minute(d, self.timezone));
        let mut vars = vec![
            ("district", district),
            ("case_no", meta.case_no.as_str()),
            ("unit_name", unit_name),
            ("milestone", if e.milestone_name.is_empty() { milestone_zh(&e.milestone) } else { &e.milestone_name }),
        ];
        if let Some(d) = &deadline {
            vars.push(("deadline", d));
        }
        let text = domain::render(&t.sla_breached, &vars);
        let notice =
            Notice { meta, kind: RecipientKind::Supervisor, recipient: self.settings.supervisor.clone(), template: "sla_breached", text };
        self.record(work, notice, &t.sla_breached).await
    }

    /// The escalation ladder's first rungs (预警/超时): the answerable unit hears of a limit turning
    /// yellow or red; a red one goes to the supervisor too ([`Self::on_breached`]). A clock
    /// before dispatch has no unit to tell.
    pub async fn on_sla_for_unit(&self, work: &mut Work<'_>, e: &SlaBreached, warning: bool) -> Result<(), Error> {
        let (district, t, meta) = (self.district_name.as_str(), &self.settings.templates, meta(e));
        if e.unit_id.trim().is_empty() {
            return Ok(());
        }
        let unit_name = self.units.name_or(&e.unit_id, "");
        let deadline = e.deadline.as_ref().and_then(from_proto).map(|d| domain::local_minute(d, self.timezone)).unwrap_or_default();
        let vars = [
            ("district", district),
            ("case_no", meta.case_no.as_str()),
            ("unit_name", unit_name),
            ("milestone", if e.milestone_name.is_empty() { milestone_zh(&e.milestone) } else { &e.milestone_name }),
            ("deadline", deadline.as_str()),
        ];
        let (template, name) =
            if warning { (&t.sla_warning_unit, "sla_warning_unit") } else { (&t.sla_breached_unit, "sla_breached_unit") };
        let text = domain::render(template, &vars);
        let notice = Notice { meta, kind: RecipientKind::Unit, recipient: e.unit_id.clone(), template: name, text };
        self.record(work, notice, template).await
    }

    /// 协办通知: an assisting unit called in hears what is asked of it and by when.
    pub async fn on_assist_added(&self, work: &mut Work<'_>, e: &CaseAssistAdded) -> Result<(), Error> {
        let (district, t, meta) = (self.district_name.as_str(), &self.settings.templates, meta(e));
        let Some(part) = e.part.as_ref().filter(|p| !p.unit_id.trim().is_empty()) else {
            return Err(Error::BadEvent(format!("case.assist_added {} names no assisting unit", meta.event_id)));
        };
        let unit_name = self.units.name_or(&part.unit_id, &part.unit_name);
        let deadline = part.deadline.as_ref().and_then(from_proto).map(|d| domain::local_minute(d, self.timezone)).unwrap_or_default();
        let vars = [("district", district), ("case_no", &meta.case_no), ("unit_name", unit_name), ("deadline", &deadline)];
        let text = domain::render(&t.assist_added, &vars);
        let notice = Notice { meta, kind: RecipientKind::Unit, recipient: part.unit_id.clone(), template: "assist_added", text };
        self.record(work, notice, &t.assist_added).await
    }

    /// 退回待审: the centre's desk hears a unit returned a case.
    pub async fn on_returned(&self, work: &mut Work<'_>, e: &CaseReturned) -> Result<(), Error> {
        let (district, t, meta) = (self.district_name.as_str(), &self.settings.templates, meta(e));
        let unit_name = self.units.name_or(&e.unit_id, "");
        let vars = [("district", district), ("case_no", &meta.case_no), ("unit_name", unit_name), ("text", &e.text)];
        let text = domain::render(&t.case_returned, &vars);
        let notice =
            Notice { meta, kind: RecipientKind::Supervisor, recipient: self.settings.supervisor.clone(), template: "case_returned", text };
        self.record(work, notice, &t.case_returned).await
    }

    /// 包案通知: the leader hears a case is theirs now.
    pub async fn on_escalated(&self, work: &mut Work<'_>, e: &CaseEscalated) -> Result<(), Error> {
        let (district, t, meta) = (self.district_name.as_str(), &self.settings.templates, meta(e));
        let unit_name = self.units.name_or(&e.unit_id, "");
        let vars = [("district", district), ("case_no", &meta.case_no), ("unit_name", unit_name), ("text", &e.reason)];
        let text = domain::render(&t.case_escalated, &vars);
        let notice = Notice { meta, kind: RecipientKind::Leader, recipient: e.leader_id.clone(), template: "case_escalated", text };
        self.record(work, notice, &t.case_escalated).await
    }

    /// 不合理诉求说明: a citizen whose request the centre closed as unreasonable is told why. A
    /// case closed after its revisit needs no message: the revisit was the conversation.
    pub async fn on_closed(&self, work: &mut Work<'_>, e: &CaseClosed) -> Result<(), Error> {
        if !e.unreasonable {
            return Ok(());
        }
        let (district, t, meta) = (self.district_name.as_str(), &self.settings.templates, meta(e));
        let vars = [("district", district), ("case_no", &meta.case_no), ("text", &e.explanation)];
        let text = domain::render(&t.closed_unreasonable, &vars);
        let notice = Notice { meta, kind: RecipientKind::Citizen, recipient: meta.case_id.clone(), template: "closed_unreasonable", text };
        self.record(work, notice, &t.closed_unreasonable).await
    }

    /// Records one pending delivery per sink; an empty template means the district turned this
    /// notification off.
    async fn record(&self, work: &mut Work<'_>, n: Notice<'_>, template_text: &str) -> Result<(), Error> {
        if template_text.trim().is_empty() {
            tracing::debug!(case_id = %n.meta.case_id, template = n.template, "template is empty: notification off");
            return Ok(());
        }
        let mut sinks = vec![Sink::Log];
        if self.settings.webhook_enabled() {
            sinks.push(Sink::Webhook);
        }
        let now = work.now_millis();
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
            let fresh = store::insert_delivery(work.tx, &d).await?;
            if fresh {
                tracing::info!(case_id = %d.case_id, recipient_kind = n.kind.as_str(), sink = sink.as_str(), template = n.template, "delivery recorded");
            } else {
                tracing::debug!(case_id = %d.case_id, event_id = %d.event_id, sink = sink.as_str(), "delivery already recorded for this event");
            }
        }
        Ok(())
    }
}

/// The event's meta (checked by the kit: case id, case number and event id are there).
fn meta(e: &impl Event) -> &EventMeta {
    e.meta().expect("the kit checked the meta")
}
