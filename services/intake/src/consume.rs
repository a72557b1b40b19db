//! Submissions arriving over JetStream on `jiesu.intake.<channel>`, as protobuf or JSON, and
//! intake's answer to each on the producer's own channel: `jiesu.intake.accepted.<channel>`
//! with the case number, or `jiesu.intake.rejected.<channel>` with every reason — in the
//! submission's own format (JSON for JSON, protobuf for protobuf).

use std::sync::Arc;

use jiesu_kit::{
    Handler, HandlerError, Inbound, Incoming, Subjects, Work,
    messaging::{JSON, PROTOBUF, header},
    time::{from_millis, to_proto},
};
use jiesu_proto::{
    Named,
    v1::{Attachment, Citizen, FieldViolation, Location, Submission, SubmissionAccepted, SubmissionRejected},
};
use prost::Message;
use serde_json::{Map, Value};

use crate::{Error, Intake};

/// The header intake's answers carry the submission's `channel_ref` in, so a producer can
/// match an answer without decoding it.
pub const CHANNEL_REF_HEADER: &str = "Jiesu-Channel-Ref";

/// A message on `jiesu.intake.<channel>`, as it arrived.
#[derive(Debug)]
pub struct Submitted(pub Incoming);

impl Inbound for Submitted {
    /// Channels are configuration, not code: [`Events::knows`] decides the metric labels.
    const KINDS: &'static [&'static str] = &[];

    fn source(subjects: &Subjects) -> (String, Vec<String>) {
        (subjects.submissions_stream(), vec![subjects.intake_all()])
    }

    fn decode(msg: &Incoming) -> Result<Self, HandlerError> {
        Ok(Submitted(msg.clone()))
    }

    /// The stream message itself, never the producer's `Nats-Msg-Id`: a rejected submission
    /// must not use up a key its corrected re-send may carry, and the key stays unique when the
    /// stream is recreated. Re-sends of a registered submission are recognised by
    /// (channel, channel_ref) and answered with the original case.
    fn inbox_key(msg: &Incoming) -> &str {
        &msg.stream_key
    }

    fn causation_id(_msg: &Incoming) -> &str {
        ""
    }
}

jiesu_kit::consumes! {
    /// The events of intake's progress consumer.
    pub enum ProgressEvents {
        CaseDispatched, CaseAccepted, CaseContacted, CaseReplied, CaseResolved, CaseClosed, CaseReopened, CaseMerged,
        RevisitRecorded,
    }
}

/// Remembers which unit owns each case, for [`crate::policy::may_read_contact`], and records
/// each step the citizen is told of on the status page ([`crate::domain::public_step`]).
pub struct Progress;

impl Handler for Progress {
    type Message = ProgressEvents;

    async fn handle(&self, work: &mut Work<'_>, msg: ProgressEvents) -> Result<(), HandlerError> {
        let meta = msg.meta().cloned().unwrap_or_default();
        let now = work.now_millis();
        if let ProgressEvents::CaseDispatched(e) = &msg {
            crate::store::set_owner(work.tx, &meta.case_id, &e.unit_id, now).await?;
        }
        if let Some(step) = crate::domain::public_step(&msg) {
            let at = meta.occurred_at.as_ref().map_or(now, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000);
            let row = crate::store::PublicStepRow {
                event_id: meta.event_id.clone(),
                case_id: meta.case_id.clone(),
                at,
                step: step.step.to_string(),
                text: step.text,
                unit_name: step.unit_name,
            };
            crate::store::record_step(work.tx, &row).await?;
        }
        Ok(())
    }
}

/// Registers each submission message and answers it.
pub struct Events {
    pub intake: Arc<Intake>,
}

impl Handler for Events {
    type Message = Submitted;

