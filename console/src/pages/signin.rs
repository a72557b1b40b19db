//! Signing in and out: the password form (with the account's lockout and a limit per client
//! address against guessing across accounts), the identity platform's round trip, sign-out.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use askama::Template;
use axum::{
    Form,
    extract::{ConnectInfo, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{App, AppState, Chrome, client, message_page, now_ms, render};
use crate::{
    accounts::{self, Attempt, Lockout},
    session::{self, COOKIE, PRE_COOKIE, Staff, cookie, same_secret, set_cookie},
};

/// The cookie that binds an identity-platform sign-in to the browser that started it. `Lax`:
/// it must come back on the platform's redirect, a navigation from another site.
const OIDC_COOKIE: &str = "jiesu_console_oidc";

/// Attempts one client address may make in [`ATTEMPT_WINDOW`], whatever the accounts.
const ATTEMPTS_PER_CLIENT: u32 = 30;
const ATTEMPT_WINDOW: Duration = Duration::from_secs(600);

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    chrome: Chrome,
    csrf: String,
    next: String,
    next_query: String,
    username: String,
    error: String,
    notice: String,
    oidc_button: String,
    max_failures: u32,
    lockout_minutes: u64,
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    ended: String,
}

/// Only a path of this site: never `//elsewhere` or `https://elsewhere` (an open redirect).
fn safe_next(next: &str) -> String {
    let ok = next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") && !next.chars().any(char::is_control);
    if ok { next.to_string() } else { "/".into() }
}

fn page(app: &App, csrf: &str, next: &str, username: &str, error: &str, notice: &str) -> SignInPage {
    SignInPage {
        chrome: Chrome::signed_out(&app.district.name),
        csrf: csrf.to_string(),
        next: next.to_string(),
        next_query: serde_urlencoded::to_string([("n", next)]).unwrap_or_default().trim_start_matches("n=").to_string(),
        username: username.to_string(),
        error: error.to_string(),
        notice: notice.to_string(),
        oidc_button: app.oidc.as_ref().map(|p| p.login.button.clone()).unwrap_or_default(),
        max_failures: app.settings.max_failures,
        lockout_minutes: app.settings.lockout.as_secs().div_ceil(60),
    }
}

/// The form. Its CSRF token is the value of a cookie of its own (double submit), as there is no
/// session yet.
pub async fn form(State(app): AppState, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(&q.next);
    let pre = cookie(&headers, PRE_COOKIE).map(str::to_string).unwrap_or_else(jiesu_kit::web::random_token::<24>);
    let notice = if q.ended == "1" { "你已退出登录。" } else { "" };
    let mut response = render(StatusCode::OK, &page(&app, &pre, &next, "", "", notice));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&app.settings, PRE_COOKIE, &pre, 7200, "Strict"));
    response
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn submit(
    State(app): AppState,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    let next = safe_next(&f.next);
    let who = client(&app, addr, &headers);
    let username = f.username.trim().to_ascii_lowercase();
    let Some(pre) = cookie(&headers, PRE_COOKIE).filter(|pre| same_secret(pre, &f.csrf)) else {
        return session::Refused::Csrf.into_response();
    };
    let again = |status: StatusCode, error: &str| render(status, &page(&app, pre, &next, &username, error, ""));
    let now = now_ms();
    let limited = app.attempts.lock().map(|mut r| r.hit(&who, ATTEMPTS_PER_CLIENT, ATTEMPT_WINDOW, chrono::Utc::now()).is_err());
    if limited.unwrap_or(true) {
        let _ = app.store.audit(now, "", "signin_refused", &username, "too many attempts from this address", &who).await;
        return again(StatusCode::TOO_MANY_REQUESTS, "登录尝试过于频繁，请稍后再试。");
    }
    let account = match app.store.account(&username).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the accounts");
            return again(StatusCode::SERVICE_UNAVAILABLE, "系统繁忙，请稍后再试。");
        }
    };
    // argon2 takes tens of milliseconds of one core: off the async threads.
    let (hash, password) = (account.as_ref().and_then(|a| a.password_hash.clone()), f.password.clone());
    let ok = tokio::task::spawn_blocking(move || accounts::verify_password(hash.as_deref(), &password)).await.unwrap_or(false);
    let policy = Lockout {
        max_failures: app.settings.max_failures,
        duration_ms: i64::try_from(app.settings.lockout.as_millis()).unwrap_or(i64::MAX),
    };
    let (outcome, failures, locked_until) = accounts::attempt(account.as_ref(), ok, now, policy);
    if let Some(a) = &account
        && (a.failures != failures || a.locked_until != locked_until)
        && let Err(e) = app.store.record_attempt(&a.username, failures, locked_until).await
    {
        tracing::error!(error = %e, "cannot record a sign-in attempt");
    }
    let clock = crate::view::Clock::new(&app.district.timezone);
    let until_text = |until: i64| {
        let t = jiesu_kit::time::millis_to_proto(until);
        clock.full(Some(&t))
    };
    let refused = |detail: &'static str| {
        let app = app.clone();
        let (username, who) = (username.clone(), who.clone());
        async move {
            let _ = app.store.audit(now, "", "signin_refused", &username, detail, &who).await;
        }
    };
    match outcome {
        Attempt::Accepted => {
            let Some(account) = account else { return again(StatusCode::UNAUTHORIZED, "用户名或密码错误。") };
            open_session(&app, &account.username, "password", &who, &next).await
        }
        Attempt::Refused => {
            refused("wrong username or password").await;
            again(StatusCode::UNAUTHORIZED, "用户名或密码错误。")
        }
        Attempt::LockedNow { until } => {
            refused("wrong password: locked").await;
            again(StatusCode::UNAUTHORIZED, &format!("用户名或密码错误。连续输错次数过多，账号已锁定至 {}。", until_text(until)))
        }
        Attempt::Locked { until } => {
            refused("locked").await;
            again(StatusCode::FORBIDDEN, &format!("账号已锁定至 {}，请届时再试或联系系统管理员解锁。", until_text(until)))
        }
        Attempt::Disabled => {
            refused("disabled").await;
            again(StatusCode::FORBIDDEN, "账号已停用，请联系系统管理员。")
        }
    }
}

