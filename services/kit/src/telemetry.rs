//! Logs and traces: `tracing` everywhere, exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set, with W3C trace context carried in NATS headers and gRPC metadata so that one case is
//! one trace across every service.
//!
//! Spans are always given OpenTelemetry ids, even with no exporter, so that the context still
//! crosses service boundaries and log lines can be joined by trace id.

use std::{collections::BTreeMap, sync::OnceLock};

use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::TracerProvider as _,
};
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracerProvider},
};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::{Error, config::TelemetrySettings};

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Flushes pending spans when dropped (when a service stops). The provider itself lives as
/// long as the process: tests run several services in one process, one after another.
#[must_use = "dropping the guard flushes trace export"]
pub struct TelemetryGuard {
    owner: bool,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if self.owner
            && let Some(p) = PROVIDER.get()
        {
            let _ = p.force_flush();
        }
    }
}

/// Flushes and stops trace export; the last thing a binary does.
pub fn shutdown() {
    if let Some(p) = PROVIDER.get() {
        let _ = p.force_flush();
        let _ = p.shutdown();
    }
}

/// Installs the global subscriber once per process (tests start several services in one
/// process: the first wins, the others share it).
pub fn init(service: &str, settings: &TelemetrySettings) -> Result<TelemetryGuard, Error> {
    if PROVIDER.get().is_some() {
        return Ok(TelemetryGuard { owner: false });
    }
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sample_ratio))))
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(format!("jiesu-{service}")).build());
    let exporting = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.is_empty());
    if exporting {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| Error::Telemetry(format!("OTLP exporter: {e}")))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer("jiesu");
    if PROVIDER.set(provider).is_err() {
        return Ok(TelemetryGuard { owner: false });
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_filter))
        .map_err(|e| Error::Telemetry(format!("log filter {:?}: {e}", settings.log_filter)))?;
    // The filter applies to the log output only: spans below the log level must still exist for
    // OpenTelemetry, or trace context would stop crossing services when logs are quiet.
    let fmt = if settings.log_format == "json" {
        tracing_subscriber::fmt::layer().json().with_current_span(true).with_filter(filter).boxed()
    } else {
        tracing_subscriber::fmt::layer().with_target(false).with_filter(filter).boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init();
    Ok(TelemetryGuard { owner: true })
}

/// The W3C headers (`traceparent`, `tracestate`) of the current span.
pub fn current_context() -> BTreeMap<String, String> {
    let mut carrier = Carrier(BTreeMap::new());
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut carrier);
    // An empty `tracestate` is noise on every message.
    carrier.0.retain(|_, v| !v.is_empty());
    carrier.0
}

/// Makes `span` a child of the context in `get(name)` (NATS headers, gRPC metadata…).
pub fn set_parent<'a>(span: &tracing::Span, get: impl Fn(&str) -> Option<&'a str>) {
    let pairs: BTreeMap<String, String> = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|k| get(k).map(|v| (k.to_string(), v.to_string())))
        .collect();
    if pairs.is_empty() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Carrier(pairs));
    let _ = span.set_parent(cx);
}

/// The trace id of the current span, for log lines and error messages.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

struct Carrier(BTreeMap<String, String>);

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// A gRPC client interceptor that sends the current trace context in the request metadata.
#[derive(Clone, Copy, Debug, Default)]
pub struct PropagateContext;

impl tonic::service::Interceptor for PropagateContext {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        for (k, v) in current_context() {
            if let (Ok(key), Ok(val)) = (
                tonic::metadata::MetadataKey::from_bytes(k.as_bytes()),
                tonic::metadata::MetadataValue::try_from(v.as_str()),
            ) {
                req.metadata_mut().insert(key, val);
            }
        }
        Ok(req)
    }
}

/// The server side: one span per gRPC call, child of the caller's context.
pub fn grpc_request_span(req: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!("grpc", rpc = %req.uri().path(), otel.kind = "server");
    set_parent(&span, |k| req.headers().get(k).and_then(|v| v.to_str().ok()));
    span
}
