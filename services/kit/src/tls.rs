//! Encryption on the wire (`[tls]`): every service serves gRPC and its admin port over TLS
//! with its own certificate, signed by the district's CA, and calls the other services over
//! TLS, showing its certificate when the district asks for mutual TLS. Plain text is allowed
//! only when the district file asks for it, and only on loopback listeners.
//!
//! The files live in one directory (`[tls] dir`), as `jiesuctl tls` makes them: `ca.pem` (the
//! district's CA), `<name>.pem` and `<name>.key.pem` for each service (and for `nats` and the
//! people's tools). A district with its own PKI puts its files there under the same names.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Deserialize;

use crate::Error;

/// `[tls]` of the district file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// The directory of the district's certificates (`ca.pem`, `<name>.pem`, `<name>.key.pem`).
    pub dir: Option<PathBuf>,
    /// Demand from every gRPC and admin client a certificate signed by the district's CA
    /// (mutual TLS), besides its token.
    pub client_auth: bool,
    /// Serve and call in plain text: a developer's machine only. Refused unless every listener
    /// of the service is on loopback.
    pub plaintext: bool,
}

/// Makes ring the process's TLS provider (for clients that take the default, such as the
/// identity provider's); harmless when one is already installed.
pub fn install_crypto_provider() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
}

/// The CA's file in the directory.
pub const CA: &str = "ca.pem";

/// `<dir>/<name>.pem` and `<dir>/<name>.key.pem`.
pub fn cert_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key.pem")))
}

/// A process's TLS material, read once at start.
#[derive(Clone)]
pub struct Tls {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
    client_auth: bool,
}

impl std::fmt::Debug for Tls {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("client_auth", &self.client_auth).finish_non_exhaustive()
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::Config(format!("[tls]: cannot read {what} {}: {e} (make it with `jiesuctl tls`)", path.display())))
}

impl Tls {
    /// The TLS of process `name` (a service's name) under `settings`, or `None` for plain text
    /// — which is refused unless asked for and every one of `listeners` is on loopback.
    pub fn load(settings: &TlsSettings, name: &str, listeners: &[SocketAddr]) -> Result<Option<Self>, Error> {
        let Some(dir) = &settings.dir else {
            if !settings.plaintext {
                return Err(Error::Config(
                    "[tls] dir is not set: give the directory of the district's certificates (`jiesuctl tls ca` and `jiesuctl tls cert`), \
                     or, on a developer's machine, [tls] plaintext = true with every listener on loopback"
                        .into(),
                ));
            }
            if let Some(open) = listeners.iter().find(|a| !a.ip().is_loopback()) {
                return Err(Error::Config(format!(
                    "[tls] plaintext = true, but {open} is not a loopback address: tokens and citizens' data would cross the network in clear"
                )));
            }
            return Ok(None);
        };
        let (cert, key) = cert_paths(dir, name);
        Ok(Some(Self {
            ca: read(&dir.join(CA), "the district's CA")?,
            cert: read(&cert, "the certificate")?,
            key: read(&key, "the private key")?,
            client_auth: settings.client_auth,
        }))
    }

