//! The pages: the mailboxes' index, a mailbox's form and its QR codes, the receipt, the status
//! page. Each handler reads the request, applies the rules of [`crate::form`], talks to intake,
//! and renders a template; every answer carries headers that keep the page from being framed,
//! sniffed or cached where it holds a query code.

use std::{collections::BTreeMap, net::SocketAddr, sync::Mutex, time::Duration};

use askama::Template;
use axum::{
    Router,
    extract::{ConnectInfo, DefaultBodyLimit, Multipart, Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Utc};
use jiesu_kit::{
    auth::{ServiceChannel, ServiceCredentials, service_channel},
    channels::Channel,
    config::District,
    tls::Tls,
};
use jiesu_proto::v1::{
    Attachment, AttachmentChunk, Citizen, Location, PublicStatusRequest, Submission, SubmitRequest, VerificationCodeRequest,
    intake_service_client::IntakeServiceClient, notification_service_client::NotificationServiceClient,
};
use jiesu_reference::{Organisation, UnitKind};
use tonic::Code;
use tonic_types::StatusExt;

use crate::{
    Error, INTAKE_TIMEOUT, Settings,
    form::{FormError, FormKey, Submitted, form_field},
    qr,
};

/// Intake's gRPC client, with the front's own token on every call.
pub type IntakeClient = IntakeServiceClient<ServiceChannel>;

/// Notification's gRPC client, for texting verification codes.
pub type NotificationClient = NotificationServiceClient<ServiceChannel>;

/// A client of notification that connects on first use.
pub fn notification_client(url: &str, tls: Option<&Tls>, credentials: ServiceCredentials) -> Result<NotificationClient, Error> {
    let channel =
        service_channel(url, tls, credentials, Duration::from_secs(15)).map_err(|e| Error::Config(format!("notification_url: {e}")))?;
    Ok(NotificationServiceClient::new(channel))
}

/// A client of intake that connects on first use, so the front starts while intake is down.
pub fn intake_client(url: &str, tls: Option<&Tls>, credentials: ServiceCredentials) -> Result<IntakeClient, Error> {
    let channel = service_channel(url, tls, credentials, INTAKE_TIMEOUT).map_err(|e| Error::Config(format!("intake_url: {e}")))?;
    Ok(IntakeServiceClient::new(channel))
}

/// The cookie a form is bound to (anti-forgery): random per browser, never readable by script.
const FORM_COOKIE: &str = "jiesu_form";

/// How much of an upload one gRPC message carries.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// What the Open311 endpoints serve: the services, the taxonomy's version, the clients' keys.
pub struct Open311 {
    pub services: Vec<crate::open311::Service>,
    pub changeset: String,
    pub keys: Vec<crate::open311::Open311Key>,
}

/// Everything the pages share.
pub struct App {
    district: District,
    open311: Open311,
    streets: Vec<StreetOption>,
    mailboxes: Vec<Channel>,
    owners: BTreeMap<String, String>,
    limits: jiesu_kit::channels::AttachmentLimits,
    settings: Settings,
    key: FormKey,
    intake: IntakeClient,
    /// Where the district checks citizens' phones by a texted code (`[web] verify_phone`).
    notification: Option<NotificationClient>,
    submitted: Mutex<Submitted>,
    rates: Mutex<jiesu_kit::rate::RateLimiter>,
}

/// A street and its communities, for the picker.
pub struct StreetOption {
    pub id: String,
    pub name: String,
    /// (id, name)
    pub communities: Vec<(String, String)>,
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        district: District,
        open311: Open311,
        organisation: Organisation,
        mailboxes: Vec<Channel>,
        limits: jiesu_kit::channels::AttachmentLimits,
        settings: Settings,
        key: FormKey,
        intake: IntakeClient,
        notification: Option<NotificationClient>,
    ) -> Self {
        let streets = organisation
            .units
            .iter()
            .filter(|u| u.kind == UnitKind::Street)
            .map(|s| StreetOption {
                id: s.id.clone(),
                name: s.name.clone(),
                communities: organisation
                    .units
                    .iter()
                    .filter(|c| c.kind == UnitKind::Community && c.parent.as_deref() == Some(s.id.as_str()))
                    .map(|c| (c.id.clone(), c.name.clone()))
                    .collect(),
            })
            .collect();
        // Whose mailbox it is, as citizens read it: the leader's or unit's name and title.
        let owners = mailboxes
            .iter()
            .filter(|m| !m.owner.is_empty())
            .map(|m| {
                let name = match organisation.leader(&m.owner) {
                    Some(l) if !l.title.is_empty() => format!("{}{}", l.name, if l.name.contains(&l.title) { "" } else { &l.title }),
                    Some(l) => l.name.clone(),
                    None => organisation.name_of(&m.owner).to_string(),
                };
                (m.id.clone(), name)
            })
            .collect();
        Self {
            district,
            open311,
            streets,
            mailboxes,
            owners,
            limits,
            settings,
            key,
            intake,
            notification,
            submitted: Default::default(),
            rates: Default::default(),
        }
    }

    pub fn district(&self) -> &District {
        &self.district
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn open311(&self) -> &Open311 {
        &self.open311
    }

    /// A client of intake (cheap: it shares the connection).
    pub fn intake(&self) -> IntakeClient {
        self.intake.clone()
    }

    fn mailbox(&self, id: &str) -> Option<&Channel> {
        self.mailboxes.iter().find(|m| m.id == id)
    }

    fn owner(&self, id: &str) -> String {
        self.owners.get(id).cloned().unwrap_or_default()
    }

    /// Counts a hit of `what` by `key`; the wait in seconds when over `limit` per `window`.
    fn limit(&self, what: &str, key: &str, limit: u32, window: Duration) -> Result<(), u64> {
        self.rates.lock().expect("rate table").hit(&format!("{what}:{key}"), limit, window, Utc::now())
    }

    fn now_local(&self, at: DateTime<Utc>) -> String {
        let tz: chrono_tz::Tz = self.district.timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
        at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
    }
}

/// The routes.
pub fn router(app: std::sync::Arc<App>) -> Router {
    let limit = app.settings.max_request_bytes;
    Router::new()
        .route("/", get(index))
        .route("/mailbox/{id}", get(show_form).post(post_form))
        .route("/mailbox/{id}/qr.png", get(qr_png))
        .route("/mailbox/{id}/qr.svg", get(qr_svg))
        .route("/status", get(show_status).post(post_status))
        .route("/healthz", get(|| async { "ok" }))
        .route("/assets/locate.js", get(locate_js))
        .merge(crate::open311::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::map_response(jiesu_kit::web::security_headers))
        .with_state(app)
}

type AppState = State<std::sync::Arc<App>>;

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    district: String,
    mailboxes: Vec<MailboxLink>,
}

