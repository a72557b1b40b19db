//! Who is calling (调用者身份): a bearer token on every gRPC call, verified once, here, for every
//! service.
//!
//! Two sources of tokens, both real:
//! - **the district's own keys**: Ed25519 (EdDSA) JSON Web Tokens signed with a key of the district
//!   (`jiesuctl keys generate`, `jiesuctl token issue`), verified against the district's public
//!   key set (`[auth] keys`, a JWKS file; a key is picked by its `kid`, so keys rotate by adding
//!   the new one before signing with it and removing the old one after its last token expired);
//! - **an OpenID Connect provider** (`[auth.oidc]`): a city's unified identity platform
//!   (统一身份认证), verified against its JWKS with its issuer and this district's audience.
//!
//! Expiry and not-before are checked with `[auth] leeway` of clock skew. A service calling
//! another carries a token of its own (role `service`), signed with its own key.

use std::{collections::HashMap, fmt, path::Path, sync::Arc, time::Duration};

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind, jwk::JwkSet};
use serde::{Deserialize, Serialize};

use crate::Error;

/// What a caller may be (角色). A token may carry several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// 受理/派单员: takes requests, classifies and dispatches them.
    CentreAgent,
    /// 督办员: supervises the centre's cases and their time limits.
    CentreSupervisor,
    /// 承办人: handles the cases of their unit.
    UnitHandler,
    /// 单位负责人: heads a unit; sees and acts on all of its cases.
    UnitHead,
    /// 领导: sees the cases escalated to them (包案).
    Leader,
    /// 回访员: calls citizens back.
    RevisitAgent,
    /// 审计员: reads everything, changes nothing.
    Auditor,
    /// 系统管理员: runs the district.
    Administrator,
    /// 渠道接入方: an intake channel's producer.
    ChannelIntegrator,
    /// Another Jiesu service.
    Service,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::CentreAgent,
        Role::CentreSupervisor,
        Role::UnitHandler,
        Role::UnitHead,
        Role::Leader,
        Role::RevisitAgent,
        Role::Auditor,
        Role::Administrator,
        Role::ChannelIntegrator,
        Role::Service,
    ];

    /// The name in tokens and configuration.
    pub fn key(self) -> &'static str {
        match self {
            Role::CentreAgent => "centre_agent",
            Role::CentreSupervisor => "centre_supervisor",
            Role::UnitHandler => "unit_handler",
            Role::UnitHead => "unit_head",
            Role::Leader => "leader",
            Role::RevisitAgent => "revisit_agent",
            Role::Auditor => "auditor",
            Role::Administrator => "administrator",
            Role::ChannelIntegrator => "channel_integrator",
            Role::Service => "service",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Role::CentreAgent => "受理派单员",
            Role::CentreSupervisor => "督办员",
            Role::UnitHandler => "承办人",
            Role::UnitHead => "单位负责人",
            Role::Leader => "领导",
            Role::RevisitAgent => "回访员",
            Role::Auditor => "审计员",
            Role::Administrator => "系统管理员",
            Role::ChannelIntegrator => "渠道接入方",
            Role::Service => "系统服务",
        }
    }

    pub fn from_key(key: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.key() == key)
    }

    /// Whether it is a machine's role (a channel's producer, another Jiesu service), which no
    /// person holds.
    pub fn is_machine(self) -> bool {
        matches!(self, Role::ChannelIntegrator | Role::Service)
    }

    /// Whether a token with this role must name the unit it acts for.
    pub fn needs_unit(self) -> bool {
        matches!(self, Role::UnitHandler | Role::UnitHead)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// The verified caller of one request. The acting unit is the token's, never the request's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user's (or service's) id at its issuer.
    pub subject: String,
    /// A display name, for records ("王五"), never used to decide anything.
    pub name: String,
    pub roles: Vec<Role>,
    /// The unit a unit handler or head acts for.
    pub unit: Option<String>,
    pub issuer: String,
}