    async fn handle(&self, work: &mut Work<'_>, msg: Submitted) -> Result<(), HandlerError> {
        let msg = msg.0;
        let channel = msg.kind.clone();
        let format = Format::of(&msg);
        let (mut submission, mut violations) = match decode(&msg, format) {
            Ok(s) => (s, Vec::new()),
            Err(Undecodable { partial, violations }) => (*partial, violations),
        };
        if submission.channel.is_empty() {
            submission.channel = channel.clone();
        } else if submission.channel != channel {
            violations.push(FieldViolation {
                field: "channel".into(),
                reason: format!("says {:?} but was sent on the subject of channel {channel:?}", excerpt(&submission.channel)),
                reason_zh: "报文中的渠道与发送主题不一致".into(),
            });
        }
        let answer = Answer { channel: &channel, channel_ref: submission.channel_ref.clone(), format };
        if !violations.is_empty() {
            // Report what else is wrong too, once per field.
            let now = work.now();
            if let Err(more) = crate::domain::validate(&submission, &self.intake.settings.channels, &self.intake.settings.limits, now) {
                for v in more {
                    if !violations.iter().any(|seen| seen.field == v.field) {
                        violations.push(v);
                    }
                }
            }
            answer.rejected(work, &self.intake.subjects, violations);
            return Ok(());
        }
        let producer = self.intake.channel(&channel).map(|c| c.producer().to_string()).unwrap_or_else(|| channel.clone());
        let entered_by = format!("NATS: channel-{channel} ({producer})");
        match self.intake.register(work, &submission, from_millis(msg.published_at), &entered_by).await {
            Ok(registered) => {
                answer.accepted(work, &self.intake.subjects, &registered);
                Ok(())
            }
            Err(Error::Invalid(violations)) => {
                tracing::info!(%channel, reasons = violations.len(), "submission rejected");
                answer.rejected(work, &self.intake.subjects, violations);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn knows(&self, kind: &str) -> bool {
        self.intake.settings.channels.iter().any(|c| c.id == kind)
    }
}

/// At most this much of a producer's value comes back in a reason.
fn excerpt(value: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = value.chars().take(MAX).filter(|c| !c.is_control()).collect();
    if value.chars().count() > MAX {
        out.push('…');
    }
    out
}

/// How a submission was written, and so how it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Protobuf,
}

impl Format {
    /// JSON when the producer says `Content-Type: application/json` (any case, any parameters)
    /// — or says nothing and sends an object: `{` can never start a valid `Submission` (it
    /// would be field 15 as a deprecated group), so a producer without headers is understood.
    pub fn of(msg: &Incoming) -> Self {
        match msg.header(header::CONTENT_TYPE) {
            Some(c) => {
                let media = c.split(';').next().unwrap_or_default().trim();
                if media.eq_ignore_ascii_case(JSON) { Format::Json } else { Format::Protobuf }
            }
            None => {
                let body = strip_bom(&msg.payload);
                if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') { Format::Json } else { Format::Protobuf }
            }
        }
    }
}

fn strip_bom(payload: &[u8]) -> &[u8] {
    payload.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(payload)
}

/// A submission that could not be read whole: what could be read, and why not the rest.
#[derive(Debug)]
pub struct Undecodable {
    pub partial: Box<Submission>,
    pub violations: Vec<FieldViolation>,
}

fn violation(field: &str, reason: String, reason_zh: &str) -> FieldViolation {
    FieldViolation { field: field.to_string(), reason, reason_zh: reason_zh.to_string() }
}

fn decode(msg: &Incoming, format: Format) -> Result<Submission, Undecodable> {
    match format {
        Format::Json => from_json(strip_bom(&msg.payload)),
        Format::Protobuf => Submission::decode(msg.payload.as_ref()).map_err(|e| Undecodable {
            partial: Box::default(),
            violations: vec![violation(
                "body",
                format!("not a protobuf jiesu.v1.Submission (send Content-Type: application/json for JSON): {e}"),
                "报文格式错误，无法解析",
            )],
        }),
    }
}

/// Reads the JSON form of a submission field by field, so that one bad field does not hide the
/// others or the `channel_ref` the producer matches answers by. Unknown fields are errors, so a
/// misspelt field is reported instead of silently dropped.
pub fn from_json(body: &[u8]) -> Result<Submission, Undecodable> {
    let mut v = Vec::new();
    let mut s = Submission::default();
    let root = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            v.push(violation("body", "must be a JSON object".into(), "报文应为JSON对象"));
            return Err(Undecodable { partial: Box::new(s), violations: v });
        }
        Err(e) => {
            v.push(violation("body", format!("invalid JSON submission: {e}"), "报文格式错误，无法解析"));
            return Err(Undecodable { partial: Box::new(s), violations: v });
        }
    };
    let mut fields = Fields { violations: &mut v };
    for (key, value) in &root {
        match key.as_str() {
            "channel" => s.channel = fields.string(key, value),
            "channel_ref" => s.channel_ref = fields.string(key, value),
            "title" => s.title = fields.string(key, value),
            "description" => s.description = fields.string(key, value),
            "category_hint" => s.category_hint = fields.string(key, value),
            "session" => s.session = fields.string(key, value),
            "citizen" => s.citizen = fields.object(key, value).map(|m| fields.citizen(&m)),
            "location" => s.location = fields.object(key, value).map(|m| fields.location(&m)),
            "attachments" => s.attachments = fields.attachments(value),
            "submitted_at" => s.submitted_at = fields.time(key, value),
            other => fields.unknown(other),
        }
    }
    if v.is_empty() { Ok(s) } else { Err(Undecodable { partial: Box::new(s), violations: v }) }
}

