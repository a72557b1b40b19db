//! The session (会话): a random id in a cookie that script cannot read and other sites cannot
//! send (`HttpOnly`, `SameSite=Strict`, `Secure` over HTTPS), its digest in the database, an
//! absolute lifetime and an idle timeout; and the CSRF token every form of the session carries.

use std::sync::Arc;

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use jiesu_kit::web::random_token;

use crate::{Settings, accounts::Account, pages::App};

/// The session cookie.
pub const COOKIE: &str = "jiesu_console";

/// The cookie of the sign-in form (its CSRF token before there is a session).
pub const PRE_COOKIE: &str = "jiesu_console_pre";

/// The value of cookie `name` in a request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for `name` = `value`, living `max_age` seconds (0: removed).
pub fn set_cookie(settings: &Settings, name: &str, value: &str, max_age: u64, same_site: &str) -> HeaderValue {
    let secure = if settings.secure_cookies() { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).expect("cookie values are base64url")
}

/// Constant-time comparison of two secrets.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh session id and CSRF token.
pub fn new_ids() -> (String, String) {
    (random_token::<32>(), random_token::<24>())
}

/// The signed-in person of a request, and their session.
#[derive(Debug, Clone)]
pub struct Staff {
    pub account: Account,
    pub session_id: String,
    pub csrf: String,
    /// "password" or "oidc".
    pub via: String,
}

impl Staff {
    /// Checks the CSRF token a form sent.
    pub fn check_csrf(&self, sent: &str) -> Result<(), Refused> {
        if same_secret(&self.csrf, sent) { Ok(()) } else { Err(Refused::Csrf) }
    }
}

/// Why a request gets no page.
#[derive(Debug)]
pub enum Refused {
    /// Not signed in (or the session ended): to the sign-in page, then back.
    SignIn {
        next: String,
        fragment: bool,
    },
    /// The form's CSRF token is missing or wrong.
    Csrf,
    Internal,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::SignIn { fragment: true, .. } => {
                // A fragment (a queue refreshing itself) cannot redirect the page: say so, and
                // the script reloads the page, which then goes to the sign-in.
                (axum::http::StatusCode::UNAUTHORIZED, "会话已结束，请重新登录").into_response()
            }
            Refused::SignIn { next, .. } => {
                let query = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
                Redirect::to(&format!("/signin?{query}")).into_response()
            }
            Refused::Csrf => crate::pages::message_page(
                axum::http::StatusCode::FORBIDDEN,
                "表单已失效",
                "这张表单不是本次登录打开的（或已过期），为安全起见未予处理。请返回刷新页面后重新提交。",
            ),
            Refused::Internal => crate::pages::message_page(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "系统繁忙",
                "工作台暂时无法读取登录信息，请稍后再试。",
            ),
        }
    }
}

impl FromRequestParts<Arc<App>> for Staff {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let next = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        let fragment = parts.headers.contains_key("x-jiesu-fragment") || parts.uri.path().starts_with("/events");
        let sign_in = || Refused::SignIn { next: next.clone(), fragment };
        let Some(id) = cookie(&parts.headers, COOKIE) else { return Err(sign_in()) };
        let now = chrono::Utc::now().timestamp_millis();
        let Some(session) = app.store.session(id).await.map_err(|_| Refused::Internal)? else { return Err(sign_in()) };
        let idle_ms = i64::try_from(app.settings.idle_timeout.as_millis()).unwrap_or(i64::MAX);
        if session.expires_at <= now || session.last_seen.saturating_add(idle_ms) <= now {
            let _ = app.store.end_session(id).await;
            return Err(sign_in());
        }
        let Some(account) = app.store.account(&session.username).await.map_err(|_| Refused::Internal)? else { return Err(sign_in()) };
        if account.disabled {
            let _ = app.store.end_session(id).await;
            return Err(sign_in());
        }
        // Not the event stream: a page open all day is not a person at work.
        // At most once a minute: a page load is not worth a write.
        if !parts.uri.path().starts_with("/events") && now - session.last_seen >= 60_000 {
            let _ = app.store.touch_session(id, now).await;
        }
        Ok(Staff { account, session_id: id.to_string(), csrf: session.csrf, via: session.via })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name_from_any_header() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; jiesu_console=abc"));
        h.append(header::COOKIE, HeaderValue::from_static("jiesu_console_pre=pre"));
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, PRE_COOKIE), Some("pre"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn cookies_are_secure_over_https() {
        let mut s = Settings::default();
        let v = set_cookie(&s, COOKIE, "x", 60, "Strict");
        assert_eq!(v.to_str().unwrap(), "jiesu_console=x; Path=/; HttpOnly; SameSite=Strict; Max-Age=60");
        s.public_url = "https://desk.example.gov.cn".into();
        assert!(set_cookie(&s, COOKIE, "x", 60, "Strict").to_str().unwrap().ends_with("; Secure"));
    }
}