impl Identity {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `user 王五 (u-123, unit_handler of st-dongmen)`, for records and refusals.
    pub fn describe(&self) -> String {
        let roles: Vec<&str> = self.roles.iter().map(|r| r.key()).collect();
        match &self.unit {
            Some(unit) => format!("{} ({}, {} of {unit})", self.name, self.subject, roles.join("+")),
            None => format!("{} ({}, {})", self.name, self.subject, roles.join("+")),
        }
    }
}

/// Why a verified caller may not do something: the rule that refused, the text of
/// `PERMISSION_DENIED`. Each service's policy (its `policy.rs`) answers with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl From<Refusal> for tonic::Status {
    fn from(r: Refusal) -> Self {
        tonic::Status::permission_denied(r.0)
    }
}

/// The centre (受理派单员, 督办员), auditors, administrators and the services see every case.
pub fn sees_every_case(who: &Identity) -> bool {
    [Role::CentreAgent, Role::CentreSupervisor, Role::Auditor, Role::Administrator, Role::Service].iter().any(|r| who.has(*r))
}

/// The rule every service's reads of a case share: the centre, auditors, administrators and
/// the services see every case; a unit handler or head sees a case when its unit is one of
/// `units` (the case's owner, the units assisting it). A service adds its own rules beside it.
pub fn may_see_case<'a>(who: &Identity, units: impl IntoIterator<Item = &'a str>) -> Result<(), Refusal> {
    if sees_every_case(who) {
        return Ok(());
    }
    if (who.has(Role::UnitHandler) || who.has(Role::UnitHead))
        && let Some(unit) = &who.unit
        && units.into_iter().any(|u| u == unit)
    {
        return Ok(());
    }
    Err(Refusal(format!(
        "{} may not see this case: a unit sees the cases it owns or assists; leaders the cases escalated to them; the centre all",
        who.describe()
    )))
}

/// Why a token was not accepted: what `UNAUTHENTICATED` says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token: send `authorization: Bearer <token>` (jiesuctl token issue, or your identity provider)")]
    Missing,
    #[error("the authorization metadata is not `Bearer <token>`")]
    NotBearer,
    #[error("the bearer token is not a JSON Web Token")]
    Malformed,
    #[error("the token's issuer is not trusted here")]
    UnknownIssuer,
    #[error("the token was signed with key {0:?}, which is not (or no longer) a key of its issuer")]
    UnknownKey(String),
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token uses algorithm {0}, which is not accepted")]
    WrongAlgorithm(String),
    #[error("the token carries no role")]
    NoRole,
    #[error("the token carries role {0:?}, which is not a role of Jiesu")]
    UnknownRole(String),
    #[error("role {0} must name its unit (claim `unit`)")]
    NoUnit(Role),
    #[error("the token's claims are not readable: {0}")]
    Claims(String),
}

/// The claims Jiesu reads and writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// `aud`: one audience or several, as JWT allows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// `[auth]` of the district file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Refuse calls without a token: on unless the district file turns it off (a developer's
    /// machine, a district still being set up), and then a service says so loudly at start.
    pub required: bool,
    /// The district's own issuer (`iss` of the tokens it signs).
    pub issuer: String,
    /// The audience every token must name.
    pub audience: String,
    /// The district's public keys, a JWKS file (relative to the district file).
    pub keys: String,
    /// This process's own signing key (PKCS#8 PEM, relative to the district file), for the
    /// tokens it sends to other services; its file name without extension is its `kid`.
    pub signing_key: String,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(deserialize_with = "crate::time::de_duration")]
    pub leeway: Duration,
    /// An external OpenID Connect provider, if the district has one.
    pub oidc: Option<OidcSettings>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            required: true,
            issuer: "jiesu".into(),
            audience: "jiesu".into(),
            keys: String::new(),
            signing_key: String::new(),
            leeway: Duration::from_secs(60),
            oidc: None,
        }
    }
}

/// `[auth.oidc]`: tokens of the city's identity provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// `iss` of its tokens, e.g. `https://sso.example.gov.cn/realms/jiesu`.
    pub issuer: String,
    /// The audience its tokens carry for Jiesu (the client id); default `[auth] audience`.
    #[serde(default)]
    pub audience: Option<String>,
    /// Its signing keys as a JWKS file (relative to the district file)…
    #[serde(default)]
    pub jwks_file: Option<String>,
    /// …or at its JWKS URL (`https://…/protocol/openid-connect/certs`), fetched at start, again
    /// every `refresh`, and soon after a token names a key not seen yet (the provider rotated).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The CA of the provider's HTTPS certificate (PEM), when it is not in the system's store.
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default = "default_refresh", deserialize_with = "crate::time::de_duration")]
    pub refresh: Duration,
}

