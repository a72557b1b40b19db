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
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(service_name(service)).build());
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
    // Log lines are escaped (see `EscapedWriter`): a title with a newline or a terminal escape
    // cannot forge a log line or recolour an operator's terminal.
    let fmt = if settings.log_format == "json" {
        tracing_subscriber::fmt::layer().json().with_current_span(true).with_writer(EscapedWriter).with_filter(filter).boxed()
    } else {
        tracing_subscriber::fmt::layer().with_target(false).with_ansi(false).with_writer(EscapedWriter).with_filter(filter).boxed()
    };
    // Our spans only: the libraries' own (HTTP/2 frames, connection pools) would drown a case's
    // trace, and source locations would carry the build machine's paths.
    let ours = tracing_subscriber::filter::filter_fn(|m| m.target().starts_with("jiesu"));
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_filter(ours);
    let _ = tracing_subscriber::registry().with(fmt).with(otel).try_init();
    Ok(TelemetryGuard { owner: true })
}

/// The name a service reports itself under: `jiesu-sla-timer`, `jiesu-dispatch`, …
pub fn service_name(service: &str) -> String {
    format!("jiesu-{}", service.replace('_', "-"))
}

/// Standard error output with every control character of a line escaped but its final newline.
#[derive(Clone, Copy, Debug, Default)]
pub struct EscapedWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for EscapedWriter {
    type Writer = EscapedLine;

    fn make_writer(&'a self) -> Self::Writer {
        EscapedLine
    }
}

/// One formatted log line on its way to standard error.
pub struct EscapedLine;

impl std::io::Write for EscapedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stderr().lock().write_all(escape_log(buf).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Escapes control characters (CR, LF, ESC, …) as `\u{..}` except a final newline.
pub fn escape_log(buf: &[u8]) -> String {
    let text = String::from_utf8_lossy(buf);
    let (body, newline) = match text.strip_suffix('\n') {
        Some(b) => (b, "\n"),
        None => (text.as_ref(), ""),
    };
    let mut out = String::with_capacity(body.len() + 1);
    for c in body.chars() {
        if c.is_control() {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out.push_str(newline);
    out
}

/// The span of handling one message: an OpenTelemetry CONSUMER span following the messaging
/// conventions, child of the producer's context carried in the message headers.
pub fn consumer_span(consumer: &str, msg: &crate::Incoming) -> tracing::Span {
    let case_id = msg.header(crate::messaging::header::CASE_ID).unwrap_or_default();
    let span = tracing::info_span!(
        target: "jiesu_kit::consume",
        "process",
        otel.name = %format!("process {}", msg.subject),
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        messaging.system = "nats",
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = %msg.subject,
        messaging.consumer.group.name = %consumer,
        messaging.message.id = %msg.message_id,
        jiesu.case_id = %case_id,
        event_type = %msg.kind,
    );
    set_parent(&span, |k| msg.header(k));
    span
}

/// The span of publishing one message: an OpenTelemetry PRODUCER span, child of the context the
/// message was written with.
pub fn producer_span(subject: &str, message_id: &str, headers: &BTreeMap<String, String>) -> tracing::Span {
    let span = tracing::info_span!(
        target: "jiesu_kit::publish",
        "publish",
        otel.name = %format!("publish {subject}"),
        otel.kind = "producer",
        otel.status_code = tracing::field::Empty,
        messaging.system = "nats",
        messaging.operation.type = "send",
        messaging.operation.name = "publish",
        messaging.destination.name = %subject,
        messaging.message.id = %message_id,
    );
    set_parent(&span, |k| headers.get(k).map(String::as_str));
    span
}

/// Marks the current span failed, with the error's text.
pub fn record_error(e: &dyn std::fmt::Display) {
    let span = tracing::Span::current();
    span.record("otel.status_code", "ERROR");
    span.set_status(opentelemetry::trace::Status::error(e.to_string()));
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
    let pairs: BTreeMap<String, String> =
        ["traceparent", "tracestate"].into_iter().filter_map(|k| get(k).map(|v| (k.to_string(), v.to_string()))).collect();
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

/// The server side: one SERVER span per gRPC call, following the RPC conventions, child of the
/// caller's context; its status is the call's gRPC status.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcServerLayer;

impl<S> tower_layer::Layer<S> for GrpcServerLayer {
    type Service = GrpcSpan<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcSpan { inner, kind: "server" }
    }
}

/// The client side: one CLIENT span per call, whose context the call carries to the server.
pub fn traced_channel(channel: tonic::transport::Channel) -> GrpcSpan<tonic::transport::Channel> {
    GrpcSpan { inner: channel, kind: "client" }
}

/// A gRPC service or channel wrapped in SERVER or CLIENT spans.
#[derive(Clone, Debug)]
pub struct GrpcSpan<S> {
    inner: S,
    kind: &'static str,
}

/// `/jiesu.v1.DispatchService/Accept` → (`jiesu.v1.DispatchService`, `Accept`).
fn rpc_names(path: &str) -> (&str, &str) {
    path.trim_start_matches('/').split_once('/').unwrap_or((path, ""))
}

fn grpc_span(kind: &'static str, path: &str) -> tracing::Span {
    let (service, method) = rpc_names(path);
    tracing::info_span!(
        target: "jiesu_kit::grpc",
        "rpc",
        otel.name = %format!("{service}/{method}"),
        otel.kind = kind,
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = tracing::field::Empty,
    )
}

/// The gRPC status of a unary response: in its headers when it failed at once, else OK.
fn record_status(span: &tracing::Span, kind: &str, headers: &http::HeaderMap) {
    let code = headers.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok()).unwrap_or(0);
    span.record("rpc.grpc.status_code", code);
    // Server spans count only server faults as errors; client spans every non-OK status.
    let error = match kind {
        "server" => matches!(code, 2 | 4 | 12 | 13 | 14 | 15),
        _ => code != 0,
    };
    if error {
        span.record("otel.status_code", "ERROR");
    }
}

impl<S, B, R> tower_service::Service<http::Request<B>> for GrpcSpan<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        use tracing::Instrument;
        let kind = self.kind;
        let span = grpc_span(kind, req.uri().path());
        if kind == "server" {
            set_parent(&span, |k| req.headers().get(k).and_then(|v| v.to_str().ok()));
        } else {
            let _entered = span.enter();
            for (k, v) in current_context() {
                if let (Ok(name), Ok(value)) = (http::HeaderName::try_from(k), http::HeaderValue::try_from(v)) {
                    req.headers_mut().insert(name, value);
                }
            }
        }
        let fut = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        let outer = span.clone();
        Box::pin(
            async move {
                let result = fut.await;
                match &result {
                    Ok(response) => record_status(&outer, kind, response.headers()),
                    Err(_) => {
                        outer.record("otel.status_code", "ERROR");
                    }
                }
                result
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_cannot_be_forged() {
        assert_eq!(escape_log(b"title=a\nFAKE line\x1b[31m\n"), "title=a\\u{a}FAKE line\\u{1b}[31m\n");
        assert_eq!(escape_log("正常\n".as_bytes()), "正常\n");
    }

    #[test]
    fn rpc_names_split_the_path() {
        assert_eq!(rpc_names("/jiesu.v1.DispatchService/Accept"), ("jiesu.v1.DispatchService", "Accept"));
        assert_eq!(service_name("sla_timer"), "jiesu-sla-timer");
    }
}
