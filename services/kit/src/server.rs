//! The two listeners every service has: gRPC (its API, plus health and reflection) and the
//! admin HTTP port (`/healthz`, `/readyz`, `/metrics`, `/dead-letters`).

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{Error, consumer::Replay, db::Db, health::Readiness, messaging::Broker, metrics::Metrics};

/// Binds a listener, naming what failed to bind.
pub async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind { what, addr, source })
}

/// Serves `routes` (the service `service_name`) with gRPC health and reflection (v1 and
/// v1alpha, listing only what this port serves). Health follows readiness: `NOT_SERVING` while
/// any part of the service (a consumer, the relay) does not work.
pub async fn serve_grpc(
    listener: TcpListener,
    routes: tonic::service::Routes,
    service_name: &'static str,
    auth: crate::auth::AuthLayer,
    tls: Option<tonic::transport::ServerTlsConfig>,
    readiness: Readiness,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let mut ready = readiness.watch();
    let follow = cancel.clone();
    tokio::spawn(async move {
        loop {
            let status =
                if *ready.borrow_and_update() { tonic_health::ServingStatus::Serving } else { tonic_health::ServingStatus::NotServing };
            reporter.set_service_status(service_name, status).await;
            reporter.set_service_status("", status).await;
            tokio::select! {
                _ = follow.cancelled() => break,
                changed = ready.changed() => if changed.is_err() { break },
            }
        }
    });
    let names = [service_name, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];
    let reflection = || {
        names.iter().fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(jiesu_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
            |b, n| b.with_service_name(*n),
        )
    };
    let v1 = reflection().build_v1().map_err(|e| Error::Server(format!("gRPC reflection: {e}")))?;
    let v1alpha = reflection().build_v1alpha().map_err(|e| Error::Server(format!("gRPC reflection: {e}")))?;
    let routes = routes.add_service(health).add_service(v1).add_service(v1alpha);
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls).map_err(|e| Error::Server(format!("gRPC TLS: {e}")))?;
    }
    server
        .layer(crate::telemetry::GrpcServerLayer)
        .layer(auth)
        .add_routes(routes)
        // TCP_NODELAY: a gRPC answer is written as headers, data and trailers; without it Nagle's
        // algorithm holds the last small write until the caller's delayed ACK, 40 ms later.
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            cancel.cancelled_owned(),
        )
        .await
        .map_err(|e| Error::Server(format!("gRPC server stopped: {e}")))
}

#[derive(Clone)]
pub(crate) struct AdminState {
    pub db: Db,
    pub broker: Broker,
    pub metrics: Metrics,
    pub replayers: Arc<HashMap<String, Arc<dyn Replay>>>,
    pub readiness: Readiness,
    /// Who may list and replay dead letters: administrators.
    pub auth: crate::auth::AuthLayer,
}

/// Refuses an admin request without an administrator's token (where tokens are required).
fn operator(s: &AdminState, headers: &axum::http::HeaderMap) -> Result<(), (StatusCode, Json<serde_json::Value>)> {
    let header = headers.get(axum::http::header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("?"));
    match s.auth.operator(header) {
        Ok(who) => {
            if let Some(who) = who {
                tracing::info!(operator = %who.subject, "admin request");
            }
            Ok(())
        }
        Err((code, why)) => Err((code, Json(serde_json::json!({ "error": why })))),
    }
}

/// Serves the admin port until cancelled: over TLS when the district has certificates.
pub(crate) async fn serve_admin(
    listener: TcpListener,
    state: AdminState,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/dead-letters", get(list_dead_letters))
        .route("/dead-letters/{id}/replay", post(replay))
        .with_state(state);
    if let Some(tls) = tls {
        serve_tls(listener, app, tls, cancel).await;
        return Ok(());
    }
    axum::serve(crate::web::without_delay(listener), app)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
        .map_err(|e| Error::Server(format!("admin server stopped: {e}")))
}

/// HTTP/1.1 over TLS, one task per connection; a handshake that fails closes that connection only.
async fn serve_tls(listener: TcpListener, app: Router, tls: Arc<tokio_rustls::rustls::ServerConfig>, cancel: CancellationToken) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin port: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, app, cancel) = (acceptor.clone(), app.clone(), cancel.clone());
        tokio::spawn(async move {
            let stream = match acceptor.accept(stream).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "admin port: TLS handshake refused");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = conn => {}
            }
        });
    }
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    // Checked now as well as by the probe, so /readyz is never two seconds late.
    crate::host::check_dependencies(&s.db, &s.broker, &s.readiness).await;
    let problems = s.readiness.problems();
    if problems.is_empty() {
        (StatusCode::OK, Json(serde_json::json!({"ready": true})))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"ready": false, "problems": problems})))
    }
}

async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    if let Ok(n) = crate::outbox::backlog(&s.db).await {
        s.metrics.outbox_backlog.set(n);
    }
    ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], s.metrics.render())
}

async fn list_dead_letters(
    State(s): State<AdminState>,
    headers: axum::http::HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    if let Err(refused) = operator(&s, &headers) {
        return refused;
    }
    let all = q.get("all").is_some_and(|v| v == "true" || v == "1");
    match crate::consumer::dead_letters(&s.db, all).await {
        Ok(rows) => (StatusCode::OK, Json(serde_json::json!({ "dead_letters": rows }))),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({ "error": e.to_string() }))),
    }
}

async fn replay(State(s): State<AdminState>, headers: axum::http::HeaderMap, Path(id): Path<String>) -> impl IntoResponse {
    if let Err(refused) = operator(&s, &headers) {
        return refused;
    }
    let letter = match crate::consumer::dead_letter(&s.db, &id).await {
        Ok(Some(letter)) => letter,
        Ok(None) => {
            return (StatusCode::NOT_FOUND, Json(serde_json::json!({ "error": format!("no dead letter {id}") })));
        }
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({ "error": e.to_string() }))),
    };
    let Some(replayer) = s.replayers.get(&letter.consumer) else {
        return (StatusCode::CONFLICT, Json(serde_json::json!({ "error": format!("consumer {} is not running here", letter.consumer) })));
    };
    match replayer.replay(&id).await {
        Ok(outcome) => (StatusCode::OK, Json(serde_json::json!({ "replayed": id, "outcome": format!("{outcome:?}") }))),
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, Json(serde_json::json!({ "error": e }))),
    }
}