fn default_refresh() -> Duration {
    Duration::from_secs(15 * 60)
}

type Keys = HashMap<String, (DecodingKey, Algorithm)>;

/// The keys of one trusted issuer; those fetched from a URL are replaced as it rotates them.
struct Trust {
    audience: String,
    keys: Arc<std::sync::RwLock<Keys>>,
}

/// Keeps an issuer's key set fresh from its JWKS URL.
#[derive(Clone)]
struct KeySource {
    url: String,
    client: reqwest::Client,
    refresh: Duration,
    keys: Arc<std::sync::RwLock<Keys>>,
    /// Woken when a token names an unknown key.
    stale: Arc<tokio::sync::Notify>,
}

impl KeySource {
    async fn fetch(&self) -> Result<Keys, Error> {
        let failed = |e: &dyn fmt::Display| Error::Config(format!("[auth.oidc] jwks_url {}: {e}", self.url));
        let response = self.client.get(&self.url).send().await.map_err(|e| failed(&e))?;
        if !response.status().is_success() {
            return Err(failed(&format!("answered {}", response.status())));
        }
        let body = response.bytes().await.map_err(|e| failed(&e))?;
        let jwks: JwkSet = serde_json::from_slice(&body).map_err(|e| failed(&format!("not a JWKS document: {e}")))?;
        decoding_keys(&jwks).map_err(|e| failed(&e))
    }

    /// Refreshes until cancelled: every `refresh`, and (at most every 30 s) when a token names a
    /// key not in the set. A failed fetch keeps the keys it had.
    async fn run(self, cancel: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.refresh) => {}
                _ = self.stale.notified() => {}
            }
            match self.fetch().await {
                Ok(keys) => {
                    let n = keys.len();
                    *self.keys.write().expect("key set lock") = keys;
                    tracing::debug!(url = %self.url, keys = n, "refreshed the identity provider's keys");
                }
                Err(e) => tracing::warn!(error = %e, "cannot refresh the identity provider's keys; keeping the ones it had"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    }
}

/// Verifies tokens of the issuers the district trusts. Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    issuers: Arc<HashMap<String, Trust>>,
    leeway: Duration,
    sources: Vec<KeySource>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier").field("issuers", &self.issuers.keys().collect::<Vec<_>>()).finish()
    }
}

