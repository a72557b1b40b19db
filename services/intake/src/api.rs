//! `jiesu.v1.IntakeService`.

use std::sync::Arc;

use jiesu_kit::{CaseKey, Commands, Db, auth, time::millis_to_proto};
use std::pin::Pin;

use futures::Stream;
use jiesu_proto::v1::{
    Attachment, AttachmentChunk, CaseRef, ChannelCount, Contact, ContactRead, CountReceivedRequest, CountReceivedResponse, FieldViolation,
    GetAttachmentRequest, ListChannelRequestsRequest, ListChannelRequestsResponse, ListContactReadsRequest, ListContactReadsResponse,
    Location, PublicStatus, PublicStatusRequest, PublicStep, SubmissionView, SubmitRequest, SubmitResponse, TimelineEntry,
    intake_service_server::IntakeService,
};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Error, Intake, attachments,
    domain::{QUERY_CODE_LEN, mask_phone, normalise_query_code, public_status},
    policy, store,
};

pub struct IntakeApi {
    pub intake: Arc<Intake>,
    pub commands: Commands,
    pub db: Db,
    /// Submissions per channel in the last minute, for the channels' own rate limits.
    pub rates: std::sync::Mutex<jiesu_kit::rate::RateLimiter>,
}

impl IntakeApi {
    async fn submit_once(&self, request: &Request<SubmitRequest>) -> Result<SubmitResponse, Error> {
        let submission = request.get_ref().submission.clone().unwrap_or_default();
        if let Some(channel) = self.intake.channel(submission.channel.trim()) {
            if let Some(who) = auth::caller(request) {
                policy::may_submit(who, channel).map_err(|r| Error::Refused(r.0))?;
            }
            if let Some(per_minute) = channel.limits.submissions_per_minute {
                let now = self.commands.now();
                let mut rates = self.rates.lock().expect("rate table");
                if let Err(wait) = rates.hit(&channel.id, per_minute, std::time::Duration::from_secs(60), now) {
                    return Err(Error::Busy(format!(
                        "channel {:?} is over its limit of {per_minute} submissions a minute: retry in {wait} s (渠道提交过于频繁，请{wait}秒后重试)",
                        channel.id
                    )));
                }
            }
        }
        let entered_by = auth::caller(request).map(|who| format!("{} ({})", who.name, who.subject)).unwrap_or_default();
        let mut command = self.commands.begin(request).await?;
        let now = command.now();
        let registered = self.intake.register(&mut command.work(), &submission, now, &entered_by).await?;
        command.commit().await?;
        Ok(registered.to_proto())
    }

    /// Reads an upload to its end, refusing it as soon as it outgrows the largest file allowed.
    async fn receive_upload(&self, request: Request<Streaming<AttachmentChunk>>) -> Result<Attachment, Error> {
        let who = auth::caller(&request).cloned();
        let mut stream = request.into_inner();
        let limits = &self.intake.settings.attachments;
        let mut channel_id = String::new();
        let mut bytes = Vec::new();
        while let Some(chunk) =
            stream.message().await.map_err(|e| invalid("data", &format!("the upload broke off: {}", e.message()), "上传中断"))?
        {
            if channel_id.is_empty() {
                channel_id = chunk.channel.trim().to_string();
            }
            // The channel's own cap where it is tighter than the district's.
            let cap = self
                .intake
                .channel(&channel_id)
                .and_then(|c| c.limits.max_file_bytes)
                .map_or(limits.largest(), |m| m.min(limits.largest()));
            if (bytes.len() + chunk.data.len()) as u64 > cap {
                return Err(invalid(
                    "data",
                    &format!("the file is larger than the largest allowed ({cap} bytes)"),
                    &format!("文件不能超过{:.1}MB", cap as f64 / (1024.0 * 1024.0)),
                ));
            }
            bytes.extend_from_slice(&chunk.data);
        }
        let channel = match self.intake.channel(&channel_id) {
            _ if channel_id.is_empty() => return Err(invalid("channel", "the first message must name the channel", "渠道不能为空")),
            None => return Err(invalid("channel", &format!("{channel_id:?} is not a channel of this district"), "未知的受理渠道")),
            Some(c) if !c.enabled => return Err(invalid("channel", &format!("{channel_id:?} is disabled"), "渠道已停用")),
            Some(c) => c,
        };
        if let Some(who) = &who {
            policy::may_submit(who, channel).map_err(|r| Error::Refused(r.0))?;
        }
        let media = attachments::sniff(&bytes).map_err(|r| invalid("data", &r.reason, &r.reason_zh))?;
        attachments::check_size(media.kind(), bytes.len() as u64, limits).map_err(|r| invalid("data", &r.reason, &r.reason_zh))?;
        let stripped = attachments::strip_metadata(media, &bytes).map_err(|r| invalid("data", &r.reason, &r.reason_zh))?;
        let store = self.intake.attachments.clone();
        let (original, cleaned) =
            tokio::task::spawn_blocking(move || -> std::io::Result<_> { Ok((store.put(&bytes)?, store.put(&stripped)?)) })
                .await
                .map_err(|e| jiesu_kit::Error::Config(format!("storing an attachment: {e}")))?
                .map_err(|e| jiesu_kit::Error::Config(format!("storing an attachment: {e}")))?;
        let row = store::UploadRow {
            sha256: original.sha256.clone(),
            stripped_sha256: cleaned.sha256,
            media_type: media.mime().to_string(),
            kind: media.kind().as_str().to_string(),
            size: i64::try_from(original.size).unwrap_or(i64::MAX),
            channel: channel.id.clone(),
            uploaded_at: jiesu_kit::time::to_millis(self.commands.now()),
        };
        store::record_upload(&self.db, &row).await?;
        tracing::info!(channel = %channel.id, media_type = %row.media_type, size = original.size, "attachment uploaded");
        Ok(Attachment { kind: row.kind, url: String::new(), sha256: original.sha256, media_type: row.media_type, size: original.size })
    }

