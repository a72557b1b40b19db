//! Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2), as one more channel: the
//! district's taxonomy as services (group = category, `service_code` = sub-item), requests
//! posted with an `api_key` per client (each key submits on its own `open311` channel of the
//! registry), and what the public may see of those requests. `.json` and `.xml`, the
//! specification's error bodies and status codes, ids as strings, a single request as a
//! one-element list.
//!
//! What is public: status, service, the handling unit, the latest step as `status_notes`, times
//! and the point on the map the client sent. Never the citizen's words, name, phone or address:
//! 12345 complaints are not a public board, unlike FixMyStreet's.

use std::{collections::BTreeMap, fmt::Write as _, sync::Arc};

use axum::{
    Router,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use jiesu_proto::v1::{Attachment, Citizen, ListChannelRequestsRequest, Location, PublicStatus, Submission, SubmitRequest};
use serde::Deserialize;
use tonic::Code;

use crate::pages::App;
use jiesu_kit::web::random;

/// One client's key (`[[web.open311_keys]]`): the SHA-256 of the key it sends as `api_key`
/// (the key itself is given to the client, never stored), and the channel its requests go to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Open311Key {
    pub channel: String,
    /// Who holds it, for the operator: "示范区城市服务App".
    #[serde(default)]
    pub name: String,
    pub key_sha256: String,
}

/// A service of the taxonomy file: a sub-item with its category.
#[derive(Debug, Clone)]
pub struct Service {
    pub code: String,
    pub name: String,
    pub description: String,
    pub keywords: Vec<String>,
    pub group: String,
}

/// The taxonomy reference file as Open311 needs it (classification owns its full shape).
#[derive(Deserialize)]
struct TaxonomyFile {
    #[serde(default)]
    version: String,
    #[serde(default)]
    categories: Vec<Category>,
}

#[derive(Deserialize)]
struct Category {
    name: String,
    #[serde(default)]
    sub_items: Vec<SubItem>,
}

#[derive(Deserialize)]
struct SubItem {
    code: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    keywords: Vec<String>,
}

/// The services of a taxonomy file's text, and its version (Open311's `changeset`).
pub fn services(taxonomy: &str) -> Result<(Vec<Service>, String), String> {
    let file: TaxonomyFile = toml::from_str(taxonomy).map_err(|e| e.to_string())?;
    let services = file
        .categories
        .iter()
        .flat_map(|c| {
            c.sub_items.iter().map(|s| Service {
                code: s.code.clone(),
                name: s.name.clone(),
                description: s.description.clone(),
                keywords: s.keywords.clone(),
                group: c.name.clone(),
            })
        })
        .collect();
    Ok((services, file.version))
}

/// The routes, under `/open311/v2`.
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/open311/v2/{file}", get(top_level).post(post_request))
        .route("/open311/v2/services/{file}", get(service_definition))
        .route("/open311/v2/requests/{file}", get(one_request))
        .route("/open311/v2/tokens/{file}", get(token))
}

/// The two formats of the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

/// `requests.json` → ("requests", Json).
fn split(file: &str) -> Option<(&str, Format)> {
    let (name, ext) = file.rsplit_once('.')?;
    let format = match ext {
        "json" => Format::Json,
        "xml" => Format::Xml,
        _ => return None,
    };
    Some((name, format))
}

/// A value of a response: text, a number-like string, a list or a record.
#[derive(Debug, Clone)]
enum Value {
    Text(String),
    Null,
    Bool(bool),
    Int(i64),
    Number(f64),
    /// (element name of each item in XML, items)
    List(&'static str, Vec<Value>),
    Record(Vec<(&'static str, Value)>),
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

impl Value {
    fn json(&self, out: &mut String) {
        match self {
            Value::Text(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) => out.push_str(&n.to_string()),
            Value::Number(n) => out.push_str(&serde_json::Number::from_f64(*n).map_or("null".into(), |n| n.to_string())),
            Value::List(_, items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.json(out);
                }
                out.push(']');
            }
            Value::Record(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "\"{k}\":");
                    v.json(out);
                }
                out.push('}');
            }
        }
    }

    fn xml(&self, name: &str, out: &mut String) {
        match self {
            Value::List(item, items) => {
                let _ = write!(out, "<{name}>");
                for v in items {
                    v.xml(item, out);
                }
                let _ = write!(out, "</{name}>");
            }
            Value::Record(fields) => {
                let _ = write!(out, "<{name}>");
                for (k, v) in fields {
                    v.xml(k, out);
                }
                let _ = write!(out, "</{name}>");
            }
            Value::Null => {
                let _ = write!(out, "<{name}/>");
            }
            Value::Text(s) => {
                let _ = write!(out, "<{name}>{}</{name}>", escape(s));
            }
            Value::Bool(b) => {
                let _ = write!(out, "<{name}>{b}</{name}>");
            }
            Value::Int(n) => {
                let _ = write!(out, "<{name}>{n}</{name}>");
            }
            Value::Number(n) => {
                let _ = write!(out, "<{name}>{n}</{name}>");
            }
        }
    }
}

/// Text as XML character data.
fn escape(s: &str) -> String {
    s.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).fold(String::with_capacity(s.len()), |mut out, c| {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
        out
    })
}