/// A new session for `username`: the cookie set, the sign-in audited, on to `next`.
async fn open_session(app: &Arc<App>, username: &str, via: &str, who: &str, next: &str) -> Response {
    let (id, csrf) = session::new_ids();
    let now = now_ms();
    let ttl_ms = i64::try_from(app.settings.session_ttl.as_millis()).unwrap_or(i64::MAX);
    if let Err(e) = app.store.create_session(&id, username, &csrf, via, now, now.saturating_add(ttl_ms)).await {
        tracing::error!(error = %e, "cannot open a session");
        return message_page(StatusCode::SERVICE_UNAVAILABLE, "系统繁忙", "暂时无法登录，请稍后再试。");
    }
    let _ = app.store.audit(now, username, "signin", username, via, who).await;
    let mut response = Redirect::to(next).into_response();
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(&app.settings, COOKIE, &id, app.settings.session_ttl.as_secs(), "Strict"));
    h.append(header::SET_COOKIE, set_cookie(&app.settings, PRE_COOKIE, "", 0, "Strict"));
    response
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    staff: Staff,
    State(app): AppState,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = staff.check_csrf(&f.csrf) {
        return refused.into_response();
    }
    let _ = app.store.end_session(&staff.session_id).await;
    let _ = app.store.audit(now_ms(), &staff.account.username, "signout", &staff.account.username, "", &client(&app, addr, &headers)).await;
    let mut response = Redirect::to("/signin?ended=1").into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&app.settings, COOKIE, "", 0, "Strict"));
    response
}

