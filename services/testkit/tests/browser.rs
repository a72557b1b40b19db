//! The browser harness against a real page: a form with a text input, a select and a file input,
//! posted as multipart to a handler that echoes what it received.

use std::time::Duration;

use axum::{
    Router,
    extract::Multipart,
    response::Html,
    routing::{get, post},
};
use jiesu_testkit::browser::{Browser, BrowserError};

const FORM: &str = r#"<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>接诉 test form</title>
</head>
<body>
<form method="post" action="/submit" enctype="multipart/form-data">
  <label>标题 <input name="title" id="title" value="draft"></label>
  <label>紧急程度
    <select name="urgency" id="urgency">
      <option value="normal">一般</option>
      <option value="urgent">紧急</option>
      <option value="closed" disabled>已关闭</option>
    </select>
  </label>
  <label>照片 <input type="file" name="photo" id="photo"></label>
  <p id="hidden" style="display: none">not shown</p>
  <button type="submit" id="send">提交</button>
</form>
<script>
  // Shows the page reacting to the select's change event, as an htmx trigger would.
  document.getElementById("urgency").addEventListener("change", e => { document.title = "changed to " + e.target.value; });
</script>
</body>
</html>"#;

/// Echoes every field: `name=value`, or for a file `name=<file name> (<bytes> bytes): <content>`.
async fn submit(mut form: Multipart) -> Html<String> {
    let mut items = String::new();
    while let Some(field) = form.next_field().await.expect("a multipart field") {
        let name = field.name().unwrap_or_default().to_string();
        let file = field.file_name().map(str::to_string);
        let data = field.bytes().await.expect("the field's data");
        let text = String::from_utf8_lossy(&data);
        let shown = match file {
            Some(file) => format!("{name}={file} ({} bytes): {text}", data.len()),
            None => format!("{name}={text}"),
        };
        items.push_str(&format!("<li id=\"{name}\">{}</li>\n", escape(&shown)));
    }
    Html(format!("<!doctype html><title>Received</title><ul id=\"echo\">\n{items}</ul>"))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The page server on a free loopback port; its base URL.
async fn serve() -> String {
    let app = Router::new().route("/", get(|| async { Html(FORM) })).route("/submit", post(submit));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the page server");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve the page") });
    format!("http://{addr}")
}