/// A response in the asked format: `root` names the XML document element.
fn respond(status: StatusCode, format: Format, root: &str, value: Value) -> Response {
    let mut body = String::new();
    let content_type = match format {
        Format::Json => {
            value.json(&mut body);
            "application/json; charset=utf-8"
        }
        Format::Xml => {
            body.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
            value.xml(root, &mut body);
            "text/xml; charset=utf-8"
        }
    };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The specification's error body: a list of errors, each a code and a description.
fn error(status: StatusCode, format: Format, description: &str) -> Response {
    let e = Value::Record(vec![("code", Value::Int(i64::from(status.as_u16()))), ("description", text(description))]);
    respond(status, format, "errors", Value::List("error", vec![e]))
}

/// An unknown path or format: the error in JSON unless the path asked for XML.
fn not_found(file: &str) -> Response {
    let format = if file.ends_with(".xml") { Format::Xml } else { Format::Json };
    error(
        StatusCode::NOT_FOUND,
        format,
        "not found: the endpoints are discovery, services, services/{code}, requests, requests/{id} and tokens/{token}, each .json or .xml",
    )
}

type Params = Query<BTreeMap<String, String>>;

/// `jurisdiction_id`, when given, must be this district's code.
fn jurisdiction(app: &App, params: &BTreeMap<String, String>, format: Format) -> Option<Response> {
    match params.get("jurisdiction_id").map(|j| j.trim()) {
        None | Some("") => None,
        Some(j) if j == app.district().code => None,
        Some(j) => Some(error(
            StatusCode::NOT_FOUND,
            format,
            &format!("jurisdiction_id {j:?} is not served here (this is {})", app.district().code),
        )),
    }
}

async fn top_level(State(app): State<Arc<App>>, Path(file): Path<String>, Query(params): Params) -> Response {
    let Some((name, format)) = split(&file) else { return not_found(&file) };
    if let Some(r) = jurisdiction(&app, &params, format) {
        return r;
    }
    match name {
        "discovery" => discovery(&app, format),
        "services" => service_list(&app, format),
        "requests" => list_requests(&app, &params, format).await,
        _ => not_found(&file),
    }
}

fn discovery(app: &App, format: Format) -> Response {
    let url = format!("{}/open311/v2", app.settings().public_url.trim_end_matches('/'));
    let changeset = app.open311().changeset.clone();
    let endpoint = Value::Record(vec![
        ("specification", text("http://wiki.open311.org/GeoReport_v2")),
        ("url", text(url)),
        ("changeset", text(changeset.clone())),
        ("type", text("production")),
        ("formats", Value::List("format", vec![text("text/xml"), text("application/json")])),
    ]);
    let body = Value::Record(vec![
        ("changeset", text(changeset)),
        ("contact", text(format!("{}诉求服务中心（12345）", app.district().name))),
        ("key_service", text("api_key 由区诉求服务中心发放；请联系系统管理员")),
        ("endpoints", Value::List("endpoint", vec![endpoint])),
    ]);
    respond(StatusCode::OK, format, "discovery", body)
}

fn service_value(s: &Service) -> Value {
    Value::Record(vec![
        ("service_code", text(&s.code)),
        ("service_name", text(&s.name)),
        ("description", text(&s.description)),
        ("metadata", Value::Bool(false)),
        ("type", text("realtime")),
        ("keywords", text(s.keywords.join(","))),
        ("group", text(&s.group)),
    ])
}

fn service_list(app: &App, format: Format) -> Response {
    let services = app.open311().services.iter().map(service_value).collect();
    respond(StatusCode::OK, format, "services", Value::List("service", services))
}

async fn service_definition(State(app): State<Arc<App>>, Path(file): Path<String>, Query(params): Params) -> Response {
    let Some((code, format)) = split(&file) else { return not_found(&file) };
    if let Some(r) = jurisdiction(&app, &params, format) {
        return r;
    }
    match app.open311().services.iter().find(|s| s.code == code) {
        // No service asks for more than the request itself (metadata is false): no attributes.
        Some(s) => respond(
            StatusCode::OK,
            format,
            "service_definition",
            Value::Record(vec![("service_code", text(&s.code)), ("attributes", Value::List("attribute", Vec::new()))]),
        ),
        None => error(StatusCode::NOT_FOUND, format, &format!("service_code {code:?} is not a service of this district")),
    }
}

/// The client's key, by its hash.
fn key_of<'a>(app: &'a App, api_key: &str) -> Option<&'a Open311Key> {
    let digest = ring::digest::digest(&ring::digest::SHA256, api_key.as_bytes());
    let hash: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    app.open311().keys.iter().find(|k| k.key_sha256.eq_ignore_ascii_case(&hash))
}

