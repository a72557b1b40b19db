//! The mailbox form, the receipt and the status page in a real headless Chromium (Debian's,
//! installed by `scripts/test.sh`), on a phone-sized screen: a citizen writes to the secretary
//! with a photo, keeps the receipt, and looks the case up; what they typed is shown as text.
//! Screenshots land in `target/screenshots/` for a person to look at.

use std::{path::PathBuf, time::Duration};

use jiesu_testkit::{Harness, browser::Browser};

const WAIT: Duration = Duration::from_secs(20);

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    dir
}

/// A tiny valid PNG (1×1, grey), as a phone's gallery would hand over.
fn photo(dir: &std::path::Path) -> PathBuf {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, 1, 1);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[128]).unwrap();
    }
    let path = dir.join("现场照片.png");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[tokio::test]
async fn a_citizen_on_a_phone_writes_keeps_the_receipt_and_follows_the_case() {
    let (h, _signer) = Harness::start_with_tokens("intake", |c, k| async move { jiesu_intake::start(&c, k).await }).await;
    let mut config = h.bed.config.clone();
    config.set("web.listen", "127.0.0.1:0");
    config.set("web.intake_url", format!("http://{}", h.running().grpc_addr));
    let web = jiesu_web::start(&config).await.expect("the web front starts");
    let base = format!("http://{}", web.addr);
    let shots = screenshots();
    let b = Browser::phone().await.expect("Chromium (scripts/test.sh installs it)");

    b.goto(&format!("{base}/mailbox/secretary_mailbox")).await.unwrap();
    assert!(b.title().await.unwrap().contains("书记信箱"));
    let width: i64 = b.execute("return document.documentElement.scrollWidth", vec![]).await.unwrap().as_i64().unwrap();
    assert!(width <= 390, "the form fits a phone's width without scrolling sideways ({width}px)");
    b.screenshot(shots.join("mailbox-form-phone.png")).await.unwrap();
    let locate = b.wait_for("#locate", WAIT).await.unwrap();
    assert!(locate.is_displayed().await.unwrap(), "our own script runs under the page's policy and offers the phone's location");

    b.find("input[name=request_type][value=complaint]").await.unwrap().click().await.unwrap();
    b.find("#name").await.unwrap().send_keys("李先生").await.unwrap();
    b.find("#phone").await.unwrap().send_keys("13900139000").await.unwrap();
    b.find("#community").await.unwrap().select_by_value("st-dongmen/cm-lizhi").await.unwrap();
    b.find("#address").await.unwrap().send_keys("荔枝小区3栋").await.unwrap();
    b.find("#title").await.unwrap().send_keys("<img src=x onerror=alert(1)>楼道堆物").await.unwrap();
    b.find("#description").await.unwrap().send_keys("3栋楼道里堆满杂物，堵住了消防通道。<script>alert(1)</script>").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    b.find("#photos").await.unwrap().upload(photo(dir.path())).await.unwrap();
    // A wrong sum first: the form comes back, with the reason next to the field and the text kept.
    b.find("#answer").await.unwrap().send_keys("100").await.unwrap();
    b.find("button[type=submit]").await.unwrap().click().await.unwrap();
    let error = b.wait_for("#answer-error", WAIT).await.unwrap();
    assert!(error.text().await.unwrap().contains("验证题答案不正确"));
    assert_eq!(b.find("#address").await.unwrap().value().await.unwrap(), "荔枝小区3栋");
    b.screenshot(shots.join("mailbox-form-error-phone.png")).await.unwrap();

    let label = b.find("label[for=answer]").await.unwrap().text().await.unwrap();
    let sum = label.trim_start_matches("验证：").trim_end_matches("等于几？");
    let (a, c) = sum.split_once(" 加 ").expect("a sum");
    let answer = a.trim().parse::<u32>().unwrap() + c.trim().parse::<u32>().unwrap();
    b.find("#answer").await.unwrap().send_keys(&answer.to_string()).await.unwrap();
    // The browser does not refill files: attach the photo again.
    b.find("#photos").await.unwrap().upload(photo(dir.path())).await.unwrap();
    b.find("button[type=submit]").await.unwrap().click().await.unwrap();
    if b.wait_for("#case-no", WAIT).await.is_err() {
        b.screenshot(shots.join("receipt-failed-phone.png")).await.unwrap();
        panic!("no receipt: {}", b.page_source().await.unwrap());
    }
    let case_no = b.find("#case-no").await.unwrap().text().await.unwrap();
    let code = b.find("#query-code").await.unwrap().text().await.unwrap();
    assert!(case_no.starts_with("DM") && code.len() == 8, "{case_no} {code}");
    b.screenshot(shots.join("receipt-phone.png")).await.unwrap();

    b.goto(&format!("{base}/status")).await.unwrap();
    b.find("#case_no").await.unwrap().send_keys(&case_no).await.unwrap();
    b.find("#query_code").await.unwrap().send_keys(&code.to_lowercase()).await.unwrap();
    b.find("button[type=submit]").await.unwrap().click().await.unwrap();
    let status = b.wait_for_text("#status", "已受理", WAIT).await.unwrap().text().await.unwrap();
    assert!(status.contains("<img src=x onerror=alert(1)>楼道堆物"), "the title is shown as the citizen typed it: {status}");
    let injected: i64 = b.execute("return document.querySelectorAll('img, script').length", vec![]).await.unwrap().as_i64().unwrap();
    assert_eq!(injected, 0, "nothing the citizen typed became markup");
    b.screenshot(shots.join("status-phone.png")).await.unwrap();

    b.goto(&format!("{base}/status")).await.unwrap();
    b.find("#case_no").await.unwrap().send_keys(&case_no).await.unwrap();
    b.find("#query_code").await.unwrap().send_keys("WRONG234").await.unwrap();
    b.find("button[type=submit]").await.unwrap().click().await.unwrap();
    let refused = b.wait_for("#status-error", WAIT).await.unwrap().text().await.unwrap();
    assert!(refused.contains("受理编号或查询码不正确"));
    drop(b);
    web.shutdown().await;
}