impl Verifier {
    /// The verifier of `[auth]`, its files read relative to `base_dir`, an identity provider's
    /// keys fetched from its URL. `None` when no key set is configured at all.
    pub async fn from_settings(settings: &AuthSettings, base_dir: &Path) -> Result<Option<Self>, Error> {
        let mut issuers = HashMap::new();
        let mut sources = Vec::new();
        if !settings.keys.is_empty() {
            let keys = read_jwks(&base_dir.join(&settings.keys))?;
            issuers.insert(settings.issuer.clone(), Trust { audience: settings.audience.clone(), keys: Arc::new(keys.into()) });
        }
        if let Some(oidc) = &settings.oidc {
            let keys = match (&oidc.jwks_file, &oidc.jwks_url) {
                (Some(file), None) => Arc::new(read_jwks(&base_dir.join(file))?.into()),
                (None, Some(url)) => {
                    if !url.starts_with("https://") && !is_loopback_url(url) {
                        return Err(Error::Config(format!(
                            "[auth.oidc] jwks_url {url} must be https://: keys fetched in clear could be swapped"
                        )));
                    }
                    let source = KeySource {
                        url: url.clone(),
                        client: http_client(oidc.ca_file.as_ref().map(|f| base_dir.join(f)).as_deref())?,
                        refresh: oidc.refresh.max(Duration::from_secs(30)),
                        keys: Arc::new(Keys::new().into()),
                        stale: Arc::new(tokio::sync::Notify::new()),
                    };
                    *source.keys.write().expect("key set lock") = source.fetch().await?;
                    let keys = source.keys.clone();
                    sources.push(source);
                    keys
                }
                _ => return Err(Error::Config("[auth.oidc] needs exactly one of jwks_file and jwks_url".into())),
            };
            let audience = oidc.audience.clone().unwrap_or_else(|| settings.audience.clone());
            issuers.insert(oidc.issuer.clone(), Trust { audience, keys });
        }
        if issuers.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self { issuers: Arc::new(issuers), leeway: settings.leeway, sources }))
    }

    /// Whether some keys come from a URL (and [`Verifier::keep_fresh`] has work to do).
    pub fn fetches_keys(&self) -> bool {
        !self.sources.is_empty()
    }

    /// Keeps the keys fetched from URLs fresh until cancelled.
    pub async fn keep_fresh(&self, cancel: tokio_util::sync::CancellationToken) {
        futures::future::join_all(self.sources.iter().cloned().map(|s| s.run(cancel.clone()))).await;
    }

    /// A verifier trusting one issuer's key set (tests, tools).
    pub fn new(issuer: &str, audience: &str, jwks: &JwkSet, leeway: Duration) -> Result<Self, Error> {
        let keys = decoding_keys(jwks)?;
        let issuers = HashMap::from([(issuer.to_string(), Trust { audience: audience.to_string(), keys: Arc::new(keys.into()) })]);
        Ok(Self { issuers: Arc::new(issuers), leeway, sources: Vec::new() })
    }

    /// The identity in `authorization` metadata (`Bearer <token>`).
    pub fn verify_header(&self, authorization: Option<&str>) -> Result<Identity, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::NotBearer)?;
        self.verify(token)
    }

    /// The identity a token proves.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        identity(self.verify_claims::<Claims>(token)?)
    }

    /// The claims of a token whose signature, issuer, audience and times verify, read as `C`:
    /// for a caller that needs claims of its own (an OpenID Connect ID token's `nonce`).
    pub fn verify_claims<C: serde::de::DeserializeOwned>(&self, token: &str) -> Result<C, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        // The issuer decides which keys may have signed: read it before trusting anything.
        let unverified = unverified_claims(token)?;
        let trust = self.issuers.get(&unverified.iss).ok_or(AuthError::UnknownIssuer)?;
        let kid = header.kid.clone().unwrap_or_default();
        let keys = trust.keys.read().expect("key set lock");
        let Some((key, algorithm)) = keys.get(&kid) else {
            // Perhaps the provider has rotated its keys: look again soon.
            for source in self.sources.iter().filter(|s| Arc::ptr_eq(&s.keys, &trust.keys)) {
                source.stale.notify_one();
            }
            return Err(AuthError::UnknownKey(kid));
        };
        if header.alg != *algorithm {
            return Err(AuthError::WrongAlgorithm(format!("{:?}", header.alg)));
        }
        let mut validation = Validation::new(*algorithm);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_audience(&[&trust.audience]);
        validation.set_issuer(&[&unverified.iss]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<C>(token, key, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::InvalidIssuer => AuthError::UnknownIssuer,
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm => AuthError::WrongAlgorithm(format!("{:?}", header.alg)),
            ErrorKind::MissingRequiredClaim(c) => AuthError::Claims(format!("missing {c}")),
            _ => AuthError::Malformed,
        })?;
        Ok(data.claims)
    }
}

/// The claims as written, before any check: only to pick the issuer's keys.
fn unverified_claims(token: &str) -> Result<Claims, AuthError> {
    let payload = token.split('.').nth(1).ok_or(AuthError::Malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|e| AuthError::Claims(e.to_string()))
}

