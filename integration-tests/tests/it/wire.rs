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
