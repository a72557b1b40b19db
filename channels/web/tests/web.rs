//! The citizens' web front against a real intake (in-process, a real nats-server, SQLite), used
//! as a citizen's browser and an attacker would use it over HTTP: the form, the human check, the
//! upload, the receipt, the status page, forged, cross-site, replayed and disguised posts, the
//! QR codes decoded.

use jiesu_kit::auth::Role;
use jiesu_proto::v1::{CaseRef, GetAttachmentRequest, case_ref::Ref, intake_service_client::IntakeServiceClient};
use jiesu_testkit::{Harness, bearer};
use reqwest::{StatusCode, multipart};

/// Intake with tokens required, and the web front signing its own as producer `web`.
async fn district() -> (Harness, jiesu_web::WebFront, jiesu_kit::auth::Signer) {
    district_with(|_| {}).await
}

async fn district_with(tweak: impl FnOnce(&mut jiesu_kit::DistrictConfig)) -> (Harness, jiesu_web::WebFront, jiesu_kit::auth::Signer) {
    let (h, signer) = Harness::start_with_tokens("intake", |c, k| async move { jiesu_intake::start(&c, k).await }).await;
    let mut config = h.bed.config.clone();
    config.set("web.listen", "127.0.0.1:0");
    config.set("web.intake_url", format!("http://{}", h.running().grpc_addr));
    config.set("web.public_url", "https://xinfang.example.gov.cn");
    tweak(&mut config);
    let web = jiesu_web::start(&config).await.expect("the web front starts");
    (h, web, signer)
}

