//! Intake's use case (受理): registration, shared by the gRPC API and the NATS consumer.

use chrono::{DateTime, Utc};
use jiesu_kit::{
    CaseIds, Subjects, Work,
    time::{from_proto, to_millis},
};
use jiesu_proto::v1::{CaseReceived, Submission, SubmitResponse};

use crate::{Error, Settings, attachments, domain, store};

/// The result of registering a submission.
#[derive(Debug, Clone)]
pub struct Registered {
    pub case_id: String,
    pub case_no: String,
    pub received_at: i64,
    /// This (channel, channel_ref) had been registered before: nothing new happened.
    pub duplicate: bool,
    /// The citizen's query code (查询码), for the status page.
    pub query_code: String,
}

/// A fresh query code from the system's random source.
fn new_query_code() -> Result<String, Error> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; domain::QUERY_CODE_LEN];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| jiesu_kit::Error::Config("the system's random source failed".into()))?;
    Ok(domain::query_code(&bytes))
}

impl Registered {
    pub fn to_proto(&self) -> SubmitResponse {
        SubmitResponse {
            case_id: self.case_id.clone(),
            case_no: self.case_no.clone(),
            duplicate: self.duplicate,
            received_at: Some(jiesu_kit::time::millis_to_proto(self.received_at)),
            query_code: self.query_code.clone(),
        }
    }
}

/// Registration, shared by the gRPC API and the NATS consumer.
pub struct Intake {
    /// Seals the citizen's name and phone at rest.
    pub seal: crate::sealing::ContactSeal,
    pub settings: Settings,
    pub district: jiesu_kit::config::District,
    pub timezone: chrono_tz::Tz,
    pub subjects: Subjects,
    /// Where uploaded files are kept.
    pub attachments: std::sync::Arc<attachments::AttachmentStore>,
}

impl Intake {
    /// A configured channel by its id.
    pub fn channel(&self, id: &str) -> Option<&domain::Channel> {
        self.settings.channels.iter().find(|c| c.id == id)
    }

    /// Validates and registers a submission inside `work`, emitting `case.received`. `taken_at`
    /// is when the channel's message reached Jiesu (its stream time; now for a gRPC call);
    /// `entered_by` who entered it (the verified caller, or the channel's producer).
    pub async fn register(
        &self,
        work: &mut Work<'_>,
        submission: &Submission,
        taken_at: DateTime<Utc>,
        entered_by: &str,
    ) -> Result<Registered, Error> {
        let now = work.now();
        let mut clean = domain::validate(submission, &self.settings.channels, &self.settings.limits, now).map_err(Error::Invalid)?;
        if let Some(row) = store::find_by_channel_ref(work.tx, &clean.channel, &clean.channel_ref).await? {
            let query_code = self.open(&row.query_code, &row.case_id)?;
            return Ok(Registered {
                case_id: row.case_id,
                case_no: row.case_no,
                received_at: row.received_at,
                duplicate: true,
                query_code,
            });
        }
        self.resolve_uploads(work, &mut clean).await?;
        let channel = self.settings.channels.iter().find(|c| c.id == clean.channel).cloned().unwrap_or_else(|| domain::Channel {
            id: clean.channel.clone(),
            name: String::new(),
            kind: domain::ChannelKind::Other,
            owner: String::new(),
            producer: String::new(),
            requires_contact: true,
            enabled: true,
            limits: Default::default(),
        });
        let local_day = now.with_timezone(&self.timezone).date_naive();
        let seq = store::next_sequence(work.tx, &local_day.format("%Y-%m-%d").to_string()).await?;
        let case_no = domain::case_no(&self.district.case_no_prefix, local_day, seq);
        let case_id = self.case_id(&clean, taken_at);
        let submitted_at = clean.submitted_at.as_ref().and_then(from_proto).filter(|t| *t <= now).unwrap_or(now);
        let citizen = clean.citizen.clone().unwrap_or_default();
        let query_code = new_query_code()?;
        let sealed = store::SealedContact {
            name: self.seal.seal(&citizen.name, &case_id),
            phone: self.seal.seal(&citizen.phone, &case_id),
            phone_hash: self.seal.phone_hash(&citizen.phone),
            query_code: self.seal.seal(&query_code, &case_id),
        };
        let proactive = channel.proactive();
        let new = store::NewCase {
            case_id: &case_id,
            case_no: &case_no,
            submission: &clean,
            contact: &sealed,
            proactive,
            entered_by,
            submitted_at: to_millis(submitted_at),
            received_at: to_millis(now),
        };
        store::record_submission(work.tx, &new).await?;
        let event = self.received_event(&clean, &channel, &sealed.phone_hash);
        work.emit(CaseIds { case_id: &case_id, case_no: &case_no }, event);
        tracing::info!(case_id = %case_id, case_no = %case_no, channel = %clean.channel, "case received");
        Ok(Registered { case_id, case_no, received_at: to_millis(now), duplicate: false, query_code })
    }