    /// What the public may see of one stored request: its steps from the progress consumer.
    async fn public_view(&self, row: store::SubmissionRow) -> Result<PublicStatus, Status> {
        let steps = store::steps(&self.db, &row.case_id).await?;
        let channel_name =
            self.intake.channel(&row.channel).map(|c| c.name.clone()).filter(|n| !n.is_empty()).unwrap_or(row.channel.clone());
        let mut public = vec![PublicStep {
            at: Some(millis_to_proto(row.received_at)),
            step: "received".into(),
            text: format!("您的诉求已经{channel_name}受理，受理编号{}", row.case_no),
        }];
        public.extend(steps.iter().map(|s| PublicStep { at: Some(millis_to_proto(s.at)), step: s.step.clone(), text: s.text.clone() }));
        let status = public.last().map(|s| s.step.clone()).unwrap_or_default();
        Ok(PublicStatus {
            case_no: row.case_no,
            received_at: Some(millis_to_proto(row.received_at)),
            channel_name,
            title: row.title,
            status_zh: public_status(&status).to_string(),
            closed: is_closed(&status),
            status,
            unit_name: steps.iter().rev().find(|s| !s.unit_name.is_empty()).map(|s| s.unit_name.clone()).unwrap_or_default(),
            updated_at: public.last().and_then(|s| s.at),
            steps: public,
            category_hint: row.category_hint,
            latitude: row.latitude,
            longitude: row.longitude,
            channel_ref: row.channel_ref,
            channel: row.channel,
        })
    }

    async fn channel_requests(&self, request: &Request<ListChannelRequestsRequest>) -> Result<ListChannelRequestsResponse, Status> {
        let req = request.get_ref();
        if req.channels.is_empty() {
            return Err(Status::invalid_argument("channels: name at least one channel"));
        }
        for id in &req.channels {
            let channel = self
                .intake
                .channel(id)
                .ok_or_else(|| Status::invalid_argument(format!("channels: {id:?} is not a channel of this district")))?;
            if let Some(who) = auth::caller(request) {
                policy::may_list_channel(who, channel).map_err(|r| Status::permission_denied(r.0))?;
            }
        }
        let limit = match req.limit {
            0 => 1000,
            n if n > 1000 => return Err(Status::invalid_argument(format!("limit {n} is over the maximum of 1000"))),
            n => n,
        };
        if req.case_nos.len() + req.channel_refs.len() > 1000
            || req.case_nos.iter().chain(&req.channel_refs).any(|v| v.chars().count() > 128)
        {
            return Err(Status::invalid_argument("case_nos and channel_refs: at most 1000 values of at most 128 characters"));
        }
        let millis =
            |t: &Option<jiesu_proto::Timestamp>| t.as_ref().map(|t| t.seconds.saturating_mul(1000) + i64::from(t.nanos) / 1_000_000);
        let query = store::ChannelQuery {
            channels: &req.channels,
            case_nos: &req.case_nos,
            channel_refs: &req.channel_refs,
            received_from: millis(&req.received_from),
            received_until: millis(&req.received_until),
            limit,
        };
        let mut requests = Vec::new();
        for row in store::requests_of_channels(&self.db, &query).await? {
            requests.push(self.public_view(row).await?);
        }
        Ok(ListChannelRequestsResponse { requests })
    }

