//! Sign-in through the district's identity platform: OpenID Connect's authorisation code flow
//! with PKCE against a small platform of the test's own (real HTTP, real Ed25519-signed ID
//! tokens, its keys fetched from its JWKS URL) — and the ways it must fail: a state replayed or
//! from another browser, a token with the wrong nonce, a person without an account.

mod support;

use std::sync::{Arc, Mutex};

use axum::{
    Form, Json, Router,
    extract::{Query, State},
    response::{IntoResponse, Redirect},
    routing::{get, post},
};
use base64::Engine;
use jiesu_kit::auth::Role;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use support::{Desk, client};

const CLIENT_ID: &str = "jiesu-console";

/// What the platform remembers between the redirect and the token request.
#[derive(Default)]
struct Platform {
    issuer: String,
    kid: String,
    pem: String,
    jwk: serde_json::Value,
    /// code → (challenge, nonce, redirect_uri)
    codes: Vec<(String, String, String, String)>,
    /// Who signs in next.
    person: (String, String),
    /// Issue tokens with this nonce instead of the one asked for (an attack).
    forced_nonce: Option<String>,
}

type Shared = Arc<Mutex<Platform>>;

async fn authorize(State(p): State<Shared>, Query(q): Query<std::collections::HashMap<String, String>>) -> impl IntoResponse {
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256", "PKCE with S256, never plain");
    let code = format!("code-{}", q["state"].len() + p.lock().unwrap().codes.len());
    p.lock().unwrap().codes.push((code.clone(), q["code_challenge"].clone(), q["nonce"].clone(), q["redirect_uri"].clone()));
    Redirect::to(&format!("{}?code={code}&state={}", q["redirect_uri"], q["state"]))
}

async fn token(State(p): State<Shared>, Form(f): Form<std::collections::HashMap<String, String>>) -> axum::response::Response {
    let p = p.lock().unwrap();
    let Some((_, challenge, nonce, redirect)) = p.codes.iter().find(|(c, ..)| *c == f["code"]).cloned() else {
        return (StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": "invalid_grant"}))).into_response();
    };
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(f["code_verifier"].as_bytes()));
    if computed != challenge || f["redirect_uri"] != redirect || f["grant_type"] != "authorization_code" {
        return (StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": "invalid_grant"}))).into_response();
    }
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "iss": p.issuer, "aud": CLIENT_ID, "sub": p.person.0, "preferred_username": p.person.1,
        "nonce": p.forced_nonce.clone().unwrap_or(nonce), "iat": now, "exp": now + 300,
    });
    let id_token = jiesu_kit::auth::Signer::from_pem(&p.kid, &p.pem, &p.issuer, CLIENT_ID).unwrap().sign(&claims).unwrap();
    Json(serde_json::json!({"access_token": "opaque", "token_type": "Bearer", "id_token": id_token})).into_response()
}

async fn jwks(State(p): State<Shared>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"keys": [p.lock().unwrap().jwk.clone()]}))
}

/// The platform, listening; its base URL.
async fn platform() -> (Shared, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let kid = jiesu_testkit::unique_name("idp");
    let (pem, jwk) = jiesu_kit::auth::generate_key(&kid).unwrap();
    let shared: Shared = Arc::new(Mutex::new(Platform { issuer: base.clone(), kid, pem, jwk, ..Default::default() }));
    let app =
        Router::new().route("/authorize", get(authorize)).route("/token", post(token)).route("/jwks", get(jwks)).with_state(shared.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (shared, base)
}

fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_platform_signs_people_in_and_nobody_else() {
    let (idp, base) = platform().await;
    let desk = Desk::start_with(|c| {
        c.set("console.oidc.issuer", base.clone());
        c.set("console.oidc.client_id", CLIENT_ID);
        c.set("console.oidc.authorization_endpoint", format!("{base}/authorize"));
        c.set("console.oidc.token_endpoint", format!("{base}/token"));
        c.set("console.oidc.jwks_url", format!("{base}/jwks"));
    })
    .await;
    // An account the administrator made for this person, without a password of its own.
    let checked = jiesu_console::accounts::Checked {
        username: "wang.wu".into(),
        name: "王五".into(),
        roles: vec![Role::CentreAgent],
        unit: None,
        leader: None,
        password: None,
    };
    desk.console.store.create_account(&checked, None, 0).await.unwrap();
    idp.lock().unwrap().person = ("sso-4711".into(), "Wang.Wu".into());

    let page = client().get(desk.url("/signin")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("统一身份认证登录"), "the sign-in page offers the platform");

    // The whole round trip, as a browser follows it.
    let http = client();
    let depart = http.get(desk.url("/signin/oidc?next=%2Fdashboard")).send().await.unwrap();
    assert_eq!(depart.status(), StatusCode::SEE_OTHER);
    let to_idp = location(&depart);
    assert!(to_idp.starts_with(&format!("{base}/authorize?")) && to_idp.contains("code_challenge="), "{to_idp}");
    let back = location(&http.get(&to_idp).send().await.unwrap());
    assert!(back.starts_with(&desk.url("/signin/oidc/callback?code=")), "{back}");
    let arrived = http.get(&back).send().await.unwrap();
    assert_eq!(arrived.status(), StatusCode::SEE_OTHER, "{:?}", arrived.text().await);
    assert_eq!(location(&arrived), "/dashboard", "on to where they were going");
    let home = http.get(desk.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("王五") && home.contains("待人工派单"), "signed in with the account's roles");
    let linked = desk.console.store.account("wang.wu").await.unwrap().unwrap();
    assert_eq!(linked.oidc_subject.as_deref(), Some("sso-4711"), "linked by the platform's subject from now on");

    // The same answer again (a replay): the state was good once.
    let replay = client().get(&back).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    // The callback in a browser that did not start this sign-in (login CSRF): refused.
    let other = client();
    let depart = http.get(desk.url("/signin/oidc")).send().await.unwrap();
    let back = location(&http.get(location(&depart)).send().await.unwrap());
    let stolen = other.get(&back).send().await.unwrap();
    assert_eq!(stolen.status(), StatusCode::UNAUTHORIZED);
    assert!(stolen.text().await.unwrap().contains("不是从本浏览器发起"));

    // An ID token carrying another sign-in's nonce: refused.
    idp.lock().unwrap().forced_nonce = Some("someone-elses-nonce".into());
    let http = client();
    let depart = http.get(desk.url("/signin/oidc")).send().await.unwrap();
    let back = location(&http.get(location(&depart)).send().await.unwrap());
    let refused = http.get(&back).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(http.get(desk.url("/")).send().await.unwrap().status(), StatusCode::SEE_OTHER, "not signed in");
    idp.lock().unwrap().forced_nonce = None;

    // Someone the platform knows but the district gave no account: told to ask for one.
    idp.lock().unwrap().person = ("sso-9999".into(), "stranger".into());
    let http = client();
    let depart = http.get(desk.url("/signin/oidc")).send().await.unwrap();
    let back = location(&http.get(location(&depart)).send().await.unwrap());
    let unknown = http.get(&back).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::FORBIDDEN);
    assert!(unknown.text().await.unwrap().contains("账号未开通"));

    let log = desk.console.store.audit_log(50).await.unwrap();
    assert!(log.iter().any(|l| l.action == "signin" && l.detail == "oidc" && l.target == "wang.wu"));
    assert!(log.iter().filter(|l| l.action == "signin_refused").count() >= 3);
}
