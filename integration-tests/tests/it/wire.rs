//! Encrypted on the wire (issue 6): a service with the district's certificates speaks only TLS
//! on its gRPC and admin ports, and with mutual TLS refuses a client that shows no certificate
//! of the district's CA. (The whole loop runs over mutual TLS too: `flow.rs`.)

use std::sync::Arc;

use anyhow::{Result, ensure};
use jiesu_testkit::{Harness, TestBed, demo_config, http_get, https_get};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

async fn health(endpoint: tonic::transport::Endpoint) -> Result<i32, String> {
    let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
    let r = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await.map_err(|e| e.to_string())?;
    Ok(r.into_inner().status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_speaks_only_tls_and_mutual_tls_wants_the_districts_certificate() -> Result<()> {
    let mut bed = TestBed::new(demo_config(), &["intake"]);
    bed.use_tls(true);
    let dir = bed.dir.path().join("tls");
    let client = bed.client_tls().expect("the client's certificate");
    let h =
        Harness::start_on(bed, "intake", Arc::new(jiesu_kit::SystemClock), |c, k| async move { jiesu_intake::start(&c, k).await }).await;
    let grpc = h.running().grpc_addr;
    let admin = h.running().admin_addr;

    // Over TLS with the client's certificate: served.
    let url = format!("https://localhost:{}", grpc.port());
    let ok = health(jiesu_kit::tls::endpoint(Some(&client), &url)?).await;
    ensure!(ok.is_ok(), "a client with the district's certificate was refused: {ok:?}");
    // Plain text: no answer.
    let plain = health(tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))?).await;
    ensure!(plain.is_err(), "gRPC answered in plain text");
    // TLS trusting the CA but showing no certificate: refused by mutual TLS.
    let ca = std::fs::read(dir.join("ca.pem"))?;
    let anonymous = tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(ca));
    let refused = health(tonic::transport::Endpoint::from_shared(url)?.tls_config(anonymous)?).await;
    ensure!(refused.is_err(), "a client without a certificate was served");

    // The admin port likewise.
    ensure!(http_get(admin, "/healthz").await.is_none_or(|(code, _)| code != 200), "the admin port answered in plain text");
    let (code, body) = https_get(admin, &dir, Some("client"), "/healthz").await.map_err(anyhow::Error::msg)?;
    ensure!(code == 200 && body.contains("ok"), "{code} {body}");
    ensure!(https_get(admin, &dir, None, "/healthz").await.is_err(), "the admin port served a client without a certificate");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_only_when_asked_for_and_only_on_loopback() -> Result<()> {
    let mut bed = TestBed::new(demo_config(), &["intake"]);
    bed.config.set("tls.plaintext", false);
    let err = jiesu_intake::start(&bed.config, Arc::new(jiesu_kit::SystemClock)).await.err().expect("intake started without TLS");
    ensure!(err.to_string().contains("[tls] dir is not set"), "{err}");
    bed.config.set("tls.plaintext", true);
    bed.config.set("intake.grpc_addr", "0.0.0.0:0");
    let err =
        jiesu_intake::start(&bed.config, Arc::new(jiesu_kit::SystemClock)).await.err().expect("intake served plain text off loopback");
    ensure!(err.to_string().contains("not a loopback address"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_speaks_only_tls_and_wants_each_clients_certificate() -> Result<()> {
    use jiesu_kit::{access, config::NatsSettings, messaging::Broker, tls};
    use std::time::Duration;
    let dir = tempfile::tempdir()?;
    let dir = dir.path();
    tls::ensure_ca(dir, "Jiesu test CA")?;
    let hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    for name in ["nats", "operator", "dispatch"] {
        tls::issue_cert(dir, "Jiesu test CA", name, &hosts)?;
    }
    let ca = dir.join(tls::CA);
    let (cert, key) = tls::cert_paths(dir, "nats");
    let nats = jiesu_testkit::NatsServer::start_tls(access::TlsFiles { cert, key, ca: Some(ca.clone()), verify_clients: true });
    let settings = |holder: Option<&str>| NatsSettings {
        url: vec![nats.url()],
        subject_root: nats.root().to_string(),
        keys_dir: Some(nats.keys_dir().to_path_buf()),
        tls_ca: Some(ca.clone()),
        tls_cert: holder.map(|h| tls::cert_paths(dir, h).0),
        tls_key: holder.map(|h| tls::cert_paths(dir, h).1),
        ..Default::default()
    };

    // The operator provisions over TLS, showing its certificate.
    let (op_cert, op_key) = tls::cert_paths(dir, "operator");
    let operator = async_nats::ConnectOptions::new()
        .nkey(access::read_seed(nats.keys_dir(), access::OPERATOR)?)
        .require_tls(true)
        .add_root_certificates(ca.clone())
        .add_client_certificate(op_cert, op_key)
        .connect(nats.url())
        .await?;
    let mut district = jiesu_kit::DistrictConfig::load(demo_config())?;
    district.set("nats.subject_root", nats.root().to_string());
    access::provision(&async_nats::jetstream::new(operator), &district).await?;

    // A service with its certificate and its key: connected.
    let dispatch = tokio::time::timeout(Duration::from_secs(20), Broker::connect(&settings(Some("dispatch")), "dispatch")).await;
    ensure!(matches!(dispatch, Ok(Ok(_))), "dispatch could not connect over TLS: {:?}", dispatch.map(|r| r.err()));
    // Its key but no certificate: not connected.
    let bare = tokio::time::timeout(Duration::from_secs(5), Broker::connect(&settings(None), "dispatch")).await;
    ensure!(!matches!(bare, Ok(Ok(_))), "a client without a certificate connected");
    // Plain text: not connected.
    let plain = tokio::time::timeout(
        Duration::from_secs(5),
        async_nats::ConnectOptions::new().nkey(access::read_seed(nats.keys_dir(), "dispatch")?).connect(nats.url()),
    )
    .await;
    ensure!(!matches!(plain, Ok(Ok(_))), "a client in plain text connected");
    Ok(())
}
