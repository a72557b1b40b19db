//! Open311 GeoReport v2 against a real intake: to the letter of the specification over HTTP
//! (status codes, error bodies, `.json` and `.xml`, ids as strings, a single request as a list),
//! and through an existing client library (`georeport`, PyPI, installed by `scripts/test.sh`).

use std::path::PathBuf;

use jiesu_kit::auth::Role;
use jiesu_proto::v1::CaseResolved;
use jiesu_testkit::{Harness, event_meta, until_handled};
use reqwest::StatusCode;
use serde_json::Value;

const KEY: &str = "test-open311-key";

async fn district() -> (Harness, jiesu_web::WebFront, jiesu_kit::auth::Signer) {
    let (h, signer) = Harness::start_with_tokens("intake", |c, k| async move { jiesu_intake::start(&c, k).await }).await;
    let mut config = h.bed.config.clone();
    config.set("web.listen", "127.0.0.1:0");
    config.set("web.intake_url", format!("http://{}", h.running().grpc_addr));
    config.set("web.public_url", "https://xinfang.example.gov.cn");
    let digest = ring::digest::digest(&ring::digest::SHA256, KEY.as_bytes());
    let hash: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let mut key = toml::Table::new();
    key.insert("channel".into(), "open311".into());
    key.insert("name".into(), "测试App".into());
    key.insert("key_sha256".into(), hash.into());
    config.set("web.open311_keys", toml::Value::Array(vec![toml::Value::Table(key)]));
    let web = jiesu_web::start(&config).await.expect("the web front starts");
    (h, web, signer)
}

fn client() -> reqwest::Client {
    jiesu_kit::tls::install_crypto_provider();
    reqwest::Client::new()
}