struct MailboxLink {
    id: String,
    name: String,
    owner: String,
}

async fn index(State(app): AppState) -> Result<Response, PageError> {
    let mailboxes = app.mailboxes.iter().map(|m| MailboxLink { id: m.id.clone(), name: m.name.clone(), owner: app.owner(&m.id) }).collect();
    page(IndexPage { district: app.district.name.clone(), mailboxes })
}

/// What the citizen typed, kept when the form comes back with errors (files excepted: a
/// browser never lets a page refill them).
#[derive(Default, Clone)]
struct FormValues {
    request_type: String,
    name: String,
    phone: String,
    community: String,
    address: String,
    title: String,
    description: String,
    /// The point on the map, when the citizen let the phone locate them.
    latitude: String,
    longitude: String,
    /// The texted verification code, where the district checks phones.
    sms_code: String,
    /// `send_code` when the citizen asked for a code rather than sending the form.
    action: String,
}

#[derive(Template)]
#[template(path = "mailbox.html")]
struct MailboxPage<'a> {
    verify_phone: bool,
    notice: String,
    /// The sum's answer, refilled when the same sum is shown again.
    answer: String,
    district: String,
    id: String,
    name: String,
    owner: String,
    token: String,
    question: String,
    values: FormValues,
    errors: BTreeMap<&'static str, String>,
    streets: &'a [StreetOption],
    request_types: [(&'static str, &'static str); 5],
    max_photos: usize,
    max_photo_mb: u64,
    max_videos: usize,
    max_video_mb: u64,
}