/// To the identity platform, with a fresh state, PKCE challenge and nonce.
pub async fn oidc_depart(State(app): AppState, Query(q): Query<NextQuery>) -> Response {
    let Some(provider) = &app.oidc else {
        return message_page(StatusCode::NOT_FOUND, "未启用", "本区未启用统一身份认证登录。");
    };
    let departure = provider.depart();
    let next = safe_next(&q.next);
    // The verifier and nonce stay here; the next page rides with the state.
    let kept = format!("{}\n{}", departure.verifier, next);
    if let Err(e) = app.store.put_oidc_pending(&departure.state, &kept, &departure.nonce, now_ms()).await {
        tracing::error!(error = %e, "cannot keep a pending sign-in");
        return message_page(StatusCode::SERVICE_UNAVAILABLE, "系统繁忙", "暂时无法登录，请稍后再试。");
    }
    let mut response = Redirect::to(&departure.url).into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&app.settings, OIDC_COOKIE, &departure.state, 600, "Lax"));
    response
}

#[derive(Deserialize)]
pub struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
}

/// Back from the identity platform: the state is this browser's and fresh, the code gives an
/// ID token that verifies and carries this sign-in's nonce, and the person has an account.
pub async fn oidc_arrive(
    State(app): AppState,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(cb): Query<Callback>,
) -> Response {
    let Some(provider) = app.oidc.clone() else {
        return message_page(StatusCode::NOT_FOUND, "未启用", "本区未启用统一身份认证登录。");
    };
    let who = client(&app, addr, &headers);
    let now = now_ms();
    let failed =
        |why: &str| message_page(StatusCode::UNAUTHORIZED, "登录未完成", &format!("统一身份认证登录未完成：{why}请返回登录页重试。"));
    if !cb.error.is_empty() {
        return failed("身份认证平台拒绝了登录。");
    }
    let bound = cookie(&headers, OIDC_COOKIE).is_some_and(|c| same_secret(c, &cb.state));
    if !bound || cb.state.is_empty() || cb.code.is_empty() {
        let _ = app.store.audit(now, "", "signin_refused", "", "oidc: state not of this browser", &who).await;
        return failed("登录请求不是从本浏览器发起的，或已过期。");
    }
    let Ok(Some((kept, nonce))) = app.store.take_oidc_pending(&cb.state, now).await else {
        return failed("登录请求已使用过或已过期。");
    };
    let (verifier, next) = kept.split_once('\n').unwrap_or((kept.as_str(), "/"));
    let claims = match provider.arrive(&cb.code, verifier, &nonce).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "an identity-platform sign-in failed");
            let _ = app.store.audit(now, "", "signin_refused", "", &format!("oidc: {e}"), &who).await;
            return failed("身份认证平台的应答未通过校验。");
        }
    };
    let account = match app.store.account_by_oidc(&claims.sub).await {
        Ok(Some(a)) => Some(a),
        Ok(None) => match provider.username_of(&claims) {
            // First time: the account of that username, if it is not linked to someone else.
            Some(username) => match app.store.account(&username).await {
                Ok(Some(a)) if a.oidc_subject.is_none() => {
                    let _ = app.store.link_oidc(&a.username, &claims.sub, now).await;
                    Some(a)
                }
                _ => None,
            },
            None => None,
        },
        Err(_) => None,
    };
    let Some(account) = account else {
        let _ = app.store.audit(now, "", "signin_refused", "", "oidc: no account for this person", &who).await;
        return message_page(
            StatusCode::FORBIDDEN,
            "账号未开通",
            "你已通过统一身份认证，但本区工作台尚未为你开通账号。请联系系统管理员开通并分配角色。",
        );
    };
    if account.disabled {
        let _ = app.store.audit(now, "", "signin_refused", &account.username, "oidc: disabled", &who).await;
        return message_page(StatusCode::FORBIDDEN, "账号已停用", "账号已停用，请联系系统管理员。");
    }
    let mut response = open_session(&app, &account.username, "oidc", &who, &safe_next(next)).await;
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&app.settings, OIDC_COOKIE, "", 0, "Lax"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/case/DM1"), "/case/DM1");
        assert_eq!(safe_next("/queues/manual?x=1"), "/queues/manual?x=1");
        for bad in ["//evil.example", "https://evil.example", "/\\evil.example", "", "case", "/a\nb"] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }
}