#[tokio::test]
async fn fills_uploads_and_submits_a_form() {
    let base = serve().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let photo = dir.path().join("photo.txt");
    std::fs::write(&photo, "a small file").expect("write the file to upload");

    let browser = Browser::start().await.expect("start the browser");
    browser.goto(&base).await.expect("open the form");
    assert_eq!(browser.title().await.unwrap(), "接诉 test form");
    assert_eq!(browser.current_url().await.unwrap(), format!("{base}/"));
    assert!(browser.page_source().await.unwrap().contains(r#"enctype="multipart/form-data""#));
    assert_eq!(browser.execute("return window.innerWidth", vec![]).await.unwrap(), 1280);

    let title = browser.find("#title").await.unwrap();
    assert_eq!(title.value().await.unwrap(), "draft");
    assert_eq!(title.attribute("name").await.unwrap().as_deref(), Some("title"));
    assert_eq!(title.attribute("placeholder").await.unwrap(), None);
    title.clear().await.unwrap();
    title.send_keys("路灯不亮 & <dark>").await.unwrap();
    assert_eq!(title.value().await.unwrap(), "路灯不亮 & <dark>");
    assert_eq!(title.property("tagName").await.unwrap(), "INPUT");

    let urgency = browser.find("select[name=urgency]").await.unwrap();
    urgency.select_by_value("urgent").await.unwrap();
    assert_eq!(urgency.value().await.unwrap(), "urgent");
    assert_eq!(browser.title().await.unwrap(), "changed to urgent", "the change event fired");
    let missing = urgency.select_by_value("nonesuch").await.unwrap_err().to_string();
    assert!(missing.contains("nonesuch") && missing.contains("normal, urgent, closed"), "{missing}");
    let disabled = urgency.select_by_value("closed").await.unwrap_err().to_string();
    assert!(disabled.contains("disabled"), "{disabled}");

    let file = browser.find("input[type=file]").await.unwrap();
    file.upload(&photo).await.unwrap();
    assert_eq!(browser.execute("return arguments[0].files[0].name", vec![file.to_arg()]).await.unwrap(), "photo.txt");

    assert_eq!(browser.find_all("option").await.unwrap().len(), 3);
    assert!(browser.find_all("table").await.unwrap().is_empty());
    assert!(browser.find("#send").await.unwrap().is_displayed().await.unwrap());
    assert!(!browser.find("#hidden").await.unwrap().is_displayed().await.unwrap());

    let shots = tempfile::tempdir().expect("temp dir for screenshots");
    let form_png = shots.path().join("form.png");
    browser.screenshot(&form_png).await.unwrap();
    let png = std::fs::read(&form_png).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(png.len() > 1000, "a real picture: {} bytes", png.len());

    browser.find("#send").await.unwrap().click().await.unwrap();
    let echoed = browser.wait_for_text("#echo", "photo=", Duration::from_secs(10)).await.unwrap();
    assert_eq!(browser.current_url().await.unwrap(), format!("{base}/submit"));
    let echoed = echoed.text().await.unwrap();
    assert!(echoed.contains("title=路灯不亮 & <dark>"), "{echoed}");
    assert!(echoed.contains("urgency=urgent"), "{echoed}");
    assert!(echoed.contains("photo=photo.txt (12 bytes): a small file"), "{echoed}");
    assert_eq!(
        browser.wait_for("#photo", Duration::from_secs(1)).await.unwrap().text().await.unwrap(),
        "photo=photo.txt (12 bytes): a small file"
    );

    // What fails says what it looked for, and where.
    match browser.find("#nowhere").await {
        Err(e @ BrowserError::NotFound { .. }) => {
            let e = e.to_string();
            assert!(e.contains("#nowhere") && e.contains(&format!("{base}/submit")), "{e}");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    let e = browser.wait_for("#nowhere", Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(e, BrowserError::Timeout { .. }), "{e}");
    let e = browser.wait_for_text("#echo", "never", Duration::from_millis(300)).await.unwrap_err().to_string();
    assert!(e.contains("never") && e.contains("urgency=urgent"), "{e}");
    let e = browser.execute("throw new Error('boom')", vec![]).await.unwrap_err();
    assert_eq!(e.webdriver_error(), Some("javascript error"), "{e}");

    browser.set_window_size(800, 600).await.unwrap();
    assert_eq!(browser.execute("return window.innerWidth", vec![]).await.unwrap(), 800);
    browser.quit().await.expect("end the session");
}

#[tokio::test]
async fn a_phone_has_a_phone_sized_viewport() {
    let base = serve().await;
    let browser = Browser::phone().await.expect("start the browser");
    browser.goto(&base).await.unwrap();
    let viewport = browser.execute("return [window.innerWidth, window.innerHeight, window.devicePixelRatio]", vec![]).await.unwrap();
    assert_eq!(viewport, serde_json::json!([390, 844, 3]));
    assert_eq!(browser.execute("return matchMedia('(pointer: coarse)').matches", vec![]).await.unwrap(), true);

    // The form works the same with touch.
    let title = browser.find("#title").await.unwrap();
    title.clear().await.unwrap();
    title.send_keys("井盖松动").await.unwrap();
    browser.find("#urgency").await.unwrap().select_by_value("urgent").await.unwrap();
    browser.find("#send").await.unwrap().click().await.unwrap();
    browser.wait_for_text("#echo", "title=井盖松动", Duration::from_secs(10)).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    browser.screenshot(dir.path().join("phone.png")).await.unwrap();
    let png = std::fs::read(dir.path().join("phone.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    // IHDR: width and height in device pixels, big-endian, at bytes 16..24.
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 390 * 3);
    // Dropped without quit(): Drop ends the session itself.
}