struct Fields<'a> {
    violations: &'a mut Vec<FieldViolation>,
}

impl Fields<'_> {
    fn unknown(&mut self, path: &str) {
        self.violations.push(violation(path, "is not a field of a submission (check the spelling)".into(), "未知字段"));
    }

    fn string(&mut self, path: &str, value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            _ => {
                self.violations.push(violation(path, "must be a string".into(), "字段类型错误，应为文本"));
                String::new()
            }
        }
    }

    fn number(&mut self, path: &str, value: &Value) -> f64 {
        match value {
            Value::Number(n) => n.as_f64().unwrap_or_default(),
            Value::Null => 0.0,
            _ => {
                self.violations.push(violation(path, "must be a number".into(), "字段类型错误，应为数字"));
                0.0
            }
        }
    }

    fn object(&mut self, path: &str, value: &Value) -> Option<Map<String, Value>> {
        match value {
            Value::Object(m) => Some(m.clone()),
            Value::Null => None,
            _ => {
                self.violations.push(violation(path, "must be an object".into(), "字段类型错误，应为对象"));
                None
            }
        }
    }

    fn citizen(&mut self, m: &Map<String, Value>) -> Citizen {
        let mut c = Citizen::default();
        for (key, value) in m {
            let path = format!("citizen.{key}");
            match key.as_str() {
                "name" => c.name = self.string(&path, value),
                "phone" => c.phone = self.string(&path, value),
                "anonymous" => match value {
                    Value::Bool(b) => c.anonymous = *b,
                    Value::Null => {}
                    _ => self.violations.push(violation(&path, "must be true or false".into(), "字段类型错误，应为是/否")),
                },
                _ => self.unknown(&path),
            }
        }
        c
    }

    fn location(&mut self, m: &Map<String, Value>) -> Location {
        let mut l = Location::default();
        for (key, value) in m {
            let path = format!("location.{key}");
            match key.as_str() {
                "street" => l.street = self.string(&path, value),
                "community" => l.community = self.string(&path, value),
                "grid" => l.grid = self.string(&path, value),
                "address" => l.address = self.string(&path, value),
                "latitude" => l.latitude = self.number(&path, value),
                "longitude" => l.longitude = self.number(&path, value),
                _ => self.unknown(&path),
            }
        }
        l
    }

    fn attachments(&mut self, value: &Value) -> Vec<Attachment> {
        let items = match value {
            Value::Array(items) => items,
            Value::Null => return Vec::new(),
            _ => {
                self.violations.push(violation("attachments", "must be a list".into(), "字段类型错误，应为列表"));
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("attachments[{i}]");
            let Some(m) = self.object(&path, item) else { continue };
            let mut a = Attachment::default();
            for (key, value) in &m {
                let field = format!("{path}.{key}");
                match key.as_str() {
                    "kind" => a.kind = self.string(&field, value),
                    "url" => a.url = self.string(&field, value),
                    "sha256" => a.sha256 = self.string(&field, value),
                    // What UploadAttachment answered may be passed back whole; intake takes
                    // the type and size from its own record of the upload anyway.
                    "media_type" => a.media_type = self.string(&field, value),
                    "size" => a.size = self.number(&field, value) as u64,
                    _ => self.unknown(&field),
                }
            }
            out.push(a);
        }
        out
    }

    fn time(&mut self, path: &str, value: &Value) -> Option<jiesu_proto::Timestamp> {
        let text = self.string(path, value);
        if text.is_empty() {
            return None;
        }
        match chrono::DateTime::parse_from_rfc3339(&text) {
            Ok(t) => Some(to_proto(t.to_utc())),
            Err(e) => {
                self.violations.push(violation(
                    path,
                    format!("{:?} is not an RFC 3339 time (e.g. 2026-11-23T09:30:00+08:00): {e}", excerpt(&text)),
                    "时间格式错误",
                ));
                None
            }
        }
    }
}

