//! Submissions arriving over JetStream on `jiesu.intake.<channel>`, as protobuf or JSON.

use std::sync::Arc;

use jiesu_kit::{
    Handler, HandlerError, Incoming, Outgoing, Tx,
    messaging::{JSON, header},
    time::to_proto,
};
use jiesu_proto::v1::{Attachment, Citizen, FieldViolation, Location, Submission, SubmissionRejected};
use serde::Deserialize;

use crate::{Error, Intake};

/// Registers each submission message; answers one it cannot accept on
/// `jiesu.intake.rejected.<channel>` with every reason.
pub struct Submissions {
    pub intake: Arc<Intake>,
}

impl Handler for Submissions {
    async fn handle(&self, tx: &mut Tx, msg: &Incoming) -> Result<Vec<Outgoing>, HandlerError> {
        let channel = msg.kind.clone();
        let mut submission = match decode(msg) {
            Ok(s) => s,
            Err(reason) => {
                let v = FieldViolation { field: "body".into(), reason, reason_zh: "报文格式错误，无法解析".into() };
                return Ok(vec![self.rejection(msg, &channel, "", vec![v])]);
            }
        };
        if submission.channel.is_empty() {
            submission.channel = channel.clone();
        } else if submission.channel != channel {
            let v = FieldViolation {
                field: "channel".into(),
                reason: format!("says {:?} but was sent on the subject of channel {channel:?}", submission.channel),
                reason_zh: "报文中的渠道与发送主题不一致".into(),
            };
            return Ok(vec![self.rejection(msg, &channel, &submission.channel_ref, vec![v])]);
        }
        match self.intake.register(tx, &submission).await {
            Ok((_, events)) => Ok(events),
            Err(Error::Invalid(violations)) => {
                tracing::info!(%channel, reasons = violations.len(), "submission rejected");
                Ok(vec![self.rejection(msg, &channel, &submission.channel_ref, violations)])
            }
            Err(e) => Err(HandlerError::Retry(e.to_string())),
        }
    }
}

impl Submissions {
    fn rejection(&self, msg: &Incoming, channel: &str, channel_ref: &str, violations: Vec<FieldViolation>) -> Outgoing {
        let event = SubmissionRejected {
            channel: channel.to_string(),
            channel_ref: channel_ref.to_string(),
            violations,
            rejected_at: Some(to_proto(self.intake.clock.now())),
        };
        // Deterministic id: a redelivered submission never yields a second rejection.
        Outgoing::to_subject(
            self.intake.subjects.rejected(channel),
            "submission.rejected",
            format!("rejected:{}", msg.message_id),
            &event,
        )
    }
}

/// Protobuf by default; JSON when the producer says `Content-Type: application/json` — or says
/// nothing and sends an object: `{` can never start a valid `Submission` (it would be field 15
/// as a deprecated group), so a producer without headers (`nats pub`) is still understood.
fn decode(msg: &Incoming) -> Result<Submission, String> {
    let is_json = match msg.header(header::CONTENT_TYPE) {
        Some(c) => c.starts_with(JSON),
        None => msg.payload.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
    };
    if is_json {
        let json: SubmissionJson = serde_json::from_slice(&msg.payload).map_err(|e| format!("invalid JSON submission: {e}"))?;
        json.into_submission()
    } else {
        <Submission as prost::Message>::decode(msg.payload.as_ref())
            .map_err(|e| format!("not a protobuf jiesu.v1.Submission (send Content-Type: application/json for JSON): {e}"))
    }
}

/// The JSON form of a submission, for integrators without protobuf. Unknown fields are errors,
/// so that a misspelt field is reported instead of silently dropped.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionJson {
    #[serde(default)]
    pub channel: String,
    #[serde(default)]
    pub channel_ref: String,
    #[serde(default)]
    pub citizen: Option<CitizenJson>,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub location: Option<LocationJson>,
    #[serde(default)]
    pub attachments: Vec<AttachmentJson>,
    /// RFC 3339, e.g. "2026-11-23T09:30:00+08:00".
    #[serde(default)]
    pub submitted_at: Option<String>,
    #[serde(default)]
    pub category_hint: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CitizenJson {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub anonymous: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationJson {
    #[serde(default)]
    pub street: String,
    #[serde(default)]
    pub community: String,
    #[serde(default)]
    pub grid: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub latitude: f64,
    #[serde(default)]
    pub longitude: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentJson {
    pub kind: String,
    pub url: String,
}

impl SubmissionJson {
    pub fn into_submission(self) -> Result<Submission, String> {
        let submitted_at = match self.submitted_at {
            None => None,
            Some(t) => Some(to_proto(
                chrono::DateTime::parse_from_rfc3339(&t)
                    .map_err(|e| format!("submitted_at {t:?} is not an RFC 3339 time: {e}"))?
                    .to_utc(),
            )),
        };
        Ok(Submission {
            channel: self.channel,
            channel_ref: self.channel_ref,
            citizen: self.citizen.map(|c| Citizen { name: c.name, phone: c.phone, anonymous: c.anonymous }),
            title: self.title,
            description: self.description,
            location: self.location.map(|l| Location {
                street: l.street,
                community: l.community,
                grid: l.grid,
                address: l.address,
                latitude: l.latitude,
                longitude: l.longitude,
            }),
            attachments: self.attachments.into_iter().map(|a| Attachment { kind: a.kind, url: a.url }).collect(),
            submitted_at,
            category_hint: self.category_hint,
        })
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
        let s = serde_json::from_str::<SubmissionJson>(json).unwrap().into_submission().unwrap();
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
        }
    }

    #[test]
    fn the_content_type_decides_and_a_bare_object_is_json() {
        let json = br#" {"channel_ref":"m-1","description":"d"}"#;
        assert_eq!(decode(&incoming(Some(JSON), json)).unwrap().channel_ref, "m-1");
        assert_eq!(decode(&incoming(None, json)).unwrap().channel_ref, "m-1");
        let proto = prost::Message::encode_to_vec(&Submission { channel_ref: "p-1".into(), ..Default::default() });
        assert_eq!(decode(&incoming(None, &proto)).unwrap().channel_ref, "p-1");
        assert_eq!(decode(&incoming(Some("application/x-protobuf"), &proto)).unwrap().channel_ref, "p-1");
        assert!(decode(&incoming(Some("application/x-protobuf"), json)).unwrap_err().contains("not a protobuf"));
    }

    #[test]
    fn misspelt_fields_and_bad_times_are_errors() {
        assert!(serde_json::from_str::<SubmissionJson>(r#"{"descripton":"x"}"#).is_err());
        let bad = serde_json::from_str::<SubmissionJson>(r#"{"submitted_at":"yesterday"}"#).unwrap();
        assert!(bad.into_submission().unwrap_err().contains("RFC 3339"));
    }
}