async fn post_request(State(app): State<Arc<App>>, Path(file): Path<String>, Query(query): Params, body: axum::body::Bytes) -> Response {
    let Some((name, format)) = split(&file) else { return not_found(&file) };
    if name != "requests" {
        return error(StatusCode::METHOD_NOT_ALLOWED, format, "only requests may be posted");
    }
    // The specification posts form-encoded parameters; query parameters count too.
    let mut params: BTreeMap<String, String> = query;
    match serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) {
        Ok(pairs) => params.extend(pairs),
        Err(_) => return error(StatusCode::BAD_REQUEST, format, "the body must be application/x-www-form-urlencoded UTF-8"),
    }
    if let Some(r) = jurisdiction(&app, &params, format) {
        return r;
    }
    let get = |k: &str| params.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let Some(key) = key_of(&app, &get("api_key")).cloned() else {
        return error(StatusCode::FORBIDDEN, format, "api_key is missing or not valid");
    };
    let mut problems = Vec::new();
    let code = get("service_code");
    let service = app.open311().services.iter().find(|s| s.code == code).cloned();
    if code.is_empty() {
        problems.push("service_code is required".to_string());
    } else if service.is_none() {
        problems.push(format!("service_code {code:?} is not a service of this district (see services.{})", ext(format)));
    }
    let number = |k: &str| -> Result<Option<f64>, String> {
        match get(k) {
            v if v.is_empty() => Ok(None),
            v => v.parse::<f64>().map(Some).map_err(|_| format!("{k} {v:?} is not a number")),
        }
    };
    let (lat, long) = match (number("lat"), number("long")) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            problems.extend(a.err());
            problems.extend(b.err());
            (None, None)
        }
    };
    let address = get("address_string");
    let address_id = get("address_id");
    if lat.is_some() != long.is_some() {
        problems.push("lat and long go together".into());
    }
    if lat.is_none() && address.is_empty() && address_id.is_empty() {
        problems.push("a location is required: lat and long, address_string or address_id".into());
    }
    if get("description").is_empty() {
        problems.push("description is required here: what is the problem?".into());
    }
    if !problems.is_empty() {
        return error(StatusCode::BAD_REQUEST, format, &problems.join("; "));
    }
    let service = service.expect("checked above");
    let name = format!("{}{}", get("last_name"), get("first_name"));
    let media = get("media_url");
    let token = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<12>())
    };
    let submission = Submission {
        channel: key.channel.clone(),
        channel_ref: format!("o311-{token}"),
        citizen: Some(Citizen { name, phone: get("phone"), anonymous: false }),
        title: service.name.clone(),
        description: get("description"),
        location: Some(Location {
            address: if address.is_empty() { address_id.clone() } else { address.clone() },
            latitude: lat.unwrap_or_default(),
            longitude: long.unwrap_or_default(),
            ..Default::default()
        }),
        attachments: if media.is_empty() {
            Vec::new()
        } else {
            vec![Attachment { kind: "photo".into(), url: media, ..Default::default() }]
        },
        category_hint: service.code.clone(),
        ..Default::default()
    };
    match app.intake().submit(SubmitRequest { submission: Some(submission) }).await {
        Ok(r) => {
            let r = r.into_inner();
            let created = Value::Record(vec![
                ("service_request_id", text(r.case_no)),
                ("service_notice", text("已受理，请关注办理进度")),
                ("account_id", Value::Null),
            ]);
            respond(StatusCode::CREATED, format, "service_requests", Value::List("request", vec![created]))
        }
        Err(status) if status.code() == Code::InvalidArgument => {
            let reasons = status.message().trim_start_matches("submission rejected: ").to_string();
            error(StatusCode::BAD_REQUEST, format, &reasons)
        }
        Err(status) => {
            tracing::warn!(code = ?status.code(), "intake could not take an Open311 request");
            error(StatusCode::SERVICE_UNAVAILABLE, format, "the service is unavailable; try again later")
        }
    }
}