fn browser() -> reqwest::Client {
    jiesu_kit::tls::install_crypto_provider();
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn url(web: &jiesu_web::WebFront, path: &str) -> String {
    format!("http://{}{path}", web.addr)
}

/// The form's token and the answer to its question, read off the page as a person would.
fn token_and_answer(page: &str) -> (String, String) {
    let token = between(page, "name=\"token\" value=\"", "\"");
    let question = between(page, "验证：", "等于几？");
    let (a, b) = question.split_once(" 加 ").expect("a sum");
    let sum: u32 = a.trim().parse::<u32>().unwrap() + b.trim().parse::<u32>().unwrap();
    (token, sum.to_string())
}

fn between(text: &str, start: &str, end: &str) -> String {
    let from = text.find(start).unwrap_or_else(|| panic!("{start:?} not in the page:\n{text}")) + start.len();
    let to = text[from..].find(end).expect("end") + from;
    text[from..to].to_string()
}

/// A small JPEG whose EXIF block holds a location.
fn photo_with_location() -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    j.extend(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    let exif = b"Exif\0\0GPS 22.5431N 114.0579E";
    j.extend([0xFF, 0xE1]);
    j.extend(((exif.len() + 2) as u16).to_be_bytes());
    j.extend(exif);
    j.extend([0xFF, 0xDB, 0x00, 0x43, 0x00]);
    j.extend([1u8; 64]);
    j.extend([0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x01, 0x00, 0x01, 0x03, 0x01, 0x11, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01]);
    j.extend([0xFF, 0xDA, 0x00, 0x0C, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3F, 0x00]);
    j.extend([0x12, 0x34, 0x56, 0xFF, 0xD9]);
    j
}

fn letter(token: &str, answer: &str, description: &str) -> multipart::Form {
    multipart::Form::new()
        .text("token", token.to_string())
        .text("answer", answer.to_string())
        .text("request_type", "complaint")
        .text("name", "张女士")
        .text("phone", "13800138000")
        .text("community", "st-dongmen/cm-lizhi")
        .text("address", "荔枝小区东门")
        .text("title", "<script>alert('x')</script>地锁")
        .text("description", description.to_string())
}

#[tokio::test]
async fn a_citizen_writes_to_the_secretary_and_follows_the_case() {
    let (h, web, signer) = district().await;
    let b = browser();
    let index = b.get(url(&web, "/")).send().await.unwrap().text().await.unwrap();
    assert!(index.contains("书记信箱") && index.contains("/mailbox/secretary_mailbox"), "{index}");
    let page = b.get(url(&web, "/mailbox/secretary_mailbox")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
    let page = page.text().await.unwrap();
    assert!(page.contains("联系电话") && page.contains("荔枝社区"), "the form is Chinese with the community picker");
    let (token, answer) = token_and_answer(&page);

    let form = letter(&token, &answer, "小区门口有人私装地锁，占用公共车位。")
        .text("latitude", "22.543100")
        .text("longitude", "114.057900")
        .part("photos", multipart::Part::bytes(photo_with_location()).file_name("lock.jpg").mime_str("image/jpeg").unwrap());
    let receipt = b.post(url(&web, "/mailbox/secretary_mailbox")).multipart(form).send().await.unwrap();
    assert_eq!(receipt.status(), StatusCode::OK);
    assert_eq!(receipt.headers()["cache-control"], "no-store", "the query code is never cached");
    let receipt = receipt.text().await.unwrap();
    let case_no = between(&receipt, "id=\"case-no\">", "<");
    let code = between(&receipt, "id=\"query-code\">", "<");
    assert!(case_no.starts_with("DM") && code.len() == 8, "{receipt}");
    assert!(!code.contains(&case_no[case_no.len() - 5..]), "the code is not made of the case number");

    // The case carries the upload by reference; the centre sees the photo as sent, a unit
    // without its location.
    let mut intake = IntakeServiceClient::new(h.channel().await);
    let mut ask = tonic::Request::new(CaseRef { r#ref: Some(Ref::CaseNo(case_no.clone())) });
    ask.metadata_mut().insert("authorization", bearer(&signer, "agent-1", Role::CentreAgent, None));
    let view = intake.get_submission(ask).await.unwrap().into_inner();
    assert_eq!(view.attachments.len(), 1);
    let place = view.location.clone().unwrap();
    assert_eq!((place.community.as_str(), place.latitude, place.longitude), ("cm-lizhi", 22.5431, 114.0579), "the point on the map");
    let photo = &view.attachments[0];
    assert_eq!((photo.kind.as_str(), photo.media_type.as_str()), ("photo", "image/jpeg"));
    let fetch = |role: Role, unit: Option<&'static str>| {
        let mut intake = intake.clone();
        let (case_no, sha256, signer) = (case_no.clone(), photo.sha256.clone(), &signer);
        async move {
            let mut ask = tonic::Request::new(GetAttachmentRequest { case: Some(CaseRef { r#ref: Some(Ref::CaseNo(case_no)) }), sha256 });
            ask.metadata_mut().insert("authorization", bearer(signer, "someone", role, unit));
            let mut stream = intake.get_attachment(ask).await?.into_inner();
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.message().await? {
                bytes.extend(chunk.data);
            }
            Ok::<_, tonic::Status>(bytes)
        }
    };
    let original = fetch(Role::CentreAgent, None).await.unwrap();
    assert!(original.windows(3).any(|w| w == b"GPS"), "the centre sees the photo as sent");
    assert_eq!(original, photo_with_location());
    let refused = fetch(Role::UnitHandler, Some("st-xinan")).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "a unit that does not own the case sees none of it");
    let auditor = fetch(Role::Auditor, None).await.unwrap();
    assert_eq!(auditor, original);
    let revisit = fetch(Role::RevisitAgent, None).await.unwrap();
    assert!(!revisit.windows(3).any(|w| w == b"GPS"), "everyone else gets it without its location");
    assert!(revisit.ends_with(&[0xFF, 0xD9]));

    // The status page, with the code typed loosely; never with a wrong one.
    let typed = format!(" {}-{} ", &code[..4].to_lowercase(), &code[4..]);
    let status = b.post(url(&web, "/status")).form(&[("case_no", case_no.as_str()), ("query_code", typed.as_str())]).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::OK);
    let status = status.text().await.unwrap();
    assert!(status.contains("已受理") && status.contains(&case_no), "{status}");
    assert!(status.contains("&#60;script&#62;") && !status.contains("<script>"), "the citizen's title is text, never markup: {status}");
    assert!(!status.contains("13800138000") && !status.contains("张女士"), "no personal data on the status page");
    let wrong = b.post(url(&web, "/status")).form(&[("case_no", case_no.as_str()), ("query_code", "AAAAAAAA")]).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);
    assert!(wrong.text().await.unwrap().contains("受理编号或查询码不正确"));
    for _ in 0..12 {
        let _ = b.post(url(&web, "/status")).form(&[("case_no", case_no.as_str()), ("query_code", "BBBBBBBB")]).send().await.unwrap();
    }
    let locked = b.post(url(&web, "/status")).form(&[("case_no", case_no.as_str()), ("query_code", code.as_str())]).send().await.unwrap();
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS, "guessing locks the case number for an hour, the right code too");
    web.shutdown().await;
}

#[tokio::test]
async fn forged_replayed_and_disguised_posts_are_refused_with_reasons() {
    let (_h, web, _signer) = district().await;
    let b = browser();
    let page = b.get(url(&web, "/mailbox/director_mailbox")).send().await.unwrap().text().await.unwrap();
    let (token, answer) = token_and_answer(&page);

    // A wrong sum: the form comes back with what was typed and the reason next to the field.
    let wrong = b.post(url(&web, "/mailbox/director_mailbox")).multipart(letter(&token, "999", "路灯坏了")).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let wrong = wrong.text().await.unwrap();
    assert!(wrong.contains("id=\"answer-error\"") && wrong.contains("验证题答案不正确") && wrong.contains("路灯坏了"), "{wrong}");

    // Another site's page posting with our token but without our cookie.
    let stranger = browser();
    let forged = stranger.post(url(&web, "/mailbox/director_mailbox")).multipart(letter(&token, &answer, "x")).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.text().await.unwrap().contains("页面已失效"));

    // An executable named .jpg: refused by its content, next to the file field.
    let (token, answer) = token_and_answer(&wrong);
    let exe = multipart::Part::bytes(b"MZ\x90\x00\x03\x00\x00\x00 This program cannot be run in DOS mode".to_vec())
        .file_name("photo.jpg")
        .mime_str("image/jpeg")
        .unwrap();
    let disguised = b
        .post(url(&web, "/mailbox/director_mailbox"))
        .multipart(letter(&token, &answer, "路灯坏了").part("photos", exe))
        .send()
        .await
        .unwrap();
    assert_eq!(disguised.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let disguised = disguised.text().await.unwrap();
    assert!(disguised.contains("id=\"photos-error\"") && disguised.contains("可执行"), "{disguised}");

    // Intake's own rules come back in Chinese next to their field (a foreign number).
    let (token, answer) = token_and_answer(&disguised);
    let foreign = letter(&token, &answer, "路灯坏了").text("phone", "+1 415 555 0100");
    let foreign = b.post(url(&web, "/mailbox/director_mailbox")).multipart(foreign).send().await.unwrap().text().await.unwrap();
    assert!(foreign.contains("id=\"phone-error\"") && foreign.contains("联系电话格式不正确"), "{foreign}");

    // A good post, then the same post again.
    let (token, answer) = token_and_answer(&foreign);
    let first = b.post(url(&web, "/mailbox/director_mailbox")).multipart(letter(&token, &answer, "路灯坏了")).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let again = b.post(url(&web, "/mailbox/director_mailbox")).multipart(letter(&token, &answer, "路灯坏了")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(again.text().await.unwrap().contains("请勿重复提交"));

    // Mailboxes that do not exist, and nothing but forms to ourselves.
    assert_eq!(b.get(url(&web, "/mailbox/../etc/passwd")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(b.get(url(&web, "/mailbox/hotline")).send().await.unwrap().status(), StatusCode::NOT_FOUND, "only mailboxes have forms");
    web.shutdown().await;
}

#[tokio::test]
async fn each_mailbox_has_a_qr_code_that_opens_its_form() {
    let (_h, web, _signer) = district().await;
    let b = browser();
    let png = b.get(url(&web, "/mailbox/secretary_mailbox/qr.png")).send().await.unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    let png = png.bytes().await.unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(png.to_vec()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, "https://xinfang.example.gov.cn/mailbox/secretary_mailbox");
    let svg = b.get(url(&web, "/mailbox/secretary_mailbox/qr.svg")).send().await.unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().starts_with("<svg"));
    assert_eq!(b.get(url(&web, "/mailbox/nobody/qr.png")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    web.shutdown().await;
}

/// Property, over HTTP: bodies that are not the form (random bytes, broken multipart, a wrong
/// boundary, huge fields) and Open311 posts of random parameters are refused with a client
/// error, never a fault, and the front keeps serving.
#[tokio::test]
async fn garbage_is_refused_without_a_fault() {
    let (_h, web, _signer) = district_with(|c| c.set("web.posts_per_client_per_hour", 10_000)).await;
    let b = browser();
    let mut state = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let page = b.get(url(&web, "/mailbox/secretary_mailbox")).send().await.unwrap().text().await.unwrap();
    let (token, answer) = token_and_answer(&page);
    for i in 0..200 {
        let boundary = "XyZ";
        let mut body: Vec<u8> = match i % 4 {
            0 => (0..(next() % 2000)).map(|_| next() as u8).collect(),
            1 => format!("--{boundary}\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\n{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"answer\"\r\n\r\n{answer}\r\n--{boundary}--\r\n").into_bytes(),
            2 => format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"a.jpg\"\r\n\r\n\u{ff}\u{d8}junk").into_bytes(),
            _ => format!("--other\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\n{}\r\n--other--", "很长".repeat(5000)).into_bytes(),
        };
        if i % 4 != 0 && !body.is_empty() {
            let at = (next() as usize) % body.len();
            body[at] = next() as u8;
        }
        let r = b
            .post(url(&web, "/mailbox/secretary_mailbox"))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error() || r.status().is_success(), "{i}: {}", r.status());
        assert!(r.status() != reqwest::StatusCode::OK || r.text().await.unwrap().contains("id=\"case-no\""), "only a whole form registers");
        let params: Vec<(String, String)> = (0..(next() % 6))
            .map(|_| {
                let keys = ["api_key", "service_code", "lat", "long", "description", "address_string", "jurisdiction_id", "zzz"];
                let key = keys[(next() as usize) % keys.len()].to_string();
                let value: String =
                    (0..(next() % 12)).map(|_| ['0', '.', '-', 'e', '9', '中', '%', '&', '=', '\u{0}'][(next() as usize) % 10]).collect();
                (key, value)
            })
            .collect();
        let r = b.post(url(&web, "/open311/v2/requests.json")).form(&params).send().await.unwrap();
        assert!(r.status().is_client_error(), "{params:?}: {}", r.status());
    }
    assert_eq!(b.get(url(&web, "/healthz")).send().await.unwrap().status(), StatusCode::OK);
    web.shutdown().await;
}

/// A crash between receiving a form and answering it: the citizen sends the same form again to
/// a restarted front (same key), and it is the same case — registered once, with its receipt.
#[tokio::test]
async fn a_form_sent_again_after_a_restart_is_one_case() {
    let (h, _signer) = Harness::start_with_tokens("intake", |c, k| async move { jiesu_intake::start(&c, k).await }).await;
    let mut config = h.bed.config.clone();
    config.set("web.listen", "127.0.0.1:0");
    config.set("web.intake_url", format!("http://{}", h.running().grpc_addr));
    config.set("web.form_key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
    let first = jiesu_web::start(&config).await.unwrap();
    let b = browser();
    let page = b.get(url(&first, "/mailbox/secretary_mailbox")).send().await.unwrap().text().await.unwrap();
    let (token, answer) = token_and_answer(&page);
    let receipt = b.post(url(&first, "/mailbox/secretary_mailbox")).multipart(letter(&token, &answer, "井盖松动")).send().await.unwrap();
    let receipt = receipt.text().await.unwrap();
    first.shutdown().await;
    let second = jiesu_web::start(&config).await.unwrap();
    let again = b.post(url(&second, "/mailbox/secretary_mailbox")).multipart(letter(&token, &answer, "井盖松动")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again = again.text().await.unwrap();
    assert_eq!(between(&again, "id=\"case-no\">", "<"), between(&receipt, "id=\"case-no\">", "<"), "one case");
    assert_eq!(between(&again, "id=\"query-code\">", "<"), between(&receipt, "id=\"query-code\">", "<"));
    second.shutdown().await;
}

/// Posts are limited per client address and per phone; lookups per client.
#[tokio::test]
async fn rates_are_limited_per_client_and_per_phone() {
    let (_h, web, _signer) = district_with(|c| {
        c.set("web.posts_per_client_per_hour", 4);
        c.set("web.posts_per_phone_per_day", 2);
        c.set("web.lookups_per_client_per_hour", 3);
    })
    .await;
    let b = browser();
    let mut statuses = Vec::new();
    for i in 0..4 {
        let page = b.get(url(&web, "/mailbox/secretary_mailbox")).send().await.unwrap().text().await.unwrap();
        let (token, answer) = token_and_answer(&page);
        let r = b
            .post(url(&web, "/mailbox/secretary_mailbox"))
            .multipart(letter(&token, &answer, &format!("第{i}次反映")))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if i == 2 {
            assert!(r.text().await.unwrap().contains("该号码今天提交次数已达上限"), "the phone's limit, next to the phone");
        }
    }
    assert_eq!(statuses, [200, 200, 429, 429], "two letters a day from one phone, then four posts an hour from one address");
    let page = b.get(url(&web, "/mailbox/secretary_mailbox")).send().await.unwrap().text().await.unwrap();
    let (token, answer) = token_and_answer(&page);
    let fifth = b.post(url(&web, "/mailbox/secretary_mailbox")).multipart(letter(&token, &answer, "再次反映")).send().await.unwrap();
    assert_eq!(fifth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(fifth.text().await.unwrap().contains("提交过于频繁"));
    let lookups: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(
                b.post(url(&web, "/status"))
                    .form(&[("case_no", "DM1"), ("query_code", "AAAAAAAA")])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        v
    };
    assert_eq!(lookups, [404, 404, 404, 429]);
    web.shutdown().await;
}

/// Where the district checks phones: the citizen asks for a code (after the sum, so a bot cannot
/// make the front text strangers), notification texts it through the SMS gateway, and the letter
/// is taken with the right code only.
#[tokio::test]
async fn a_phone_is_checked_by_a_texted_code_where_the_district_wants_it() {
    use std::sync::{Arc, Mutex};
    // The SMS gateway: notification's webhook sink, here a small server that keeps what it got.
    let texts: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let kept = texts.clone();
    let gateway = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, gateway).await });

    let (h, _signer) = Harness::start_with_tokens("intake", |c, k| async move { jiesu_intake::start(&c, k).await }).await;
    let mut config = h.bed.config.clone();
    config.set("notification.database_url", format!("sqlite://{}", h.bed.database_path("notification").display()));
    config.set("notification.grpc_addr", "127.0.0.1:0");
    config.set("notification.admin_addr", "127.0.0.1:0");
    config.set("notification.intake_url", format!("http://{}", h.running().grpc_addr));
    config.set("notification.webhook_url", format!("http://{gateway_addr}/sms"));
    let notification = jiesu_notification::start(&config, Arc::new(jiesu_kit::SystemClock)).await.expect("notification starts");
    config.set("web.listen", "127.0.0.1:0");
    config.set("web.intake_url", format!("http://{}", h.running().grpc_addr));
    config.set("web.verify_phone", true);
    config.set("web.notification_url", format!("http://{}", notification.grpc_addr));
    let web = jiesu_web::start(&config).await.expect("the web front starts");
    let b = browser();

    let page = b.get(url(&web, "/mailbox/secretary_mailbox")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("获取验证码"));
    let (token, answer) = token_and_answer(&page);
    // Without a code: refused next to the code field.
    let without = b.post(url(&web, "/mailbox/secretary_mailbox")).multipart(letter(&token, &answer, "路灯不亮")).send().await.unwrap();
    assert_eq!(without.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(without.text().await.unwrap().contains("id=\"sms_code-error\""));
    // Asking for a code with a wrong sum texts nobody.
    let page = b.get(url(&web, "/mailbox/secretary_mailbox")).send().await.unwrap().text().await.unwrap();
    let (token, answer) = token_and_answer(&page);
    let bot = b
        .post(url(&web, "/mailbox/secretary_mailbox"))
        .multipart(letter(&token, "0", "x").text("action", "send_code"))
        .send()
        .await
        .unwrap();
    assert_eq!(bot.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(texts.lock().unwrap().is_empty(), "no text without the sum");
    // Asking for one properly: texted, and the same form (same sum, answered) comes back.
    let asked = b
        .post(url(&web, "/mailbox/secretary_mailbox"))
        .multipart(letter(&token, &answer, "路灯不亮").text("action", "send_code"))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::OK);
    let asked = asked.text().await.unwrap();
    assert!(asked.contains("验证码已发送至138****8000"), "{asked}");
    assert!(
        asked.contains(&format!("value=\"{token}\"")) && asked.contains(&format!("value=\"{answer}\"")),
        "the same form, its sum answered"
    );
    let text = texts.lock().unwrap().first().cloned().expect("the gateway got a text");
    assert_eq!((text["phone"].as_str(), text["template"].as_str()), (Some("13800138000"), Some("verification_code")));
    let message = text["text"].as_str().unwrap().to_string();
    let code: String = message.chars().filter(char::is_ascii_digit).take(6).collect();
    let wrong = b
        .post(url(&web, "/mailbox/secretary_mailbox"))
        .multipart(letter(&token, &answer, "路灯不亮").text("sms_code", "000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let right = b
        .post(url(&web, "/mailbox/secretary_mailbox"))
        .multipart(letter(&token, &answer, "路灯不亮").text("sms_code", code))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    assert!(right.text().await.unwrap().contains("id=\"case-no\""));
    web.shutdown().await;
    notification.shutdown().await;
}
