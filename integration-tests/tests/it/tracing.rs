//! One case is one trace: the six binaries export their spans over OTLP to a collector of the
//! test's own, and the spans that intake, classification, dispatch, the SLA timer and
//! notification record for one submitted case all carry the trace id of the submission.

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

/// (service.name, trace id) of every span received.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<BTreeSet<(String, String)>>>);

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
                    let id: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    seen.insert((service.clone(), id));
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

    let c = Cluster::start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint), ("OTEL_BSP_SCHEDULE_DELAY", "100")])?;
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
    let received = events.iter().find(|e| e.case_id == receipt.case_id && e.subject.ends_with("case.received")).expect("case.received");
    let trace_id = received.trace_id().expect("traceparent on case.received").to_string();

    let want = ["jiesu-intake", "jiesu-classification", "jiesu-dispatch", "jiesu-sla-timer", "jiesu-notification"];
    let services = eventually("every service's spans of the case in one trace", Duration::from_secs(30), || async {
        let seen = collector.0.lock().unwrap().clone();
        let in_trace: BTreeSet<String> = seen.iter().filter(|(_, t)| *t == trace_id).map(|(s, _)| s.clone()).collect();
        want.iter().all(|w| in_trace.contains(*w)).then_some(in_trace)
    })
    .await
    .map_err(|e| {
        let seen = collector.0.lock().unwrap().clone();
        let mut by_service: BTreeMap<String, usize> = BTreeMap::new();
        for (s, t) in &seen {
            if *t == trace_id {
                *by_service.entry(s.clone()).or_default() += 1;
            }
        }
        anyhow::anyhow!(
            "{e}: spans of trace {trace_id} by service: {by_service:?}; all services: {:?}",
            seen.iter().map(|(s, _)| s).collect::<BTreeSet<_>>()
        )
    })?;
    assert!(services.len() >= want.len());
    server.abort();
    Ok(())
}
