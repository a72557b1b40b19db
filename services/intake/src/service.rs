//! Intake's use case (受理): registration, shared by the gRPC API and the NATS consumer.

use chrono::{DateTime, Utc};
use jiesu_kit::{
    CaseIds, Subjects, Work,
    time::{from_proto, to_millis},
};
use jiesu_proto::v1::{CaseReceived, Submission, SubmitResponse};

use crate::{Error, Settings, domain, store};

/// The result of registering a submission.
#[derive(Debug, Clone)]
pub struct Registered {
    pub case_id: String,
    pub case_no: String,
    pub received_at: i64,
    /// This (channel, channel_ref) had been registered before: nothing new happened.
    pub duplicate: bool,
}

impl Registered {
    pub fn to_proto(&self) -> SubmitResponse {
        SubmitResponse {
            case_id: self.case_id.clone(),
            case_no: self.case_no.clone(),
            duplicate: self.duplicate,
            received_at: Some(jiesu_kit::time::millis_to_proto(self.received_at)),
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
}

impl Intake {
    /// Validates and registers a submission inside `work`, emitting `case.received`. `taken_at`
    /// is when the channel's message reached Jiesu (its stream time; now for a gRPC call).
    pub async fn register(&self, work: &mut Work<'_>, submission: &Submission, taken_at: DateTime<Utc>) -> Result<Registered, Error> {
        let now = work.now();
        let clean = domain::validate(submission, &self.settings.channels, &self.settings.limits, now).map_err(Error::Invalid)?;
        if let Some(row) = store::find_by_channel_ref(work.tx, &clean.channel, &clean.channel_ref).await? {
            return Ok(Registered { case_id: row.case_id, case_no: row.case_no, received_at: row.received_at, duplicate: true });
        }
        let local_day = now.with_timezone(&self.timezone).date_naive();
        let seq = store::next_sequence(work.tx, &local_day.format("%Y-%m-%d").to_string()).await?;
        let case_no = domain::case_no(&self.district.case_no_prefix, local_day, seq);
        let case_id = self.case_id(&clean, taken_at);
        let submitted_at = clean.submitted_at.as_ref().and_then(from_proto).filter(|t| *t <= now).unwrap_or(now);
        let citizen = clean.citizen.clone().unwrap_or_default();
        let sealed = store::SealedContact {
            name: self.seal.seal(&citizen.name, &case_id),
            phone: self.seal.seal(&citizen.phone, &case_id),
            phone_hash: self.seal.phone_hash(&citizen.phone),
        };
        store::record_submission(work.tx, &case_id, &case_no, &clean, &sealed, to_millis(submitted_at), to_millis(now)).await?;
        let event = self.received_event(&clean, &sealed.phone_hash);
        work.emit(CaseIds { case_id: &case_id, case_no: &case_no }, event);
        tracing::info!(case_id = %case_id, case_no = %case_no, channel = %clean.channel, "case received");
        Ok(Registered { case_id, case_no, received_at: to_millis(now), duplicate: false })
    }

    /// The citizen's (name, phone) of a stored submission, opened.
    pub fn contact(&self, row: &store::SubmissionRow) -> Result<(String, String), Error> {
        let open = |v: &str| self.seal.open(v, &row.case_id).map_err(|e| jiesu_kit::Error::Config(e.to_string()));
        Ok((open(&row.citizen_name)?, open(&row.citizen_phone)?))
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
    fn received_event(&self, s: &Submission, citizen_key: &str) -> CaseReceived {
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
        }
    }
}
