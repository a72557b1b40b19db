//! Tokens of an OpenID Connect provider whose keys are fetched from its JWKS URL (统一身份认证):
//! verified against them, and still verified after the provider rotates to a new key.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use jiesu_kit::auth::{AuthError, AuthSettings, OidcSettings, Role, Signer, Verifier, generate_key};

const ISSUER: &str = "https://sso.example.gov.cn/realms/jiesu";

/// A provider's JWKS endpoint on loopback, serving whatever keys the test puts in it.
async fn provider(keys: Arc<Mutex<Vec<serde_json::Value>>>) -> String {
    let app = axum::Router::new().route(
        "/realms/jiesu/protocol/openid-connect/certs",
        axum::routing::get(move || {
            let keys = keys.clone();
            async move { axum::Json(serde_json::json!({ "keys": *keys.lock().unwrap() })) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/realms/jiesu/protocol/openid-connect/certs")
}

fn settings(url: &str) -> AuthSettings {
    AuthSettings {
        oidc: Some(OidcSettings {
            issuer: ISSUER.into(),
            audience: Some("jiesu-console".into()),
            jwks_file: None,
            jwks_url: Some(url.into()),
            ca_file: None,
            refresh: Duration::from_secs(3600),
        }),
        ..Default::default()
    }
}

fn signer(kid: &str, pem: &str) -> Signer {
    Signer::from_pem(kid, pem, ISSUER, "jiesu-console").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_come_from_the_providers_url_and_follow_its_rotation() {
    let (pem1, jwk1) = generate_key("sso-1").unwrap();
    let keys = Arc::new(Mutex::new(vec![jwk1]));
    let url = provider(keys.clone()).await;
    let verifier = Verifier::from_settings(&settings(&url), std::path::Path::new(".")).await.unwrap().expect("a verifier");
    let cancel = tokio_util::sync::CancellationToken::new();
    tokio::spawn({
        let (verifier, cancel) = (verifier.clone(), cancel.clone());
        async move { verifier.keep_fresh(cancel).await }
    });

    let token = signer("sso-1", &pem1).issue_now("u-9", "李四", &[Role::CentreAgent], None, Duration::from_secs(300)).unwrap();
    let who = verifier.verify(&token).expect("a token of the provider's key");
    assert_eq!((who.subject.as_str(), who.issuer.as_str()), ("u-9", ISSUER));

    // The provider rotates: a token signed with its new key is refused at first (the key is not
    // known yet), and accepted once the verifier has looked again — without a restart.
    let (pem2, jwk2) = generate_key("sso-2").unwrap();
    keys.lock().unwrap().push(jwk2);
    let token2 = signer("sso-2", &pem2).issue_now("u-9", "李四", &[Role::CentreAgent], None, Duration::from_secs(300)).unwrap();
    assert!(matches!(verifier.verify(&token2), Err(AuthError::UnknownKey(k)) if k == "sso-2"));
    let mut accepted = false;
    for _ in 0..100 {
        if verifier.verify(&token2).is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(accepted, "the rotated key was never fetched");
    // A key the provider never published stays refused.
    let (pem3, _) = generate_key("sso-3").unwrap();
    let forged = signer("sso-3", &pem3).issue_now("u-9", "李四", &[Role::Administrator], None, Duration::from_secs(300)).unwrap();
    assert!(verifier.verify(&forged).is_err());
    cancel.cancel();
}

#[tokio::test]
async fn a_jwks_url_in_clear_off_loopback_or_unreachable_is_refused_at_start() {
    let dir = std::path::Path::new(".");
    let err = Verifier::from_settings(&settings("http://sso.example.gov.cn/certs"), dir).await.unwrap_err();
    assert!(err.to_string().contains("must be https://"), "{err}");
    let port = jiesu_testkit::free_port();
    let err = Verifier::from_settings(&settings(&format!("http://127.0.0.1:{port}/certs")), dir).await.unwrap_err();
    assert!(err.to_string().contains("jwks_url"), "{err}");
    let mut both = settings("https://sso.example.gov.cn/certs");
    both.oidc.as_mut().unwrap().jwks_file = Some("keys/sso.json".into());
    let err = Verifier::from_settings(&both, dir).await.unwrap_err();
    assert!(err.to_string().contains("exactly one of jwks_file and jwks_url"), "{err}");
}