#[tokio::test]
async fn open311_to_the_letter_and_through_a_client_library() {
    let (h, web, signer) = district().await;
    let base = format!("http://{}/open311/v2", web.addr);
    let c = client();
    let get = |path: &str| {
        let c = c.clone();
        let url = format!("{base}/{path}");
        async move { c.get(url).send().await.unwrap() }
    };

    let discovery: Value = get("discovery.json").await.json().await.unwrap();
    assert_eq!(discovery["endpoints"][0]["url"], "https://xinfang.example.gov.cn/open311/v2");
    assert_eq!(discovery["endpoints"][0]["specification"], "http://wiki.open311.org/GeoReport_v2");
    let xml = get("discovery.xml").await;
    assert!(xml.headers()["content-type"].to_str().unwrap().starts_with("text/xml"));
    assert!(xml.text().await.unwrap().contains("<discovery><changeset>"));

    let services: Value = get("services.json").await.json().await.unwrap();
    let services = services.as_array().unwrap();
    assert_eq!(services.len(), 22);
    let parking = services.iter().find(|s| s["service_code"] == "01.03").unwrap();
    assert_eq!((parking["metadata"].as_bool(), parking["type"].as_str()), (Some(false), Some("realtime")));
    assert!(parking["group"].as_str().unwrap().len() > 1);
    let definition: Value = get("services/01.03.json").await.json().await.unwrap();
    assert_eq!(definition["service_code"], "01.03");
    let unknown = get("services/99.99.xml").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.text().await.unwrap().contains("<errors><error><code>404</code><description>"));
    assert_eq!(get("services.html").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(get("services.json?jurisdiction_id=elsewhere").await.status(), StatusCode::NOT_FOUND);

    // Posting: the key, the service, the place, the words; each refusal in the spec's body.
    let post = |format: &'static str, form: Vec<(&'static str, &'static str)>| {
        let c = c.clone();
        let url = format!("{base}/requests.{format}");
        async move { c.post(url).form(&form).send().await.unwrap() }
    };
    let good = vec![
        ("api_key", KEY),
        ("service_code", "01.03"),
        ("lat", "22.5431"),
        ("long", "114.0579"),
        ("description", "人行道上停满了车，轮椅过不去"),
        ("first_name", "明"),
        ("last_name", "王"),
    ];
    let without = |key: &str| good.iter().filter(|(k, _)| *k != key).cloned().collect::<Vec<_>>();
    let refused = post("json", without("api_key")).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body[0]["code"], 403);
    let wrong_key = post("xml", [without("api_key"), vec![("api_key", "guess")]].concat()).await;
    assert_eq!(wrong_key.status(), StatusCode::FORBIDDEN);
    assert!(wrong_key.text().await.unwrap().contains("<errors><error><code>403</code>"));
    let unknown = post("json", [without("service_code"), vec![("service_code", "99.99")]].concat()).await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let body: Value = unknown.json().await.unwrap();
    assert!(body[0]["description"].as_str().unwrap().contains("service_code \"99.99\""), "{body}");
    let nowhere = post("json", without("lat").into_iter().filter(|(k, _)| *k != "long").collect()).await;
    assert_eq!(nowhere.status(), StatusCode::BAD_REQUEST);
    let half = post("json", without("long")).await;
    assert_eq!(half.status(), StatusCode::BAD_REQUEST);
    let not_number = post("json", [without("lat"), vec![("lat", "north")]].concat()).await;
    assert_eq!(not_number.status(), StatusCode::BAD_REQUEST);

    let created = post("json", good.clone()).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let id = created[0]["service_request_id"].as_str().expect("ids are strings").to_string();
    assert!(id.starts_with("DM"));
    let xml = post("xml", good.clone()).await.text().await.unwrap();
    assert!(xml.contains("<service_requests><request><service_request_id>DM"), "{xml}");

    let one: Value = get(&format!("requests/{id}.json")).await.json().await.unwrap();
    let one = one.as_array().expect("a single request is a one-element list");
    assert_eq!(one.len(), 1);
    assert_eq!(
        (one[0]["status"].as_str(), one[0]["service_code"].as_str(), one[0]["lat"].as_f64()),
        (Some("open"), Some("01.03"), Some(22.5431))
    );
    assert!(one[0]["description"].is_null(), "the citizen's words are not public");
    let text = serde_json::to_string(&one).unwrap();
    assert!(!text.contains("王明") && !text.contains("轮椅"), "{text}");
    assert_eq!(get("requests/DM0.json").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(get("tokens/nothing.json").await.status(), StatusCode::NOT_FOUND);

    // Resolved: closed, and filtered as such.
    let case_id = {
        let mut intake = jiesu_proto::v1::intake_service_client::IntakeServiceClient::new(h.channel().await);
        let mut req = tonic::Request::new(jiesu_proto::v1::CaseRef { r#ref: Some(jiesu_proto::v1::case_ref::Ref::CaseNo(id.clone())) });
        req.metadata_mut().insert("authorization", jiesu_testkit::bearer(&signer, "agent-1", Role::CentreAgent, None));
        intake.get_submission(req).await.unwrap().into_inner().case_id
    };
    let meta = event_meta(&uuid::Uuid::now_v7().to_string(), &case_id, &id);
    h.publish(&CaseResolved {
        meta: Some(meta.clone()),
        unit_id: "st-dongmen".into(),
        reply: "已清理占道车辆".into(),
        round: 1,
        ..Default::default()
    })
    .await;
    until_handled(&h.db, jiesu_intake::PROGRESS_CONSUMER, &meta.event_id, std::time::Duration::from_secs(20)).await.unwrap();
    let closed: Value = get("requests.json?status=closed&service_code=01.03").await.json().await.unwrap();
    let closed_ids: Vec<&str> = closed.as_array().unwrap().iter().filter_map(|r| r["service_request_id"].as_str()).collect();
    assert_eq!(closed_ids, [id.as_str()]);
    assert!(closed[0]["status_notes"].as_str().unwrap().contains("已清理占道车辆"));
    let open: Value = get("requests.json?status=open").await.json().await.unwrap();
    assert_eq!(open.as_array().unwrap().len(), 1, "the other request posted, in XML, is still open");
    let bad = get("requests.json?start_date=2026-01-01T00:00:00Z&end_date=2026-12-01T00:00:00Z").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "no more than 90 days");
    assert_eq!(get("requests.json?status=pending").await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(get("requests.json?start_date=yesterday").await.status(), StatusCode::BAD_REQUEST);

    // The same through a client library written by others, in both formats.
    let open_id = open[0]["service_request_id"].as_str().unwrap().to_string();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python_path = std::env::var("JIESU_TEST_PYTHONPATH").map(PathBuf::from).unwrap_or_else(|_| root.join("../../.local/python"));
    let out = tokio::process::Command::new("python3")
        .arg(root.join("tests/open311/client.py"))
        .args([base.as_str(), open_id.as_str(), "01.03"])
        .env("PYTHONPATH", &python_path)
        .output()
        .await
        .expect("python3 runs");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("OK"),
        "the georeport client (scripts/test.sh installs it into {}):\n{}\n{}",
        python_path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    web.shutdown().await;
}