fn identity(claims: Claims) -> Result<Identity, AuthError> {
    if claims.roles.is_empty() {
        return Err(AuthError::NoRole);
    }
    let roles = claims
        .roles
        .iter()
        .map(|r| Role::from_key(r).ok_or_else(|| AuthError::UnknownRole(r.chars().take(40).collect())))
        .collect::<Result<Vec<_>, _>>()?;
    let unit = claims.unit.filter(|u| !u.trim().is_empty());
    if let Some(role) = roles.iter().find(|r| r.needs_unit())
        && unit.is_none()
    {
        return Err(AuthError::NoUnit(*role));
    }
    let name = if claims.name.is_empty() { claims.sub.clone() } else { claims.name };
    Ok(Identity { subject: claims.sub, name, roles, unit, issuer: claims.iss })
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or_default();
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An HTTPS client trusting the system's CAs, or only `ca_file` when given.
fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, Error> {
    crate::tls::install_crypto_provider();
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10)).connect_timeout(Duration::from_secs(5));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| Error::Config(format!("[auth.oidc] ca_file {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| Error::Config(format!("[auth.oidc] ca_file {}: {e}", path.display())))?;
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(|e| Error::Config(format!("an HTTPS client for the identity provider: {e}")))
}

fn read_jwks(path: &Path) -> Result<HashMap<String, (DecodingKey, Algorithm)>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read the key set {}: {e}", path.display())))?;
    let jwks: JwkSet = serde_json::from_str(&text).map_err(|e| Error::Config(format!("{} is not a JWKS file: {e}", path.display())))?;
    decoding_keys(&jwks).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

fn decoding_keys(jwks: &JwkSet) -> Result<HashMap<String, (DecodingKey, Algorithm)>, Error> {
    let mut keys = HashMap::new();
    for jwk in &jwks.keys {
        let kid = jwk.common.key_id.clone().ok_or_else(|| Error::Config("a key without `kid`: every key needs one".into()))?;
        let algorithm = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(p) => match p.curve {
                jsonwebtoken::jwk::EllipticCurve::P256 => Algorithm::ES256,
                jsonwebtoken::jwk::EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err(Error::Config(format!("key {kid}: an unsupported curve"))),
            },
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
            _ => return Err(Error::Config(format!("key {kid}: only public keys (OKP, EC, RSA) are accepted, never shared secrets"))),
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| Error::Config(format!("key {kid}: {e}")))?;
        keys.insert(kid, (key, algorithm));
    }
    Ok(keys)
}

/// Signs tokens with one Ed25519 key of the district (`jiesuctl token issue`, a service's own).
#[derive(Clone)]
pub struct Signer {
    kid: String,
    key: EncodingKey,
    pub issuer: String,
    pub audience: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).field("issuer", &self.issuer).finish()
    }
}

impl Signer {
    /// A signer of a PKCS#8 PEM private key (as `jiesuctl keys generate` writes it).
    pub fn from_pem(kid: &str, pem: &str, issuer: &str, audience: &str) -> Result<Self, Error> {
        let der = pem_body(pem).ok_or_else(|| Error::Config(format!("signing key {kid} is not a PEM \"PRIVATE KEY\"")))?;
        Ok(Self { kid: kid.to_string(), key: EncodingKey::from_ed_der(&der), issuer: issuer.to_string(), audience: audience.to_string() })
    }

    /// The signer of `[auth] signing_key`, if one is configured.
    pub fn from_settings(settings: &AuthSettings, base_dir: &Path) -> Result<Option<Self>, Error> {
        if settings.signing_key.is_empty() {
            return Ok(None);
        }
        Self::from_file(&base_dir.join(&settings.signing_key), &settings.issuer, &settings.audience).map(Some)
    }

    /// A signer of a key file as `jiesuctl keys generate` writes it: `<kid>.key.pem`.
    pub fn from_file(path: &Path, issuer: &str, audience: &str) -> Result<Self, Error> {
        let pem =
            std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read the signing key {}: {e}", path.display())))?;
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let kid = file.trim_end_matches(".pem").trim_end_matches(".key");
        Self::from_pem(kid, &pem, issuer, audience)
    }

    /// A token for `subject` valid for `ttl` from now.
    pub fn issue_now(&self, subject: &str, name: &str, roles: &[Role], unit: Option<&str>, ttl: Duration) -> Result<String, Error> {
        self.issue(subject, name, roles, unit, jsonwebtoken::get_current_timestamp(), ttl)
    }