    async fn public_status(&self, req: &PublicStatusRequest) -> Result<PublicStatus, Status> {
        let case_no = req.case_no.trim();
        let code = normalise_query_code(&req.query_code);
        if case_no.is_empty() || case_no.chars().count() > 32 || case_no.chars().any(char::is_control) {
            return Err(Status::invalid_argument("case_no is required: the case number the citizen was given (受理编号)"));
        }
        if code.chars().count() != QUERY_CODE_LEN {
            return Err(Status::invalid_argument(format!(
                "query_code must be the {QUERY_CODE_LEN} characters the citizen was given (查询码)"
            )));
        }
        let now = jiesu_kit::time::to_millis(self.commands.now());
        let since = now - 3_600_000;
        let limit = i64::from(self.intake.settings.status_misses_per_hour);
        if store::misses(&self.db, case_no, since).await? >= limit {
            return Err(Status::resource_exhausted(
                "too many wrong query codes for this case number: try again in an hour (查询过于频繁，请一小时后再试)",
            ));
        }
        let row = store::get(&self.db, &CaseKey::No(case_no.to_string())).await?;
        let matches = match &row {
            Some(row) => {
                let stored = self.intake.open(&row.query_code, &row.case_id)?;
                !stored.is_empty() && constant_time_eq(stored.as_bytes(), code.as_bytes())
            }
            None => false,
        };
        let Some(row) = row.filter(|_| matches) else {
            // The same answer whether the number exists or not: a miss tells nothing.
            store::record_miss(&self.db, case_no, now, since).await?;
            tracing::info!("status lookup with a wrong case number or query code");
            return Err(Status::not_found("no case with this case number and query code (受理编号或查询码不正确)"));
        };
        self.public_view(row).await
    }
}

/// Whether a case is over for the citizen (Open311's `closed`).
fn is_closed(step: &str) -> bool {
    matches!(step, "resolved" | "revisited" | "closed" | "merged")
}

/// Compares secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn invalid(field: &str, reason: &str, reason_zh: &str) -> Error {
    Error::Invalid(vec![FieldViolation { field: field.into(), reason: reason.into(), reason_zh: reason_zh.into() }])
}

/// How much of a file one message of GetAttachment carries.
const CHUNK: usize = 64 * 1024;

#[tonic::async_trait]
impl IntakeService for IntakeApi {
    type GetAttachmentStream = Pin<Box<dyn Stream<Item = Result<AttachmentChunk, Status>> + Send>>;

    async fn upload_attachment(&self, request: Request<Streaming<AttachmentChunk>>) -> Result<Response<Attachment>, Status> {
        Ok(Response::new(self.receive_upload(request).await?))
    }