impl MailboxPage<'_> {
    fn err(&self, field: &str) -> &str {
        self.errors.get(field).map_or("", String::as_str)
    }
}

/// The browser's form cookie, or a new one to set.
fn form_cookie(headers: &HeaderMap) -> (String, bool) {
    let existing = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == FORM_COOKIE && value.len() >= 16 && value.len() <= 64)
        .map(|(_, value)| value.to_string());
    match existing {
        Some(value) => (value, false),
        None => {
            use base64::Engine;
            (base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(jiesu_kit::web::random::<18>()), true)
        }
    }
}

/// The form of mailbox `channel`, empty or with what was typed and the errors next to it.
/// What a form page shows besides an empty form.
#[derive(Default)]
struct Shown {
    values: FormValues,
    errors: BTreeMap<&'static str, String>,
    /// A word above the code field ("验证码已发送至138****8000").
    notice: String,
    /// The posted token, kept when the form comes back only to have a code texted: the same
    /// sum, already answered.
    keep: Option<(String, crate::form::FormToken, String)>,
}

fn form_page(
    app: &App,
    channel: &Channel,
    cookie: &str,
    set_cookie: bool,
    shown: Shown,
    status: StatusCode,
) -> Result<Response, PageError> {
    let Shown { values, errors, notice, keep } = shown;
    let (token, shown, answer) = match keep {
        Some(kept) => kept,
        None => {
            let (token, form) = app.key.issue(&channel.id, cookie, Utc::now(), &jiesu_kit::web::random::<18>());
            (token, form, String::new())
        }
    };
    let page = MailboxPage {
        verify_phone: app.notification.is_some(),
        notice,
        answer,
        district: app.district.name.clone(),
        id: channel.id.clone(),
        name: channel.name.clone(),
        owner: app.owner(&channel.id),
        token,
        question: shown.question(),
        values,
        errors,
        streets: &app.streets,
        request_types: crate::form::REQUEST_TYPES,
        max_photos: app.limits.max_photos,
        max_photo_mb: app.limits.max_photo_bytes / (1024 * 1024),
        max_videos: app.limits.max_videos,
        max_video_mb: app.limits.max_video_bytes / (1024 * 1024),
    };
    let mut response = (status, axum::response::Html(page.render()?)).into_response();
    if set_cookie {
        let secure = if app.settings.public_url.starts_with("https://") { "; Secure" } else { "" };
        let value = format!("{FORM_COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Strict{secure}");
        response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&value).map_err(|_| PageError::Internal)?);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn show_form(State(app): AppState, Path(id): Path<String>, headers: HeaderMap) -> Result<Response, PageError> {
    let channel = app.mailbox(&id).ok_or(PageError::NotFound)?;
    let (cookie, set) = form_cookie(&headers);
    form_page(&app, channel, &cookie, set, Shown::default(), StatusCode::OK)
}

/// A file the citizen attached.
struct Upload {
    field: &'static str,
    bytes: Vec<u8>,
}

/// A mailbox form as posted.
struct Posted {
    values: FormValues,
    token: String,
    answer: String,
    uploads: Vec<Upload>,
}

/// Reads the parts of a posted form; unknown fields are ignored.
async fn read_posted(multipart: &mut Multipart) -> Result<Posted, axum::extract::multipart::MultipartError> {
    let mut posted = Posted { values: FormValues::default(), token: String::new(), answer: String::new(), uploads: Vec::new() };
    while let Some(field) = multipart.next_field().await? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "photos" || name == "video" {
            let has_name = field.file_name().is_some_and(|n| !n.is_empty());
            let bytes = field.bytes().await?;
            // A browser sends an empty part for a file field left empty.
            if has_name || !bytes.is_empty() {
                posted.uploads.push(Upload { field: if name == "video" { "video" } else { "photos" }, bytes: bytes.to_vec() });
            }
            continue;
        }
        let text = field.text().await?;
        let v = &mut posted.values;
        match name.as_str() {
            "token" => posted.token = text,
            "answer" => posted.answer = text,
            "request_type" => v.request_type = text,
            "name" => v.name = text,
            "phone" => v.phone = text,
            "community" => v.community = text,
            "address" => v.address = text,
            "title" => v.title = text,
            "description" => v.description = text,
            "latitude" => v.latitude = text,
            "sms_code" => v.sms_code = text,
            "action" => v.action = text,
            "longitude" => v.longitude = text,
            _ => {}
        }
    }
    Ok(posted)
}

