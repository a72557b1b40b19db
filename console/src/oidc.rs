//! Sign-in through the district's identity platform (统一身份认证): OpenID Connect's
//! authorisation code flow with PKCE (S256), a `state` bound to the browser by a cookie and kept
//! server-side once, a `nonce` checked in the ID token, whose signature, issuer, audience and
//! expiry the kit's verifier checks against the platform's keys.
//!
//! The platform says who the person is; the console's own account says what they may do. The
//! first time, the account is found by the username the platform gives (`username_claim`) and
//! linked to the platform's `sub`; after that, by the `sub` alone. Someone the platform knows but
//! the district gave no account is refused, and told to ask their administrator.

use std::path::Path;

use base64::Engine;
use jiesu_kit::auth::{AuthSettings, OidcSettings, Verifier};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::Error;

/// `[console.oidc]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcLogin {
    /// `iss` of its ID tokens.
    pub issuer: String,
    /// The console's client id at the platform (the ID tokens' audience).
    pub client_id: String,
    /// The client secret, for a confidential client; empty for a public one (PKCE alone).
    #[serde(default)]
    pub client_secret: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// Its keys: a JWKS URL…
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// …or a JWKS file (relative to the district file).
    #[serde(default)]
    pub jwks_file: Option<String>,
    /// The CA of the platform's HTTPS certificate, when not in the system's store.
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default = "default_scopes")]
    pub scopes: String,
    /// The ID token claim that holds the console username, for the first sign-in.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// What the button on the sign-in page says.
    #[serde(default = "default_button")]
    pub button: String,
}

fn default_scopes() -> String {
    "openid profile".into()
}

fn default_username_claim() -> String {
    "preferred_username".into()
}

fn default_button() -> String {
    "统一身份认证登录".into()
}

/// The platform, ready to send people to and take them back from.
pub struct Provider {
    pub login: OidcLogin,
    pub redirect_uri: String,
    verifier: Verifier,
    http: reqwest::Client,
}

/// The claims of an ID token the console reads.
#[derive(Debug, Deserialize)]
pub struct IdClaims {
    pub sub: String,
    #[serde(default)]
    pub nonce: String,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// A sign-in on its way to the platform: what the browser is sent to, and what is kept.
pub struct Departure {
    pub url: String,
    pub state: String,
    pub verifier: String,
    pub nonce: String,
}

impl Provider {
    pub async fn new(login: &OidcLogin, public_url: &str, base_dir: &Path) -> Result<Self, Error> {
        for (what, url) in [("authorization_endpoint", &login.authorization_endpoint), ("token_endpoint", &login.token_endpoint)] {
            if !url.starts_with("https://") && !is_loopback(url) {
                return Err(Error::Config(format!("oidc.{what} {url} must be https://")));
            }
        }
        let settings = AuthSettings {
            keys: String::new(),
            oidc: Some(OidcSettings {
                issuer: login.issuer.clone(),
                audience: Some(login.client_id.clone()),
                jwks_file: login.jwks_file.clone(),
                jwks_url: login.jwks_url.clone(),
                ca_file: login.ca_file.clone(),
                refresh: std::time::Duration::from_secs(15 * 60),
            }),
            ..Default::default()
        };
        let verifier =
            Verifier::from_settings(&settings, base_dir).await?.ok_or_else(|| Error::Config("oidc: no keys for the platform".into()))?;
        jiesu_kit::tls::install_crypto_provider();
        let mut http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &login.ca_file {
            let path = base_dir.join(ca);
            let pem = std::fs::read(&path).map_err(|e| Error::Config(format!("oidc.ca_file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Config(format!("oidc.ca_file: {e}")))?;
            http = http.tls_certs_only(certs);
        }
        let http = http.build().map_err(|e| Error::Config(format!("oidc: an HTTPS client: {e}")))?;
        let redirect_uri = format!("{}/signin/oidc/callback", public_url.trim_end_matches('/'));
        Ok(Self { login: login.clone(), redirect_uri, verifier, http })
    }

    /// Keeps the platform's keys fresh until cancelled.
    pub async fn keep_fresh(&self, cancel: tokio_util::sync::CancellationToken) {
        self.verifier.keep_fresh(cancel).await;
    }

    /// A new sign-in: fresh state, PKCE verifier and nonce, and the platform's URL to go to.
    pub fn depart(&self) -> Departure {
        let state = jiesu_kit::web::random_token::<32>();
        let verifier = jiesu_kit::web::random_token::<48>();
        let nonce = jiesu_kit::web::random_token::<24>();
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", self.login.client_id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("scope", self.login.scopes.as_str()),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge(&verifier).as_str()),
            ("code_challenge_method", "S256"),
        ])
        .unwrap_or_default();
        let separator = if self.login.authorization_endpoint.contains('?') { '&' } else { '?' };
        Departure { url: format!("{}{separator}{query}", self.login.authorization_endpoint), state, verifier, nonce }
    }

    /// Exchanges the code for an ID token and verifies it: its signature, issuer, audience,
    /// times, and the nonce of this sign-in.
    pub async fn arrive(&self, code: &str, verifier: &str, nonce: &str) -> Result<IdClaims, Error> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("client_id", self.login.client_id.as_str()),
            ("code_verifier", verifier),
        ];
        if !self.login.client_secret.is_empty() {
            form.push(("client_secret", self.login.client_secret.as_str()));
        }
        let response =
            self.http.post(&self.login.token_endpoint).form(&form).send().await.map_err(|e| Error::Oidc(format!("token endpoint: {e}")))?;
        if !response.status().is_success() {
            let status = response.status();
            let body: String = response.text().await.unwrap_or_default().chars().take(200).collect();
            return Err(Error::Oidc(format!("the token endpoint answered {status}: {body}")));
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            id_token: String,
        }
        let tokens: TokenResponse = response.json().await.map_err(|e| Error::Oidc(format!("the token endpoint's answer: {e}")))?;
        let claims: IdClaims = self.verifier.verify_claims(&tokens.id_token).map_err(|e| Error::Oidc(format!("the ID token: {e}")))?;
        if claims.nonce.is_empty() || !crate::session::same_secret(&claims.nonce, nonce) {
            return Err(Error::Oidc("the ID token's nonce is not this sign-in's".into()));
        }
        Ok(claims)
    }

    /// The username the platform gives, for linking an account the first time.
    pub fn username_of(&self, claims: &IdClaims) -> Option<String> {
        claims.other.get(&self.login.username_claim).and_then(|v| v.as_str()).map(|s| s.trim().to_ascii_lowercase())
    }
}

/// PKCE's S256 challenge of a verifier.
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn is_loopback(url: &str) -> bool {
    let host = url.strip_prefix("http://").unwrap_or_default().split(['/', ':']).next().unwrap_or_default();
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_s256_challenge_of_rfc_7636() {
        // RFC 7636, appendix B.
        assert_eq!(challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn endpoints_in_clear_only_on_loopback() {
        assert!(is_loopback("http://127.0.0.1:9000/token"));
        assert!(is_loopback("http://localhost/token"));
        assert!(!is_loopback("http://sso.example.gov.cn/token"));
        assert!(!is_loopback("https://127.0.0.1/token"));
    }
}