    /// A token for `subject` valid from `now` for `ttl`.
    pub fn issue(&self, subject: &str, name: &str, roles: &[Role], unit: Option<&str>, now: u64, ttl: Duration) -> Result<String, Error> {
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_string(),
            aud: Audience::One(self.audience.clone()),
            exp: now + ttl.as_secs(),
            nbf: Some(now),
            iat: Some(now),
            jti: Some(uuid::Uuid::now_v7().to_string()),
            name: name.to_string(),
            roles: roles.iter().map(|r| r.key().to_string()).collect(),
            unit: unit.map(str::to_string),
        };
        self.sign(&claims)
    }

    /// Signs any claims (tests forge bad ones with it).
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, Error> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| Error::Config(format!("cannot sign a token: {e}")))
    }
}

/// 32 random bytes in base64: a symmetric key (sealing contacts, keyed hashes).
pub fn random_key() -> String {
    use ring::rand::SecureRandom;
    let mut key = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut key).expect("the system's random source");
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// A new Ed25519 key: (its PKCS#8 PEM, its public JWK with `kid`).
pub fn generate_key(kid: &str) -> Result<(String, serde_json::Value), Error> {
    use ring::signature::KeyPair;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| Error::Config("cannot generate a key".into()))?;
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| Error::Config("cannot read the new key".into()))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"});
    Ok((pem, jwk))
}

fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body.trim()).ok().filter(|d| !d.is_empty())
}

/// What a service sends when it calls another (服务间身份): a short-lived token of its own, role
/// `service` and subject its name, signed with its key (`[auth] signing_key`); nothing where the
/// district configured no key. The token is reused until a minute before it expires.
#[derive(Clone, Debug)]
pub struct ServiceCredentials {
    service: String,
    role: Role,
    signer: Option<Signer>,
    cached: Arc<std::sync::Mutex<Option<(u64, Bearer)>>>,
}

/// An `authorization: Bearer …` value.
type Bearer = tonic::metadata::MetadataValue<tonic::metadata::Ascii>;

impl ServiceCredentials {
    const TTL: Duration = Duration::from_secs(600);

    pub fn new(service: &str, signer: Option<Signer>) -> Self {
        Self { service: service.to_string(), role: Role::Service, signer, cached: Default::default() }
    }

    /// The credentials of a channel's producer run by the district itself (the web front of the
    /// mailboxes): role `channel_integrator`, subject `producer`, so it may submit only to the
    /// channels that name it.
    pub fn producer(producer: &str, signer: Option<Signer>) -> Self {
        Self { service: producer.to_string(), role: Role::ChannelIntegrator, signer, cached: Default::default() }
    }

    fn header(&self) -> Option<Bearer> {
        let signer = self.signer.as_ref()?;
        let now = jsonwebtoken::get_current_timestamp();
        let mut cached = self.cached.lock().expect("credentials lock");
        if let Some((exp, value)) = cached.as_ref()
            && *exp > now + 60
        {
            return Some(value.clone());
        }
        let token = signer.issue(&self.service, &self.service, &[self.role], None, now, Self::TTL).ok()?;
        let value: Bearer = format!("Bearer {token}").parse().ok()?;
        *cached = Some((now + Self::TTL.as_secs(), value.clone()));
        Some(value)
    }
}

impl tonic::service::Interceptor for ServiceCredentials {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = self.header() {
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// A channel to another Jiesu process's gRPC API as one service calls another: connected on
/// first use (so the caller starts while the other is down), over TLS when the district has
/// certificates, each call a CLIENT span and carrying `credentials`' token, within `timeout`.
pub type ServiceChannel =
    tonic::service::interceptor::InterceptedService<crate::telemetry::GrpcSpan<tonic::transport::Channel>, ServiceCredentials>;

/// A [`ServiceChannel`] to `url`.
pub fn service_channel(
    url: &str,
    tls: Option<&crate::tls::Tls>,
    credentials: ServiceCredentials,
    timeout: Duration,
) -> Result<ServiceChannel, Error> {
    let endpoint = crate::tls::endpoint(tls, url)?.connect_timeout(timeout.min(Duration::from_secs(5))).timeout(timeout);
    Ok(tonic::service::interceptor::InterceptedService::new(crate::telemetry::traced_channel(endpoint.connect_lazy()), credentials))
}

/// The caller of a gRPC request, as the server's [`AuthLayer`] verified it; `None` for an
/// anonymous call where anonymity is allowed (`[auth] required = false`).
pub fn caller<T>(request: &tonic::Request<T>) -> Option<&Identity> {
    request.extensions().get::<Identity>()
}

/// Calls that never need a token: gRPC health (for probes and load balancers) and reflection
/// (it describes the API, it reveals no data).
fn open_path(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

/// Verifies the bearer token of every gRPC call before the service sees it: a verified caller
/// rides in the request's extensions ([`caller`]); a missing token (where required) or a bad
/// one is answered `UNAUTHENTICATED` with the reason, and the service never runs.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    verifier: Option<Verifier>,
    required: bool,
}

impl AuthLayer {
    pub fn new(verifier: Option<Verifier>, required: bool) -> Self {
        Self { verifier, required }
    }