async fn post_form(
    State(app): AppState,
    Path(id): Path<String>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Response, PageError> {
    let channel = app.mailbox(&id).ok_or(PageError::NotFound)?.clone();
    let who = jiesu_kit::web::client_address(app.settings.behind_proxy, addr, &headers);
    if let Err(wait) = app.limit("post", &who, app.settings.posts_per_client_per_hour, Duration::from_secs(3600)) {
        return message(
            &app,
            StatusCode::TOO_MANY_REQUESTS,
            "提交过于频繁",
            &format!("提交过于频繁，请{}分钟后再试。", wait.div_ceil(60)),
            &format!("/mailbox/{id}"),
        );
    }
    let (cookie, set_cookie) = form_cookie(&headers);
    let Posted { values, token, answer, uploads } = match read_posted(&mut multipart).await {
        Ok(posted) => posted,
        Err(e) => {
            tracing::info!(error = %e, "a form post could not be read");
            let text = "表单内容无法读取（可能是附件过大或网络中断），请重新提交。";
            return message(&app, e.status(), "提交失败", text, &format!("/mailbox/{id}"));
        }
    };
    let mut errors: BTreeMap<&'static str, String> = BTreeMap::new();
    let back = |errors, status| {
        form_page(&app, &channel, &cookie, set_cookie, Shown { values: values.clone(), errors, ..Default::default() }, status)
    };
    let form = match app.key.check(&token, &channel.id, &cookie, &answer, Utc::now()) {
        Ok(form) => form,
        Err(FormError::WrongAnswer) => {
            errors.insert("answer", FormError::WrongAnswer.zh().into());
            return back(errors, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(e) => {
            tracing::info!(reason = %e, "a form post was refused");
            errors.insert("form", e.zh().into());
            return back(errors, StatusCode::FORBIDDEN);
        }
    };
    if !values.request_type.is_empty() && !crate::form::REQUEST_TYPES.iter().any(|(k, _)| *k == values.request_type) {
        errors.insert("form", "请选择诉求类型".into());
    }
    let (street, community) = values.community.split_once('/').unwrap_or(("", ""));
    if !values.community.is_empty()
        && !app.streets.iter().any(|s| s.id == street && (community.is_empty() || s.communities.iter().any(|c| c.0 == community)))
    {
        errors.insert("community", "请从列表中选择街道和社区".into());
    }
    if values.phone.trim().is_empty() && channel.requires_contact {
        errors.insert("phone", "请填写联系电话，以便回复和回访".into());
    }
    if values.description.trim().is_empty() {
        errors.insert("description", "请填写诉求内容".into());
    }
    let point = match (values.latitude.trim().parse::<f64>(), values.longitude.trim().parse::<f64>()) {
        _ if values.latitude.trim().is_empty() && values.longitude.trim().is_empty() => (0.0, 0.0),
        (Ok(lat), Ok(long)) if lat.is_finite() && long.is_finite() => (lat, long),
        _ => {
            errors.insert("address", "定位信息无效，请重新定位或在详细地址中写明地点".into());
            (0.0, 0.0)
        }
    };
    let photos = uploads.iter().filter(|u| u.field == "photos").count();
    let videos = uploads.len() - photos;
    if photos > app.limits.max_photos || videos > app.limits.max_videos {
        errors.insert("photos", format!("照片最多{}张，视频最多{}段", app.limits.max_photos, app.limits.max_videos));
    }
    if !errors.is_empty() {
        return back(errors, StatusCode::UNPROCESSABLE_ENTITY);
    }
    if let Some(notification) = &app.notification
        && !values.phone.trim().is_empty()
    {
        if values.action == "send_code" {
            let code = app.key.sms_code(&values.phone, Utc::now());
            let request = VerificationCodeRequest { phone: values.phone.clone(), code };
            return match notification.clone().send_verification_code(request).await {
                Ok(sent) => {
                    let notice = format!("验证码已发送至{}，10分钟内有效", sent.into_inner().masked_phone);
                    let keep = Some((token.clone(), form.clone(), answer.clone()));
                    form_page(
                        &app,
                        &channel,
                        &cookie,
                        set_cookie,
                        Shown { values: values.clone(), notice, keep, ..Default::default() },
                        StatusCode::OK,
                    )
                }
                Err(status) => {
                    let why = match status.code() {
                        Code::InvalidArgument => "短信验证码只能发送到手机号码，请检查联系电话",
                        Code::ResourceExhausted => "验证码发送过于频繁，请稍后再试",
                        _ => "暂时无法发送短信验证码，请稍后再试或拨打12345热线",
                    };
                    tracing::info!(code = ?status.code(), "a verification code was not sent");
                    errors.insert("sms_code", why.into());
                    back(errors, StatusCode::UNPROCESSABLE_ENTITY)
                }
            };
        }
        if !app.key.sms_code_ok(&values.phone, &values.sms_code, Utc::now()) {
            errors.insert("sms_code", "短信验证码不正确或已过期，请重新获取".into());
            return back(errors, StatusCode::UNPROCESSABLE_ENTITY);
        }
    }
    let phone_key: String = values.phone.chars().filter(char::is_ascii_digit).collect();
    if !phone_key.is_empty() {
        let digest = ring::digest::digest(&ring::digest::SHA256, phone_key.as_bytes());
        let key: String = digest.as_ref().iter().take(12).map(|b| format!("{b:02x}")).collect();
        if app.limit("phone", &key, app.settings.posts_per_phone_per_day, Duration::from_secs(86_400)).is_err() {
            errors.insert("phone", "该号码今天提交次数已达上限，请明天再试或拨打12345热线".into());
            return back(errors, StatusCode::TOO_MANY_REQUESTS);
        }
    }
    if app.submitted.lock().expect("submitted forms").first_time(&form.nonce, Utc::now()).is_err() {
        return message(&app, StatusCode::CONFLICT, "请勿重复提交", FormError::Replayed.zh(), "/status");
    }
    let mut intake = app.intake.clone();
    let mut attachments = Vec::new();
    for u in uploads {
        match upload(&mut intake, &channel.id, u.bytes).await {
            Ok(a) => attachments.push(a),
            Err(status) if status.code() == Code::InvalidArgument => {
                app.submitted.lock().expect("submitted forms").forget(&form.nonce);
                errors.insert(
                    "photos",
                    format!("附件未通过检查：{}", zh_reasons(&status).into_iter().map(|(_, r)| r).collect::<Vec<_>>().join("；")),
                );
                return back(errors, StatusCode::UNPROCESSABLE_ENTITY);
            }
            Err(status) => return unavailable(&app, &status, &id),
        }
    }
    let request_type = crate::form::REQUEST_TYPES.iter().find(|(k, _)| *k == values.request_type).map_or("", |(_, zh)| *zh);
    let submission = Submission {
        channel: channel.id.clone(),
        // The form's own nonce: the same form sent twice is one request.
        channel_ref: format!("web-{}", form.nonce),
        citizen: Some(Citizen { name: values.name.clone(), phone: values.phone.clone(), anonymous: false }),
        title: values.title.clone(),
        description: values.description.clone(),
        location: Some(Location {
            street: street.to_string(),
            community: community.to_string(),
            address: values.address.clone(),
            latitude: point.0,
            longitude: point.1,
            ..Default::default()
        }),
        attachments,
        category_hint: request_type.to_string(),
        ..Default::default()
    };
    match intake.submit(SubmitRequest { submission: Some(submission) }).await {
        Ok(r) => {
            let r = r.into_inner();
            tracing::info!(case_no = %r.case_no, channel = %channel.id, "a mailbox letter was registered");
            let received = r.received_at.map(|t| DateTime::from_timestamp(t.seconds, 0).unwrap_or_default()).unwrap_or_else(Utc::now);
            let page = ReceiptPage {
                district: app.district.name.clone(),
                channel_name: channel.name.clone(),
                case_no: r.case_no,
                query_code: r.query_code,
                received_at: app.now_local(received),
            };
            let mut response = axum::response::Html(page.render()?).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        Err(status) if status.code() == Code::InvalidArgument => {
            app.submitted.lock().expect("submitted forms").forget(&form.nonce);
            for (field, reason) in zh_reasons(&status) {
                errors.entry(form_field(&field)).or_insert(reason);
            }
            back(errors, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(status) => {
            app.submitted.lock().expect("submitted forms").forget(&form.nonce);
            unavailable(&app, &status, &id)
        }
    }
}

/// Uploads one file to intake in chunks.
async fn upload(intake: &mut IntakeClient, channel: &str, bytes: Vec<u8>) -> Result<Attachment, tonic::Status> {
    let mut chunks: Vec<AttachmentChunk> =
        bytes.chunks(UPLOAD_CHUNK).map(|c| AttachmentChunk { data: c.to_vec(), ..Default::default() }).collect();
    if chunks.is_empty() {
        chunks.push(AttachmentChunk::default());
    }
    chunks[0].channel = channel.to_string();
    Ok(intake.upload_attachment(futures::stream::iter(chunks)).await?.into_inner())
}

/// Intake's reasons, each with its field: the Chinese of its localized message (the reasons
/// joined with "；", in the order of the field violations) beside the fields.
fn zh_reasons(status: &tonic::Status) -> Vec<(String, String)> {
    let details = status.get_error_details();
    let fields: Vec<String> =
        details.bad_request().map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect()).unwrap_or_default();
    let zh: Vec<String> = details.localized_message().map(|m| m.message.split('；').map(str::to_string).collect()).unwrap_or_default();
    if fields.len() == zh.len() {
        fields.into_iter().zip(zh).collect()
    } else {
        vec![("form".into(), if zh.is_empty() { "提交的内容有误，请检查后重试".into() } else { zh.join("；") })]
    }
}

fn unavailable(app: &App, status: &tonic::Status, id: &str) -> Result<Response, PageError> {
    tracing::warn!(code = ?status.code(), "intake could not take a mailbox letter");
    message(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "暂时无法提交",
        "系统繁忙，您的信件未能提交，请稍后再试。紧急情况请拨打12345热线。",
        &format!("/mailbox/{id}"),
    )
}

#[derive(Template)]
#[template(path = "receipt.html")]
struct ReceiptPage {
    district: String,
    channel_name: String,
    case_no: String,
    query_code: String,
    received_at: String,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    district: String,
    case_no: String,
    error: String,
    status: Option<StatusView>,
}

struct StatusView {
    case_no: String,
    channel_name: String,
    received_at: String,
    title: String,
    status: String,
    unit_name: String,
    /// (when, what)
    steps: Vec<(String, String)>,
}

async fn show_status(State(app): AppState) -> Result<Response, PageError> {
    page(StatusPage { district: app.district.name.clone(), case_no: String::new(), error: String::new(), status: None })
}

#[derive(serde::Deserialize)]
struct StatusForm {
    #[serde(default)]
    case_no: String,
    #[serde(default)]
    query_code: String,
}

async fn post_status(
    State(app): AppState,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<StatusForm>,
) -> Result<Response, PageError> {
    let case_no: String = form.case_no.trim().chars().take(32).collect();
    let mut view = StatusPage { district: app.district.name.clone(), case_no: case_no.clone(), error: String::new(), status: None };
    let who = jiesu_kit::web::client_address(app.settings.behind_proxy, addr, &headers);
    if let Err(wait) = app.limit("status", &who, app.settings.lookups_per_client_per_hour, Duration::from_secs(3600)) {
        view.error = format!("查询过于频繁，请{}分钟后再试", wait.div_ceil(60));
        return page_with(view, StatusCode::TOO_MANY_REQUESTS);
    }
    if case_no.is_empty() || form.query_code.trim().is_empty() {
        view.error = "请填写受理编号和查询码".into();
        return page_with(view, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let request = PublicStatusRequest { case_no, query_code: form.query_code };
    match app.intake.clone().get_public_status(request).await {
        Ok(s) => {
            let s = s.into_inner();
            let at = |t: Option<jiesu_proto::Timestamp>| {
                app.now_local(t.and_then(|t| DateTime::from_timestamp(t.seconds, 0)).unwrap_or_default())
            };
            view.status = Some(StatusView {
                case_no: s.case_no,
                channel_name: s.channel_name,
                received_at: at(s.received_at),
                title: s.title,
                status: s.status_zh,
                unit_name: s.unit_name,
                steps: s.steps.into_iter().map(|p| (at(p.at), p.text)).collect(),
            });
            let mut response = page_with(view, StatusCode::OK)?;
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        Err(status) => {
            let (code, text) = match status.code() {
                Code::NotFound | Code::InvalidArgument => (StatusCode::NOT_FOUND, "受理编号或查询码不正确，请核对后重试"),
                Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "该编号的错误查询次数过多，请一小时后再试"),
                _ => {
                    tracing::warn!(code = ?status.code(), "intake could not answer a status lookup");
                    (StatusCode::SERVICE_UNAVAILABLE, "系统繁忙，请稍后再试")
                }
            };
            view.error = text.into();
            page_with(view, code)
        }
    }
}

/// The one script: the "use my location" button, embedded in the binary.
async fn locate_js() -> Response {
    const SCRIPT: &str = include_str!("../assets/locate.js");
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")], SCRIPT).into_response()
}

async fn qr_png(State(app): AppState, Path(id): Path<String>) -> Result<Response, PageError> {
    let channel = app.mailbox(&id.replace(".png", "")).ok_or(PageError::NotFound)?;
    let png = qr::png(&form_url(&app, channel), 10)?;
    Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "public, max-age=3600")], png).into_response())
}

async fn qr_svg(State(app): AppState, Path(id): Path<String>) -> Result<Response, PageError> {
    let channel = app.mailbox(&id).ok_or(PageError::NotFound)?;
    let svg = qr::svg(&form_url(&app, channel))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=3600")], svg).into_response())
}

/// The address a mailbox's QR code opens.
pub fn form_url(app: &App, channel: &Channel) -> String {
    format!("{}/mailbox/{}", app.settings.public_url.trim_end_matches('/'), channel.id)
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    district: String,
    heading: String,
    message: String,
    back: String,
}

fn message(app: &App, status: StatusCode, heading: &str, text: &str, back: &str) -> Result<Response, PageError> {
    let page = MessagePage { district: app.district.name.clone(), heading: heading.into(), message: text.into(), back: back.into() };
    page_with(page, status)
}

async fn not_found(State(app): AppState) -> Result<Response, PageError> {
    message(&app, StatusCode::NOT_FOUND, "页面不存在", "您访问的页面不存在。", "/")
}

fn page(t: impl Template) -> Result<Response, PageError> {
    page_with(t, StatusCode::OK)
}

fn page_with(t: impl Template, status: StatusCode) -> Result<Response, PageError> {
    Ok((status, axum::response::Html(t.render()?)).into_response())
}

/// What a page handler can fail with, as the citizen sees it.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not found")]
    NotFound,
    #[error("internal error")]
    Internal,
    #[error(transparent)]
    Web(#[from] Error),
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError::Web(Error::Render(e))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, text) = match &self {
            PageError::NotFound => (StatusCode::NOT_FOUND, "页面不存在"),
            PageError::Internal | PageError::Web(_) => {
                tracing::error!(error = %self, "a page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "系统出错，请稍后再试")
            }
        };
        (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
    }
}
