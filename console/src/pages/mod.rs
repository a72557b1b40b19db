//! The routes. Every page but the sign-in needs a session ([`Staff`]); every form carries the
//! session's CSRF token; every answer carries the kit's security headers and is never cached.

mod actions;
mod admin;
mod case;
mod dashboard;
mod queues;
mod signin;

use std::{convert::Infallible, sync::Arc, time::Duration};

use askama::Template;
use axum::{
    Router,
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{
        Html, IntoResponse, Redirect, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::Stream;
use jiesu_kit::auth::Role;
use serde::Deserialize;

use crate::{Settings, live::Live, oidc::Provider, services::Services, session::Staff, store::Store};

pub use actions::ActionKind;

/// Everything the pages share.
pub struct App {
    pub district: jiesu_kit::config::District,
    pub settings: Settings,
    pub store: Store,
    pub services: Services,
    pub live: Live,
    pub oidc: Option<Arc<Provider>>,
    /// The channels' names by id (热线, 书记信箱…), from the district's channel registry.
    pub channels: std::collections::BTreeMap<String, String>,
    /// Sign-in attempts per client address, across accounts (against guessing many accounts).
    pub attempts: std::sync::Mutex<jiesu_kit::rate::RateLimiter>,
}

type AppState = State<Arc<App>>;

/// The routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(queues::home))
        .route("/queues/{id}", get(queues::fragment))
        .route("/events", get(events))
        .route("/find", get(find))
        .route("/case/{no}", get(case::show))
        .route("/case/{no}/reveal", post(case::reveal))
        .route("/case/{no}/act/{action}", post(case::act))
        .route("/case/{no}/attachment/{sha}", get(case::attachment))
        .route("/dashboard", get(dashboard::show))
        .route("/admin/accounts", get(admin::list).post(admin::create))
        .route("/admin/accounts/{username}", get(admin::edit).post(admin::update))
        .route("/admin/accounts/{username}/disabled", post(admin::set_disabled))
        .route("/admin/audit", get(admin::audit))
        .route("/signin", get(signin::form).post(signin::submit))
        .route("/signin/oidc", get(signin::oidc_depart))
        .route("/signin/oidc/callback", get(signin::oidc_arrive))
        .route("/signout", post(signin::sign_out))
        .route("/assets/console.css", get(|| asset("text/css; charset=utf-8", include_str!("../../assets/console.css"))))
        .route("/assets/console.js", get(|| asset("text/javascript; charset=utf-8", include_str!("../../assets/console.js"))))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(256 * 1024))
        .layer(axum::middleware::map_response(no_store))
        .layer(axum::middleware::map_response(jiesu_kit::web::security_headers))
        .with_state(app)
}

/// Pages hold what a person may see: never kept by a browser cache or a proxy.
async fn no_store(mut response: Response) -> Response {
    if !response.headers().contains_key(header::CACHE_CONTROL) {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

/// What every page's frame shows: the district, the person, the navigation.
pub struct Chrome {
    pub district: String,
    pub signed_in: bool,
    pub name: String,
    pub roles: String,
    pub unit: String,
    pub csrf: String,
    pub admin: bool,
    pub current: &'static str,
}

impl Chrome {
    pub fn of(app: &App, staff: &Staff, current: &'static str) -> Self {
        Self {
            district: app.district.name.clone(),
            signed_in: true,
            name: staff.account.name.clone(),
            roles: staff.account.roles_zh(),
            unit: staff.account.unit.clone().unwrap_or_default(),
            csrf: staff.csrf.clone(),
            admin: staff.account.has(Role::Administrator),
            current,
        }
    }

    pub fn signed_out(district: &str) -> Self {
        Self {
            district: district.to_string(),
            signed_in: false,
            name: String::new(),
            roles: String::new(),
            unit: String::new(),
            csrf: String::new(),
            admin: false,
            current: "",
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    chrome: Chrome,
    heading: String,
    message: String,
}

/// A page that only says something (an error, a refusal), without the person's navigation.
pub fn message_page(status: StatusCode, heading: &str, message: &str) -> Response {
    let page = MessagePage { chrome: Chrome::signed_out(""), heading: heading.into(), message: message.into() };
    render(status, &page)
}

/// Renders a template; a template that fails is a 500 with a plain message.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a page");
            (StatusCode::INTERNAL_SERVER_ERROR, "页面生成失败").into_response()
        }
    }
}

async fn not_found() -> Response {
    message_page(StatusCode::NOT_FOUND, "页面不存在", "没有这个页面。")
}

#[derive(Deserialize)]
struct FindQuery {
    #[serde(default)]
    no: String,
}

/// The case-number search: straight to the case page.
async fn find(_staff: Staff, Query(q): Query<FindQuery>) -> Response {
    let no: String = q.no.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    if no.is_empty() {
        return Redirect::to("/").into_response();
    }
    Redirect::to(&format!("/case/{}", no.to_ascii_uppercase())).into_response()
}

/// Server-sent events: `change` when the events say something changed (gathered over
/// [`crate::live::GATHER`]), a comment every 20 s to keep proxies from closing the stream.
async fn events(_signed_in: Staff, State(app): AppState) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut signals = app.live.subscribe();
    let stream = async_stream(move |tx| async move {
        loop {
            match signals.recv().await {
                Ok(kind) => {
                    tokio::time::sleep(crate::live::GATHER).await;
                    // What came meanwhile is part of this refresh.
                    while signals.try_recv().is_ok() {}
                    if tx.send(Ok(Event::default().event("change").data(kind))).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(20)))
}

/// A stream fed by a task, ending when the browser goes away.
fn async_stream<F, Fut>(body: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(body(tx));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

/// The client's address, for the audit and the sign-in limits.
pub fn client(app: &App, addr: std::net::SocketAddr, headers: &axum::http::HeaderMap) -> String {
    jiesu_kit::web::client_address(app.settings.behind_proxy, addr, headers)
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