/// How intake answers one submission.
struct Answer<'a> {
    channel: &'a str,
    channel_ref: String,
    format: Format,
}

impl Answer<'_> {
    fn accepted(&self, work: &mut Work<'_>, subjects: &Subjects, r: &crate::Registered) {
        let received_at = jiesu_kit::time::millis_to_proto(r.received_at);
        let message = SubmissionAccepted {
            channel: self.channel.to_string(),
            channel_ref: self.channel_ref.clone(),
            case_id: r.case_id.clone(),
            case_no: r.case_no.clone(),
            duplicate: r.duplicate,
            received_at: Some(received_at),
            query_code: r.query_code.clone(),
        };
        let payload = match self.format {
            Format::Protobuf => message.encode_to_vec(),
            Format::Json => serde_json::json!({
                "channel": message.channel,
                "channel_ref": message.channel_ref,
                "case_id": message.case_id,
                "case_no": message.case_no,
                "duplicate": message.duplicate,
                "received_at": from_millis(r.received_at).to_rfc3339(),
                "query_code": message.query_code,
            })
            .to_string()
            .into_bytes(),
        };
        self.send::<SubmissionAccepted>(work, subjects.accepted(self.channel), payload);
    }

    fn rejected(&self, work: &mut Work<'_>, subjects: &Subjects, violations: Vec<FieldViolation>) {
        let rejected_at = work.now();
        let payload = match self.format {
            Format::Protobuf => SubmissionRejected {
                channel: self.channel.to_string(),
                channel_ref: self.channel_ref.clone(),
                violations,
                rejected_at: Some(to_proto(rejected_at)),
            }
            .encode_to_vec(),
            Format::Json => serde_json::json!({
                "channel": self.channel,
                "channel_ref": self.channel_ref,
                "violations": violations.iter().map(|v| serde_json::json!({
                    "field": v.field, "reason": v.reason, "reason_zh": v.reason_zh,
                })).collect::<Vec<_>>(),
                "rejected_at": rejected_at.to_rfc3339(),
            })
            .to_string()
            .into_bytes(),
        };
        self.send::<SubmissionRejected>(work, subjects.rejected(self.channel), payload);
    }

    fn send<M: Named>(&self, work: &mut Work<'_>, subject: String, payload: Vec<u8>) {
        let content_type = match self.format {
            Format::Json => JSON,
            Format::Protobuf => PROTOBUF,
        };
        // A header value is one line: a ref with control characters is answered without it.
        let headers = if self.channel_ref.chars().any(char::is_control) || self.channel_ref.len() > 256 {
            vec![]
        } else {
            vec![(CHANNEL_REF_HEADER, self.channel_ref.clone())]
        };
        work.answer::<M>(subject, payload, content_type, headers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_maps_to_the_protobuf_submission() {
        let json = r#"{"channel_ref":"m-1","citizen":{"name":"李四","phone":"13900139000"},
            "description":"楼下饭店油烟太大","location":{"street":"st-dongmen"},
            "submitted_at":"2026-11-23T09:30:00+08:00"}"#;
        let s = from_json(json.as_bytes()).unwrap();
        assert_eq!(s.channel_ref, "m-1");
        assert_eq!(s.location.unwrap().street, "st-dongmen");
        let utc = chrono::DateTime::parse_from_rfc3339("2026-11-23T01:30:00Z").unwrap();
        assert_eq!(s.submitted_at.unwrap().seconds, utc.timestamp());
    }

    fn incoming(content_type: Option<&str>, payload: &[u8]) -> Incoming {
        Incoming {
            subject: "jiesu.intake.hotline".into(),
            kind: "hotline".into(),
            message_id: "m".into(),
            headers: content_type.map(|c| [(header::CONTENT_TYPE.to_string(), c.to_string())].into()).unwrap_or_default(),
            payload: payload.to_vec().into(),
            delivered: 1,
            stream_sequence: 1,
            stream_key: "S@1:1".into(),
            published_at: 0,
        }
    }

    fn read(content_type: Option<&str>, payload: &[u8]) -> Result<Submission, Undecodable> {
        let msg = incoming(content_type, payload);
        decode(&msg, Format::of(&msg))
    }

    #[test]
    fn the_content_type_decides_and_a_bare_object_is_json() {
        let json = br#" {"channel_ref":"m-1","description":"d"}"#;
        assert_eq!(read(Some(JSON), json).unwrap().channel_ref, "m-1");
        assert_eq!(read(None, json).unwrap().channel_ref, "m-1");
        let proto = prost::Message::encode_to_vec(&Submission { channel_ref: "p-1".into(), ..Default::default() });
        assert_eq!(read(None, &proto).unwrap().channel_ref, "p-1");
        assert_eq!(read(Some("application/x-protobuf"), &proto).unwrap().channel_ref, "p-1");
        assert!(read(Some("application/x-protobuf"), json).unwrap_err().violations[0].reason.contains("not a protobuf"));
    }

    #[test]
    fn the_content_type_is_read_in_any_case_with_parameters_and_a_bom_is_skipped() {
        let json = "\u{feff}{\"channel_ref\":\"m-2\",\"description\":\"d\"}".as_bytes();
        for ct in ["APPLICATION/JSON", "application/json; charset=utf-8", " Application/Json "] {
            assert_eq!(read(Some(ct), json).unwrap().channel_ref, "m-2", "{ct}");
        }
        assert_eq!(read(None, json).unwrap().channel_ref, "m-2");
    }

    #[test]
    fn a_json_error_keeps_the_ref_and_every_other_field_error() {
        let bad = read(Some(JSON), br#"{"channel_ref":"m-3","descripton":"x","title":7,"citizen":{"nmae":"a"}}"#).unwrap_err();
        assert_eq!(bad.partial.channel_ref, "m-3");
        let fields: Vec<_> = bad.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["citizen.nmae", "descripton", "title"]);
    }

    #[test]
    fn misspelt_fields_and_bad_times_are_errors() {
        assert_eq!(from_json(br#"{"descripton":"x"}"#).unwrap_err().violations[0].field, "descripton");
        let bad = from_json(br#"{"submitted_at":"yesterday"}"#).unwrap_err();
        assert!(bad.violations[0].reason.contains("RFC 3339"));
        assert_eq!(from_json(b"[1]").unwrap_err().violations[0].field, "body");
        assert_eq!(from_json(b"{oops").unwrap_err().violations[0].field, "body");
    }

    /// Property: whatever bytes arrive — random, or a valid JSON or protobuf submission with
    /// bytes flipped, cut or repeated — decoding never panics, and a refusal always says which
    /// field and why, in English and Chinese.
    #[test]
    fn every_byte_string_is_decoded_or_refused_with_reasons() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let json = br#"{"channel_ref":"m-1","citizen":{"name":"Li","phone":"13900139000"},"description":"d","location":{"street":"s","latitude":22.5},"attachments":[{"kind":"photo","url":"https://x/y.jpg"},{"sha256":"ab"}],"submitted_at":"2026-11-23T09:30:00+08:00","session":"x"}"#.to_vec();
        let proto = prost::Message::encode_to_vec(&Submission {
            channel_ref: "p-1".into(),
            description: "楼道灯坏了".into(),
            attachments: vec![Attachment { kind: "photo".into(), url: "https://x".into(), ..Default::default() }],
            ..Default::default()
        });
        for i in 0..20_000u64 {
            let mut bytes = match i % 3 {
                0 => json.clone(),
                1 => proto.clone(),
                _ => (0..(next() % 200)).map(|_| next() as u8).collect(),
            };
            if !bytes.is_empty() && i % 3 != 2 {
                for _ in 0..=(next() % 4) {
                    let at = (next() as usize) % bytes.len();
                    match next() % 3 {
                        0 => bytes[at] = next() as u8,
                        1 => bytes.truncate(at),
                        _ => bytes.insert(at, bytes[at]),
                    }
                    if bytes.is_empty() {
                        break;
                    }
                }
            }
            let content_type = [Some(JSON), Some("application/x-protobuf"), None][(next() % 3) as usize];
            if let Err(e) = read(content_type, &bytes) {
                assert!(!e.violations.is_empty(), "a refusal without a reason for {bytes:?}");
                for v in &e.violations {
                    assert!(!v.field.is_empty() && !v.reason.is_empty() && !v.reason_zh.is_empty(), "{v:?}");
                }
            }
        }
    }
}
