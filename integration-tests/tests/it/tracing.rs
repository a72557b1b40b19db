//! One case is one trace: the six binaries export their spans over OTLP to a collector of the
//! test's own. The spans that all six services record for one case — from the submission to
//! the unit's accept and resolve and the citizen's revisit, each a separate gRPC call with no
//! trace of its own — carry the trace id of the submission; the commands link the calls that
//! asked for them. The spans are ours (no HTTP/2 internals, no source paths) and follow the
//! OpenTelemetry messaging and RPC conventions.

use jiesu_proto::{Named, v1 as ev};
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Result;
use jiesu_integration_tests::cluster::{BINARIES, Cluster};
use jiesu_proto::v1::{Citizen, Location, Submission, SubmitRequest};
use jiesu_testkit::eventually;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
};

/// One span as exported.
#[derive(Clone, Debug)]
struct Exported {
    service: String,
    trace_id: String,
    name: String,
    kind: i32,
    attributes: BTreeMap<String, String>,
    linked_traces: Vec<String>,
}

/// Every span received.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Exported>>>);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut seen = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    let attributes = span
                        .attributes
                        .iter()
                        .map(|a| {
                            let v = match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                                Some(Value::StringValue(s)) => s.clone(),
                                Some(Value::IntValue(i)) => i.to_string(),
                                Some(other) => format!("{other:?}"),
                                None => String::new(),
                            };
                            (a.key.clone(), v)
                        })
                        .collect();
                    seen.push(Exported {
                        service: service.clone(),
                        trace_id: hex(&span.trace_id),
                        name: span.name.clone(),
                        kind: span.kind,
                        attributes,
                        linked_traces: span.links.iter().map(|l| hex(&l.trace_id)).collect(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_case_is_one_trace_across_the_services() -> Result<()> {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let c = Cluster::start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint), ("OTEL_BSP_SCHEDULE_DELAY", "100")]).await?;
    for (svc, _) in BINARIES {
        c.ready(svc).await?;
    }
    let receipt = c
        .intake()
        .await
        .submit(SubmitRequest {
            submission: Some(Submission {
                channel: "hotline".into(),
                channel_ref: "trace-1".into(),
                citizen: Some(Citizen { name: "吴女士".into(), phone: "13500135000".into(), anonymous: false }),
                title: "共享单车乱停".into(),
                description: "地铁站口共享单车乱停乱放，堵住了盲道。".into(),
                location: Some(Location { street: "st-dongmen".into(), ..Default::default() }),
                ..Default::default()
            }),
        })
        .await?
        .into_inner();
    c.dispatched(&receipt.case_id).await?;

    // The trace id the submission started, as carried by its case.received event.
    let events = c.events().await?;
    let received =
        events.iter().find(|e| e.case_id == receipt.case_id && e.subject.ends_with(ev::CaseReceived::TYPE)).expect(ev::CaseReceived::TYPE);
    let trace_id = received.trace_id().expect("traceparent on case.received").to_string();

    // The unit accepts and resolves, the citizen is called back: three separate calls.
    c.walk_to_closed(&receipt.case_id).await?;

    // Every event of the case, from case.received to case.closed, is in the submission's trace.
    let events = c.events().await?;
    let of_case: Vec<_> = events.iter().filter(|e| e.case_id == receipt.case_id).collect();
    for kind in [
        ev::CaseReceived::TYPE,
        ev::CaseClassified::TYPE,
        ev::CaseDispatched::TYPE,
        ev::CaseAccepted::TYPE,
        ev::CaseResolved::TYPE,
        ev::RevisitRecorded::TYPE,
        ev::CaseClosed::TYPE,
    ] {
        let e = of_case.iter().find(|e| e.subject.ends_with(kind)).unwrap_or_else(|| panic!("no {kind} for the case"));
        assert_eq!(e.trace_id(), Some(trace_id.as_str()), "{kind} is in another trace");
    }

    let want = ["jiesu-intake", "jiesu-classification", "jiesu-dispatch", "jiesu-sla-timer", "jiesu-notification", "jiesu-revisit"];
    let services = eventually("every service's spans of the case in one trace", Duration::from_secs(30), || async {
        let seen = collector.0.lock().unwrap().clone();
        let in_trace: BTreeSet<String> = seen.iter().filter(|s| s.trace_id == trace_id).map(|s| s.service.clone()).collect();
        let commands_linked = seen.iter().filter(|s| s.trace_id == trace_id && s.name.ends_with(" command")).count() >= 3;
        (want.iter().all(|w| in_trace.contains(*w)) && commands_linked).then_some(in_trace)
    })
    .await
    .map_err(|e| {
        let seen = collector.0.lock().unwrap().clone();
        let mut by_service: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &seen {
            if s.trace_id == trace_id {
                by_service.entry(s.service.clone()).or_default().push(s.name.clone());
            }
        }
        anyhow::anyhow!("{e}: spans of trace {trace_id} by service: {by_service:?}")
    })?;
    assert!(services.len() >= want.len());

    let spans = collector.0.lock().unwrap().clone();
    // A command joins the case's trace and links the call that asked for it (its own trace).
    let commands: Vec<_> = spans.iter().filter(|s| s.trace_id == trace_id && s.name.ends_with(" command")).collect();
    for command in &commands {
        assert!(command.linked_traces.iter().any(|t| *t != trace_id), "{command:?} links its caller's trace");
    }
    // Our spans only, following the conventions: a handful per step, not HTTP/2 frames.
    assert!(spans.len() < 400, "{} spans exported for one case", spans.len());
    for s in &spans {
        assert!(!s.attributes.keys().any(|k| k.starts_with("code.")), "source locations exported: {s:?}");
        assert!(!s.name.starts_with("h2") && !s.name.contains("hyper"), "a library's internals: {s:?}");
    }
    const SERVER: i32 = 2;
    const CLIENT: i32 = 3;
    const PRODUCER: i32 = 4;
    const CONSUMER: i32 = 5;
    let kinds: BTreeSet<i32> = spans.iter().map(|s| s.kind).collect();
    for kind in [SERVER, CLIENT, PRODUCER, CONSUMER] {
        assert!(kinds.contains(&kind), "no span of kind {kind}: {kinds:?}");
    }
    for s in spans.iter().filter(|s| s.kind == SERVER || s.kind == CLIENT) {
        assert_eq!(s.attributes.get("rpc.system").map(String::as_str), Some("grpc"), "{s:?}");
        assert!(s.attributes.contains_key("rpc.service") && s.attributes.contains_key("rpc.method"), "{s:?}");
    }
    for s in spans.iter().filter(|s| s.kind == PRODUCER || s.kind == CONSUMER) {
        assert_eq!(s.attributes.get("messaging.system").map(String::as_str), Some("nats"), "{s:?}");
        assert!(s.attributes.contains_key("messaging.destination.name"), "{s:?}");
    }
    server.abort();
    Ok(())
}