    /// The verdict on an admin-port request that changes state or shows messages (dead
    /// letters): an administrator's token, or — only where tokens are not required — none.
    pub fn operator(&self, authorization: Option<&str>) -> Result<Option<Identity>, (http::StatusCode, String)> {
        let (Some(verifier), Some(header)) = (&self.verifier, authorization) else {
            return if self.required || authorization.is_some() {
                Err((http::StatusCode::UNAUTHORIZED, AuthError::Missing.to_string()))
            } else {
                Ok(None)
            };
        };
        let who = verifier.verify_header(Some(header)).map_err(|e| (http::StatusCode::UNAUTHORIZED, e.to_string()))?;
        if who.has(Role::Administrator) {
            Ok(Some(who))
        } else {
            Err((http::StatusCode::FORBIDDEN, format!("{} may not use the admin port: it is for administrators", who.describe())))
        }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated { inner, layer: self.clone() }
    }
}

/// A gRPC service behind [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct Authenticated<S> {
    inner: S,
    layer: AuthLayer,
}

type Call<S, B> = <S as tower_service::Service<http::Request<B>>>::Future;

/// Refuses before the service runs; else the service's own answer.
impl<S, B> tower_service::Service<http::Request<B>> for Authenticated<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::Either<std::future::Ready<Result<Self::Response, Self::Error>>, Call<S, B>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if !open_path(req.uri().path()) {
            let header = req.headers().get(http::header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("?"));
            let verdict = match (&self.layer.verifier, header) {
                (_, None) if !self.layer.required => None,
                (None, _) => Some(Err(AuthError::UnknownIssuer)),
                (Some(verifier), header) => Some(verifier.verify_header(header)),
            };
            match verdict {
                None => {}
                Some(Ok(identity)) => {
                    req.extensions_mut().insert(identity);
                }
                Some(Err(refusal)) => {
                    tracing::info!(path = req.uri().path(), %refusal, "call refused: unauthenticated");
                    let response = tonic::Status::unauthenticated(refusal.to_string()).into_http();
                    return futures::future::Either::Left(std::future::ready(Ok(response)));
                }
            }
        }
        futures::future::Either::Right(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn setup(kid: &str) -> (Signer, Verifier) {
        let (pem, jwk) = generate_key(kid).unwrap();
        let jwks: JwkSet = serde_json::from_value(serde_json::json!({"keys": [jwk]})).unwrap();
        let signer = Signer::from_pem(kid, &pem, "jiesu:demo", "jiesu").unwrap();
        (signer, Verifier::new("jiesu:demo", "jiesu", &jwks, Duration::from_secs(60)).unwrap())
    }

    fn claims(signer: &Signer) -> Claims {
        Claims {
            iss: signer.issuer.clone(),
            sub: "u-1".into(),
            aud: Audience::One("jiesu".into()),
            exp: now() + 600,
            nbf: Some(now()),
            iat: Some(now()),
            jti: None,
            name: "王五".into(),
            roles: vec!["unit_handler".into()],
            unit: Some("st-dongmen".into()),
        }
    }

    #[test]
    fn a_good_token_names_its_caller() {
        let (signer, verifier) = setup("k1");
        let token = signer.issue("u-1", "王五", &[Role::UnitHandler], Some("st-dongmen"), now(), Duration::from_secs(600)).unwrap();
        let id = verifier.verify_header(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(id.subject, "u-1");
        assert_eq!(id.roles, vec![Role::UnitHandler]);
        assert_eq!(id.unit.as_deref(), Some("st-dongmen"));
        assert_eq!(id.describe(), "王五 (u-1, unit_handler of st-dongmen)");
    }

    #[test]
    fn every_bad_token_is_refused_with_its_reason() {
        let (signer, verifier) = setup("k1");
        let (other, _) = setup("k1");
        let (stranger, _) = setup("k9");
        let sign = |c: &Claims| signer.sign(c).unwrap();
        let base = claims(&signer);
        let cases: Vec<(String, AuthError)> = vec![
            (sign(&Claims { exp: now() - 120, ..base.clone() }), AuthError::Expired),
            (sign(&Claims { nbf: Some(now() + 600), ..base.clone() }), AuthError::NotYetValid),
            (sign(&Claims { aud: Audience::One("other".into()), ..base.clone() }), AuthError::WrongAudience),
            (sign(&Claims { iss: "evil".into(), ..base.clone() }), AuthError::UnknownIssuer),
            (sign(&Claims { roles: vec!["root".into()], ..base.clone() }), AuthError::UnknownRole("root".into())),
            (sign(&Claims { roles: vec![], ..base.clone() }), AuthError::NoRole),
            (sign(&Claims { unit: None, ..base.clone() }), AuthError::NoUnit(Role::UnitHandler)),
            (other.sign(&base).unwrap(), AuthError::BadSignature),
            (stranger.sign(&base).unwrap(), AuthError::UnknownKey("k9".into())),
            ("not.a.token".into(), AuthError::Malformed),
        ];
        for (token, expected) in cases {
            assert_eq!(verifier.verify(&token), Err(expected.clone()), "{expected}");
        }
        assert_eq!(verifier.verify_header(None), Err(AuthError::Missing));
        assert_eq!(verifier.verify_header(Some("Basic dXNlcjpwdw==")), Err(AuthError::NotBearer));
        // Within the leeway, a token just expired or not quite valid yet still passes.
        assert!(verifier.verify(&sign(&Claims { exp: now() - 30, ..base.clone() })).is_ok());
        assert!(verifier.verify(&sign(&Claims { nbf: Some(now() + 30), ..base.clone() })).is_ok());
    }

    #[test]
    fn a_token_signed_with_hs256_under_a_known_kid_is_refused() {
        let (signer, verifier) = setup("k1");
        let forged = jsonwebtoken::encode(
            &Header { kid: Some("k1".into()), ..Header::new(Algorithm::HS256) },
            &claims(&signer),
            &EncodingKey::from_secret(b"guess").unwrap(),
        )
        .unwrap();
        assert!(matches!(verifier.verify(&forged), Err(AuthError::WrongAlgorithm(_))));
    }

    #[test]
    fn who_sees_a_case_for_every_role() {
        for role in Role::ALL {
            let unit = role.needs_unit().then(|| "st-dongmen".to_string());
            let who = Identity { subject: "u".into(), name: "某人".into(), roles: vec![role], unit, issuer: "jiesu".into() };
            let all = matches!(role, Role::CentreAgent | Role::CentreSupervisor | Role::Auditor | Role::Administrator | Role::Service);
            let unit = matches!(role, Role::UnitHandler | Role::UnitHead);
            assert_eq!(may_see_case(&who, ["st-dongmen"]).is_ok(), all || unit, "{role} on its unit's case");
            assert_eq!(may_see_case(&who, ["dept-water", "st-dongmen"]).is_ok(), all || unit, "{role} assisting");
            assert_eq!(may_see_case(&who, ["st-xinan"]).is_ok(), all, "{role} on another unit's case");
            assert_eq!(may_see_case(&who, []).is_ok(), all, "{role} on a case of no unit yet");
        }
    }

    #[test]
    fn roles_round_trip_and_speak_chinese() {
        for role in Role::ALL {
            assert_eq!(Role::from_key(role.key()), Some(role));
            assert!(!role.name_zh().is_empty());
        }
        assert_eq!(Role::from_key("root"), None);
    }
}