    /// The gRPC server's configuration.
    pub fn grpc_server(&self) -> tonic::transport::ServerTlsConfig {
        let config = tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(&self.cert, &self.key));
        if self.client_auth { config.client_ca_root(tonic::transport::Certificate::from_pem(&self.ca)) } else { config }
    }

    /// A gRPC client's configuration for calling another service: trusts the district's CA,
    /// and shows this process's own certificate (for mutual TLS).
    pub fn grpc_client(&self) -> tonic::transport::ClientTlsConfig {
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&self.ca))
            .identity(tonic::transport::Identity::from_pem(&self.cert, &self.key))
    }

    /// The admin port's configuration (HTTP/1.1 over TLS).
    pub fn http_server(&self) -> Result<Arc<tokio_rustls::rustls::ServerConfig>, Error> {
        use tokio_rustls::rustls::{self, pki_types::pem::PemObject};
        let bad = |e: &dyn std::fmt::Display| Error::Config(format!("[tls]: {e}"));
        let certs: Vec<rustls::pki_types::CertificateDer<'static>> =
            rustls::pki_types::CertificateDer::pem_slice_iter(&self.cert).collect::<Result<_, _>>().map_err(|e| bad(&e))?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(&self.key).map_err(|e| bad(&e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().map_err(|e| bad(&e))?;
        let builder = if self.client_auth {
            let mut roots = rustls::RootCertStore::empty();
            for ca in rustls::pki_types::CertificateDer::pem_slice_iter(&self.ca) {
                roots.add(ca.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().map_err(|e| bad(&e))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| bad(&e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// An endpoint for calling another service at `url`: over TLS (`https://`) when this process
/// has TLS, in plain text (`http://`, loopback) when it has none. A URL whose scheme disagrees
/// is an error, not a silent downgrade.
pub fn endpoint(tls: Option<&Tls>, url: &str) -> Result<tonic::transport::Endpoint, Error> {
    endpoint_with(tls.map(Tls::grpc_client), url)
}

/// [`endpoint`] with a client configuration of its own (a tool's: see [`client_config`]).
pub fn endpoint_with(tls: Option<tonic::transport::ClientTlsConfig>, url: &str) -> Result<tonic::transport::Endpoint, Error> {
    let endpoint =
        tonic::transport::Endpoint::from_shared(url.to_string()).map_err(|e| Error::Config(format!("{url:?} is not a valid URI: {e}")))?;
    match tls {
        Some(tls) if url.starts_with("https://") => endpoint.tls_config(tls).map_err(|e| Error::Config(format!("TLS for {url}: {e}"))),
        Some(_) => Err(Error::Config(format!("{url} is not https://: with [tls] every call between services is encrypted"))),
        None if url.starts_with("https://") => {
            Err(Error::Config(format!("{url} is https://, but [tls] dir is not set: this process has no CA to trust it by")))
        }
        None => Ok(endpoint),
    }
}

/// The client TLS of a tool (`jiesuctl`) named `name`: trusts the district's CA, and shows
/// `<dir>/<name>.pem` when there is one (for districts with mutual TLS). `None` without `[tls] dir`.
pub fn client_config(settings: &TlsSettings, name: &str) -> Result<Option<tonic::transport::ClientTlsConfig>, Error> {
    let Some(dir) = &settings.dir else { return Ok(None) };
    let ca = read(&dir.join(CA), "the district's CA")?;
    let config = tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(ca));
    let (cert, key) = cert_paths(dir, name);
    if cert.exists() {
        return Ok(Some(
            config.identity(tonic::transport::Identity::from_pem(read(&cert, "the certificate")?, read(&key, "the private key")?)),
        ));
    }
    Ok(Some(config))
}

// -------------------------------------------------------------------------- making certificates

/// A district CA: its certificate and key (PEM). For a district without a PKI of its own, and
/// for the demo and the tests.
pub fn make_ca(name: &str) -> Result<(String, String), Error> {
    let key = rcgen::KeyPair::generate().map_err(cert_error)?;
    let cert = ca_params(name)?.self_signed(&key).map_err(cert_error)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn ca_params(name: &str) -> Result<rcgen::CertificateParams, Error> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "Jiesu");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages =
        vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign, rcgen::KeyUsagePurpose::DigitalSignature];
    Ok(params)
}

/// A certificate for `name`, valid for `hosts` (names or IP addresses) as a server and as a
/// client, signed by the CA `ca_name` whose key is `ca_key` (PEM); returns certificate and key.
pub fn make_cert(ca_name: &str, ca_key: &str, name: &str, hosts: &[String]) -> Result<(String, String), Error> {
    let ca_key = rcgen::KeyPair::from_pem(ca_key).map_err(cert_error)?;
    let issuer = rcgen::Issuer::new(ca_params(ca_name)?, ca_key);
    let mut params = rcgen::CertificateParams::new(hosts.to_vec()).map_err(cert_error)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let key = rcgen::KeyPair::generate().map_err(cert_error)?;
    let cert = params.signed_by(&key, &issuer).map_err(cert_error)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn cert_error(e: rcgen::Error) -> Error {
    Error::Config(format!("cannot make a certificate: {e}"))
}

/// Writes `<dir>/ca.pem` and `<dir>/ca.key.pem` unless they exist; the CA's name is `name`.
pub fn ensure_ca(dir: &Path, name: &str) -> Result<bool, Error> {
    let (cert, key) = cert_paths(dir, "ca");
    if cert.exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
    let (cert_pem, key_pem) = make_ca(name)?;
    crate::config::write_private(&key, &key_pem)?;
    std::fs::write(&cert, cert_pem).map_err(|e| Error::Config(format!("cannot write {}: {e}", cert.display())))?;
    Ok(true)
}

/// Writes `<dir>/<name>.pem` and `<dir>/<name>.key.pem` for `hosts`, signed by the CA in `dir`
/// (named `ca_name` when it was made). Overwrites: this is how a certificate is renewed.
pub fn issue_cert(dir: &Path, ca_name: &str, name: &str, hosts: &[String]) -> Result<(), Error> {
    let (_, ca_key) = cert_paths(dir, "ca");
    let ca_key = std::fs::read_to_string(&ca_key)
        .map_err(|e| Error::Config(format!("cannot read the CA's key {}: {e} (run `jiesuctl tls ca` first)", ca_key.display())))?;
    let (cert_pem, key_pem) = make_cert(ca_name, &ca_key, name, hosts)?;
    let (cert, key) = cert_paths(dir, name);
    let _ = std::fs::remove_file(&key);
    crate::config::write_private(&key, &key_pem)?;
    std::fs::write(&cert, cert_pem).map_err(|e| Error::Config(format!("cannot write {}: {e}", cert.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> Vec<SocketAddr> {
        vec!["127.0.0.1:50051".parse().unwrap(), "[::1]:9651".parse().unwrap()]
    }

    #[test]
    fn no_tls_is_refused_unless_asked_for_on_loopback() {
        let err = Tls::load(&TlsSettings::default(), "intake", &loopback()).unwrap_err();
        assert!(err.to_string().contains("[tls] dir is not set"), "{err}");
        let plain = TlsSettings { plaintext: true, ..Default::default() };
        assert!(Tls::load(&plain, "intake", &loopback()).unwrap().is_none());
        let open: Vec<SocketAddr> = vec!["0.0.0.0:50051".parse().unwrap()];
        let err = Tls::load(&plain, "intake", &open).unwrap_err();
        assert!(err.to_string().contains("0.0.0.0:50051 is not a loopback address"), "{err}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let settings = TlsSettings { dir: Some(dir.path().into()), ..Default::default() };
        let err = Tls::load(&settings, "intake", &loopback()).unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }

    #[test]
    fn certificates_are_made_and_load() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ensure_ca(dir.path(), "测试区 CA").unwrap());
        assert!(!ensure_ca(dir.path(), "测试区 CA").unwrap(), "a second CA over the first");
        issue_cert(dir.path(), "测试区 CA", "intake", &["127.0.0.1".into(), "localhost".into()]).unwrap();
        let settings = TlsSettings { dir: Some(dir.path().into()), client_auth: true, plaintext: false };
        let tls = Tls::load(&settings, "intake", &loopback()).unwrap().expect("TLS");
        tls.http_server().expect("a rustls server configuration");
        assert!(!format!("{tls:?}").contains("PRIVATE KEY"));
    }
}