    /// Fills each uploaded attachment from intake's own record of it — what it is was sniffed
    /// here, never taken from the producer — and checks the counts against the limits.
    async fn resolve_uploads(&self, work: &mut Work<'_>, clean: &mut Submission) -> Result<(), Error> {
        let hashes: Vec<String> = clean.attachments.iter().filter(|a| !a.sha256.is_empty()).map(|a| a.sha256.clone()).collect();
        let uploads = if hashes.is_empty() { Vec::new() } else { store::uploads(work.tx, &hashes).await? };
        let mut violations = Vec::new();
        for (i, a) in clean.attachments.iter_mut().enumerate() {
            if a.sha256.is_empty() {
                continue;
            }
            match uploads.iter().find(|u| u.sha256 == a.sha256) {
                Some(u) => {
                    a.kind = u.kind.clone();
                    a.media_type = u.media_type.clone();
                    a.size = u64::try_from(u.size).unwrap_or_default();
                }
                None => violations.push(jiesu_proto::v1::FieldViolation {
                    field: format!("attachments[{i}].sha256"),
                    reason: "no file was uploaded with this hash: upload it with UploadAttachment first".into(),
                    reason_zh: "附件尚未上传".into(),
                }),
            }
        }
        let kinds: Vec<attachments::Kind> = clean.attachments.iter().filter_map(|a| attachments::Kind::from_key(&a.kind)).collect();
        if let Err(refused) = attachments::check_counts(&kinds, &self.settings.attachments) {
            violations.push(jiesu_proto::v1::FieldViolation {
                field: "attachments".into(),
                reason: refused.reason,
                reason_zh: refused.reason_zh,
            });
        }
        if violations.is_empty() { Ok(()) } else { Err(Error::Invalid(violations)) }
    }

    /// A value sealed for a case, opened.
    pub fn open(&self, sealed: &str, case_id: &str) -> Result<String, Error> {
        Ok(self.seal.open(sealed, case_id).map_err(|e| jiesu_kit::Error::Config(e.to_string()))?)
    }

    /// The citizen's (name, phone) of a stored submission, opened.
    pub fn contact(&self, row: &store::SubmissionRow) -> Result<(String, String), Error> {
        Ok((self.open(&row.citizen_name, &row.case_id)?, self.open(&row.citizen_phone, &row.case_id)?))
    }

    /// A UUIDv7 of the moment the submission was taken whose other bits derive from its
    /// idempotency key: registering the same submission again (a replay after a restore)
    /// gives the case the same id, and so its events the same ids.
    fn case_id(&self, s: &Submission, taken_at: DateTime<Utc>) -> String {
        let name = format!("{}|{}|{}", self.district.code, s.channel, s.channel_ref);
        let hash = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes());
        let mut bits = [0u8; 10];
        bits.copy_from_slice(&hash.as_bytes()[..10]);
        let millis = u64::try_from(taken_at.timestamp_millis()).unwrap_or_default();
        uuid::Builder::from_unix_timestamp_millis(millis, &bits).into_uuid().to_string()
    }

    /// The event of a registered submission: the case without the citizen's contact, whom
    /// only the keyed hash of the phone (`citizen_key`) finds again.
    fn received_event(&self, s: &Submission, channel: &domain::Channel, citizen_key: &str) -> CaseReceived {
        let has_contact = s.citizen.as_ref().is_some_and(|c| !c.phone.is_empty());
        CaseReceived {
            meta: None,
            channel: s.channel.clone(),
            channel_ref: s.channel_ref.clone(),
            title: s.title.clone(),
            description: s.description.clone(),
            location: s.location.clone(),
            attachment_count: s.attachments.len() as u32,
            category_hint: s.category_hint.clone(),
            has_contact,
            citizen_key: citizen_key.to_string(),
            proactive: channel.proactive(),
            attachments: s.attachments.clone(),
            channel_kind: channel.kind.key().to_string(),
            session: s.session.clone(),
        }
    }
}