fn ext(format: Format) -> &'static str {
    match format {
        Format::Json => "json",
        Format::Xml => "xml",
    }
}

/// The Open311 channels this front serves.
fn channels(app: &App) -> Vec<String> {
    let mut c: Vec<String> = app.open311().keys.iter().map(|k| k.channel.clone()).collect();
    c.sort();
    c.dedup();
    c
}

fn w3c(t: Option<&jiesu_proto::Timestamp>) -> Value {
    match t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or_default())) {
        Some(t) => text(t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        None => Value::Null,
    }
}

fn request_value(app: &App, r: &PublicStatus) -> Value {
    let service = app.open311().services.iter().find(|s| s.code == r.category_hint);
    let notes = r.steps.last().map(|s| s.text.clone()).unwrap_or_default();
    let located = r.latitude != 0.0 || r.longitude != 0.0;
    Value::Record(vec![
        ("service_request_id", text(&r.case_no)),
        ("status", text(if r.closed { "closed" } else { "open" })),
        ("status_notes", text(notes)),
        ("service_name", text(service.map_or(r.title.as_str(), |s| s.name.as_str()))),
        ("service_code", text(&r.category_hint)),
        ("description", Value::Null),
        ("agency_responsible", text(&r.unit_name)),
        ("service_notice", text(&r.status_zh)),
        ("requested_datetime", w3c(r.received_at.as_ref())),
        ("updated_datetime", w3c(r.updated_at.as_ref())),
        ("expected_datetime", Value::Null),
        ("address", Value::Null),
        ("address_id", Value::Null),
        ("zipcode", Value::Null),
        ("lat", if located { Value::Number(r.latitude) } else { Value::Null }),
        ("long", if located { Value::Number(r.longitude) } else { Value::Null }),
        ("media_url", Value::Null),
    ])
}

/// A W3C date-time parameter.
fn when(params: &BTreeMap<String, String>, key: &str) -> Result<Option<DateTime<Utc>>, String> {
    match params.get(key).map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| format!("{key} {v:?} is not a W3C date-time such as 2026-12-01T00:00:00Z")),
    }
}

fn list(params: &BTreeMap<String, String>, key: &str) -> Vec<String> {
    params.get(key).map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
}

async fn list_requests(app: &App, params: &BTreeMap<String, String>, format: Format) -> Response {
    let ids = list(params, "service_request_id");
    let codes = list(params, "service_code");
    let statuses = list(params, "status");
    if let Some(bad) = statuses.iter().find(|s| !matches!(s.as_str(), "open" | "closed")) {
        return error(StatusCode::BAD_REQUEST, format, &format!("status {bad:?} is neither open nor closed"));
    }
    let (start, end) = match (when(params, "start_date"), when(params, "end_date")) {
        (Ok(s), Ok(e)) => (s, e),
        (s, e) => return error(StatusCode::BAD_REQUEST, format, &[s.err(), e.err()].into_iter().flatten().collect::<Vec<_>>().join("; ")),
    };
    // The specification's defaults: the last 90 days, and never a wider range.
    let span = Duration::days(90);
    let now = Utc::now();
    let (start, end) = match (start, end) {
        (None, None) => (now - span, now),
        (Some(s), None) => (s, s + span),
        (None, Some(e)) => (e - span, e),
        (Some(s), Some(e)) => (s, e),
    };
    if ids.is_empty() && (end < start || end - start > span) {
        return error(
            StatusCode::BAD_REQUEST,
            format,
            "start_date and end_date may not span more than 90 days, and start_date comes first",
        );
    }
    let to_proto = |t: DateTime<Utc>| jiesu_kit::time::to_proto(t);
    let request = ListChannelRequestsRequest {
        channels: channels(app),
        case_nos: ids.clone(),
        channel_refs: Vec::new(),
        // Listed ids override the other filters, as the specification says.
        received_from: if ids.is_empty() { Some(to_proto(start)) } else { None },
        received_until: if ids.is_empty() { Some(to_proto(end)) } else { None },
        limit: 1000,
    };
    match fetch(app, request).await {
        Ok(found) => {
            let items = found
                .iter()
                .filter(|r| !ids.is_empty() || codes.is_empty() || codes.contains(&r.category_hint))
                .filter(|r| !ids.is_empty() || statuses.is_empty() || statuses.iter().any(|s| (s == "closed") == r.closed))
                .map(|r| request_value(app, r))
                .collect();
            respond(StatusCode::OK, format, "service_requests", Value::List("request", items))
        }
        Err(r) => r(format),
    }
}