    async fn get_attachment(&self, request: Request<GetAttachmentRequest>) -> Result<Response<Self::GetAttachmentStream>, Status> {
        let req = request.get_ref();
        let key = CaseKey::required(req.case.as_ref())?;
        let row = store::get(&self.db, &key).await?.ok_or_else(|| not_found(&key))?;
        let who = auth::caller(&request);
        if let Some(who) = who {
            let owner = store::owner(&self.db, &row.case_id).await?;
            policy::may_read_submission(who, owner.as_deref()).map_err(|r| Status::permission_denied(r.0))?;
        }
        if !row.attachments().iter().any(|a| a.sha256 == req.sha256) {
            return Err(Status::not_found(format!("case {} has no attachment {:?}", row.case_no, req.sha256)));
        }
        let upload =
            store::upload(&self.db, &req.sha256).await?.ok_or_else(|| Status::not_found("the attachment's upload is not recorded"))?;
        // Anonymous callers exist only where the district allows them, i.e. in tests.
        let original = who.is_none_or(policy::sees_original_attachments);
        let hash = if original { upload.sha256.clone() } else { upload.stripped_sha256.clone() };
        let store = self.intake.attachments.clone();
        let bytes = tokio::task::spawn_blocking(move || store.get(&hash))
            .await
            .map_err(|e| Status::internal(format!("reading an attachment: {e}")))?
            .map_err(|e| {
                tracing::error!(error = %e, "an attachment cannot be read");
                Status::data_loss("the stored attachment is damaged or unreadable")
            })?
            .ok_or_else(|| Status::data_loss("the stored attachment is missing"))?;
        let media_type = upload.media_type;
        let chunks: Vec<Result<AttachmentChunk, Status>> = if bytes.is_empty() {
            vec![Ok(AttachmentChunk { media_type, ..Default::default() })]
        } else {
            bytes
                .chunks(CHUNK)
                .enumerate()
                .map(|(i, c)| {
                    Ok(AttachmentChunk {
                        data: c.to_vec(),
                        media_type: if i == 0 { media_type.clone() } else { String::new() },
                        ..Default::default()
                    })
                })
                .collect()
        };
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    async fn get_public_status(&self, request: Request<PublicStatusRequest>) -> Result<Response<PublicStatus>, Status> {
        Ok(Response::new(self.public_status(request.get_ref()).await?))
    }

    async fn list_channel_requests(
        &self,
        request: Request<ListChannelRequestsRequest>,
    ) -> Result<Response<ListChannelRequestsResponse>, Status> {
        Ok(Response::new(self.channel_requests(&request).await?))
    }

    async fn count_received(&self, request: Request<CountReceivedRequest>) -> Result<Response<CountReceivedResponse>, Status> {
        if let Some(who) = auth::caller(&request) {
            policy::may_count_received(who)?;
        }
        let req = request.get_ref();
        let instant = |field: &str, t: Option<&prost_types::Timestamp>| match t.map(jiesu_kit::time::from_proto) {
            Some(Some(t)) => Ok(Some(t)),
            Some(None) => Err(Status::invalid_argument(format!("{field} is not a valid instant"))),
            None => Ok(None),
        };
        let from =
            instant("from", req.from.as_ref())?.ok_or_else(|| Status::invalid_argument("from is required: the start of the period"))?;
        let to = instant("to", req.to.as_ref())?.unwrap_or_else(|| self.commands.now());
        if to <= from {
            return Err(Status::invalid_argument(format!("to ({to}) must be after from ({from})")));
        }
        let rows = store::count_received(&self.db, from.timestamp_millis(), to.timestamp_millis()).await?;
        let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        let channels = rows
            .into_iter()
            .map(|(channel, received, proactive)| ChannelCount { channel, received: n(received), proactive: n(proactive) })
            .collect();
        Ok(Response::new(CountReceivedResponse { channels }))
    }

    async fn submit(&self, request: Request<SubmitRequest>) -> Result<Response<SubmitResponse>, Status> {
        match self.submit_once(&request).await {
            Ok(r) => Ok(Response::new(r)),
            // The loser of two concurrent first submissions asks again: the winner's case.
            Err(e) if e.is_duplicate_key() => Ok(Response::new(self.submit_once(&request).await?)),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_submission(&self, request: Request<CaseRef>) -> Result<Response<SubmissionView>, Status> {
        let key = CaseKey::required(Some(request.get_ref()))?;
        let row = store::get(&self.db, &key).await?.ok_or_else(|| not_found(&key))?;
        if let Some(who) = auth::caller(&request) {
            let owner = store::owner(&self.db, &row.case_id).await?;
            policy::may_read_submission(who, owner.as_deref())?;
        }
        let masked_phone = mask_phone(&self.intake.contact(&row)?.1);
        let attachments = row.attachments();
        let channel_name = self.intake.channel(&row.channel).map(|c| c.name.clone()).unwrap_or_else(|| row.channel.clone());
        Ok(Response::new(SubmissionView {
            case_id: row.case_id,
            case_no: row.case_no.clone(),
            channel: row.channel,
            channel_ref: row.channel_ref,
            title: row.title,
            description: row.description,
            location: Some(Location {
                street: row.street,
                community: row.community,
                grid: row.grid,
                address: row.address,
                latitude: row.latitude,
                longitude: row.longitude,
            }),
            masked_phone,
            attachments,
            proactive: row.proactive,
            entered_by: row.entered_by,
            session: row.session,
            received_at: Some(millis_to_proto(row.received_at)),
            timeline: vec![TimelineEntry {
                at: Some(millis_to_proto(row.received_at)),
                service: "intake".into(),
                event: "received".into(),
                detail: format!("经{channel_name}受理，编号{}", row.case_no),
                actor: String::new(),
            }],
        }))
    }

    /// The citizen's contact, for those who must reach them (see [`policy::may_read_contact`]).
    /// Every request is recorded, allowed or refused; the caller says why in the metadata
    /// `jiesu-purpose`.
    async fn get_contact(&self, request: Request<CaseRef>) -> Result<Response<Contact>, Status> {
        let key = CaseKey::required(Some(request.get_ref()))?;
        let row = store::get(&self.db, &key).await?.ok_or_else(|| not_found(&key))?;
        let who = auth::caller(&request);
        let verdict = match who {
            Some(who) => {
                let owner = store::owner(&self.db, &row.case_id).await?;
                policy::may_read_contact(who, owner.as_deref())
            }
            // Only where `[auth] required = false` lets an anonymous caller in at all.
            None => Ok(()),
        };
        // Said in Chinese as often as not: the header's bytes as UTF-8, not only visible ASCII.
        let purpose: String = request
            .metadata()
            .get(PURPOSE)
            .map(|v| String::from_utf8_lossy(v.as_encoded_bytes()).into_owned())
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        let read = store::ContactReadRow {
            read_id: uuid::Uuid::now_v7().to_string(),
            at: jiesu_kit::time::to_millis(self.commands.now()),
            case_id: row.case_id.clone(),
            reader: who.map_or_else(|| "anonymous".to_string(), |w| w.subject.clone()),
            reader_name: who.map(|w| w.name.clone()).unwrap_or_default(),
            roles: who.map(|w| w.roles.iter().map(|r| r.key()).collect::<Vec<_>>().join(",")).unwrap_or_default(),
            unit_id: who.and_then(|w| w.unit.clone()).unwrap_or_default(),
            purpose: purpose.replace(|c: char| c.is_control(), " "),
            allowed: verdict.is_ok(),
            refusal: verdict.as_ref().err().map(|r| r.0.clone()).unwrap_or_default(),
        };
        store::record_read(&self.db, &read).await?;
        if let Err(refusal) = verdict {
            tracing::warn!(case_id = %row.case_id, reader = %read.reader, "contact read refused");
            return Err(Status::permission_denied(refusal.0));
        }
        let (name, phone) = self.intake.contact(&row)?;
        Ok(Response::new(Contact { case_id: row.case_id, name, phone, anonymous: row.anonymous }))
    }

    async fn list_contact_reads(&self, request: Request<ListContactReadsRequest>) -> Result<Response<ListContactReadsResponse>, Status> {
        match auth::caller(&request) {
            Some(who) => policy::may_audit(who).map_err(|r| Status::permission_denied(r.0))?,
            None => return Err(Status::unauthenticated("the record of contact reads is for verified auditors: send a token")),
        }
        let req = request.get_ref();
        let limit = match req.limit {
            0 => 100,
            n if n > 1000 => return Err(Status::invalid_argument(format!("limit {n} is over the maximum of 1000"))),
            n => n,
        };
        let case_id = match req.case.as_ref().filter(|c| c.r#ref.is_some()) {
            None => None,
            Some(r) => {
                let key = CaseKey::required(Some(r))?;
                Some(store::get(&self.db, &key).await?.ok_or_else(|| not_found(&key))?.case_id)
            }
        };
        let rows = store::contact_reads(&self.db, case_id.as_deref(), limit).await?;
        let reads = rows
            .into_iter()
            .map(|r| ContactRead {
                at: Some(millis_to_proto(r.at)),
                case_id: r.case_id,
                reader: r.reader,
                reader_name: r.reader_name,
                roles: r.roles.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
                unit_id: r.unit_id,
                purpose: r.purpose,
                allowed: r.allowed,
                refusal: r.refusal,
            })
            .collect();
        Ok(Response::new(ListContactReadsResponse { reads }))
    }
}

/// The metadata a caller of `GetContact` says why in (调阅事由), recorded with the read.
pub const PURPOSE: &str = "jiesu-purpose";

fn not_found(key: &CaseKey) -> Status {
    Status::not_found(format!("no case with {}", key.describe()))
}
