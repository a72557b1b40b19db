//! One trace per case (一案一链路): every service remembers the trace context a case's messages
//! came with, and a later command on the case — a unit accepting or resolving it, a revisit, a
//! timer firing — writes its events under a span of that trace, linked to the caller's own
//! trace. So a case is one trace from submission to its last revisit, however many separate
//! calls moved it along.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    Error,
    db::{Db, Tx},
    messaging::header,
    time::to_millis,
    with_tx,
};

/// Remembers the trace context in `headers` for `case_id`, unless one is known already.
pub(crate) async fn remember(tx: &mut Tx, case_id: &str, traceparent: &str, tracestate: &str, now: DateTime<Utc>) -> Result<(), Error> {
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO case_traces (case_id, traceparent, tracestate, seen_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (case_id) DO NOTHING")
        .bind(case_id).bind(traceparent).bind(tracestate).bind(to_millis(now))
        .execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// The W3C headers of the case's trace, if this service has seen the case.
pub(crate) async fn recall(tx: &mut Tx, case_id: &str) -> Result<Option<BTreeMap<String, String>>, Error> {
    let row: Option<(String, String)> = with_tx!(tx, conn => sqlx::query_as(
        "SELECT traceparent, tracestate FROM case_traces WHERE case_id = $1")
        .bind(case_id).fetch_optional(conn).await)?;
    Ok(row.map(|(traceparent, tracestate)| {
        let mut h = BTreeMap::from([(header::TRACEPARENT.to_string(), traceparent)]);
        if !tracestate.is_empty() {
            h.insert("tracestate".to_string(), tracestate);
        }
        h
    }))
}

/// Forgets the cases last seen longer ago than `retention`; returns how many.
pub(crate) async fn purge(db: &Db, retention: Duration, now: DateTime<Utc>) -> Result<u64, Error> {
    let before = to_millis(now) - retention.as_millis() as i64;
    let mut tx = db.begin().await?;
    let n = with_tx!(&mut tx, conn => sqlx::query("DELETE FROM case_traces WHERE seen_at < $1")
        .bind(before).execute(conn).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(n)
}

/// The span a command's effects on a case are written under: a child of the case's trace
/// (`case_trace`), linked to the span of the call that asked for them.
pub(crate) fn command_span(service: &str, case_id: &str, case_trace: &BTreeMap<String, String>) -> tracing::Span {
    let caller = tracing::Span::current().context().span().span_context().clone();
    let span = tracing::info_span!(
        target: "jiesu_kit::command",
        "command",
        otel.name = %format!("{service} command"),
        otel.kind = "internal",
        jiesu.case_id = %case_id,
    );
    crate::telemetry::set_parent(&span, |k| case_trace.get(k).map(String::as_str));
    span.add_link(caller);
    span
}