type Failure = Box<dyn FnOnce(Format) -> Response + Send>;

async fn fetch(app: &App, request: ListChannelRequestsRequest) -> Result<Vec<PublicStatus>, Failure> {
    if request.channels.is_empty() {
        return Ok(Vec::new());
    }
    match app.intake().list_channel_requests(request).await {
        Ok(r) => Ok(r.into_inner().requests),
        Err(status) => {
            tracing::warn!(code = ?status.code(), "intake could not list Open311 requests");
            Err(Box::new(|format| error(StatusCode::SERVICE_UNAVAILABLE, format, "the service is unavailable; try again later")))
        }
    }
}

async fn one_request(State(app): State<Arc<App>>, Path(file): Path<String>, Query(params): Params) -> Response {
    let Some((id, format)) = split(&file) else { return not_found(&file) };
    if let Some(r) = jurisdiction(&app, &params, format) {
        return r;
    }
    let request = ListChannelRequestsRequest { channels: channels(&app), case_nos: vec![id.to_string()], limit: 1, ..Default::default() };
    match fetch(&app, request).await {
        Ok(found) if !found.is_empty() => respond(
            StatusCode::OK,
            format,
            "service_requests",
            Value::List("request", found.iter().map(|r| request_value(&app, r)).collect()),
        ),
        Ok(_) => error(StatusCode::NOT_FOUND, format, &format!("service_request_id {id:?} not found")),
        Err(r) => r(format),
    }
}

async fn token(State(app): State<Arc<App>>, Path(file): Path<String>, Query(params): Params) -> Response {
    let Some((token, format)) = split(&file) else { return not_found(&file) };
    if let Some(r) = jurisdiction(&app, &params, format) {
        return r;
    }
    // Requests are registered at once, so posts answer the id and never a token; a token is
    // the request's own reference, should a client hold one.
    let request = ListChannelRequestsRequest {
        channels: channels(&app),
        channel_refs: vec![format!("o311-{token}")],
        limit: 1,
        ..Default::default()
    };
    match fetch(&app, request).await {
        Ok(found) if !found.is_empty() => {
            let items =
                found.iter().map(|r| Value::Record(vec![("service_request_id", text(&r.case_no)), ("token", text(token))])).collect();
            respond(StatusCode::OK, format, "service_requests", Value::List("request", items))
        }
        Ok(_) => error(StatusCode::NOT_FOUND, format, &format!("token {token:?} not found")),
        Err(r) => r(format),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_as_the_specification_shows_them() {
        let v = Value::List("request", vec![Value::Record(vec![("service_request_id", text("DM1")), ("account_id", Value::Null)])]);
        let mut json = String::new();
        v.json(&mut json);
        assert_eq!(json, r#"[{"service_request_id":"DM1","account_id":null}]"#);
        let mut xml = String::new();
        v.xml("service_requests", &mut xml);
        assert_eq!(
            xml,
            "<service_requests><request><service_request_id>DM1</service_request_id><account_id/></request></service_requests>"
        );
        let mut xml = String::new();
        text("<a href='x'>&</a>\u{1b}").xml("description", &mut xml);
        assert_eq!(xml, "<description>&lt;a href=&apos;x&apos;&gt;&amp;&lt;/a&gt;</description>");
    }

    #[test]
    fn paths_name_their_format() {
        assert_eq!(split("services.json"), Some(("services", Format::Json)));
        assert_eq!(split("01.03.xml"), Some(("01.03", Format::Xml)));
        assert_eq!(split("services"), None);
        assert_eq!(split("services.html"), None);
    }

    #[test]
    fn the_taxonomy_gives_the_services() {
        let (services, version) = services(
            "version = \"2026.2\"\n[[categories]]\ncode = \"01\"\nname = \"市容环境\"\n[[categories.sub_items]]\ncode = \"01.03\"\nname = \"乱停车\"\nkeywords = [\"乱停车\", \"占道\"]\n",
        )
        .unwrap();
        assert_eq!(version, "2026.2");
        assert_eq!((services[0].code.as_str(), services[0].group.as_str(), services[0].keywords.len()), ("01.03", "市容环境", 2));
    }
}
