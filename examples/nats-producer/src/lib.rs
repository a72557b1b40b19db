//! A channel producer (渠道接入方) as an integrator writes one, from `docs/channels.md` alone:
//! connect as the channel's own NATS user, publish a submission as JSON on
//! `<root>.intake.<channel>` with a `Nats-Msg-Id` that makes re-sends harmless, and read intake's
//! answer from the channel's durable consumer `answers-<channel>`, matched by the
//! `Jiesu-Channel-Ref` header. Nothing here comes from Jiesu's own crates.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use futures::StreamExt;
use sha2::{Digest, Sha256};

/// Intake's answer to one submission.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Registered (or registered before, `duplicate`): the case number and the citizen's query code.
    Accepted { case_no: String, query_code: String, duplicate: bool },
    /// Refused: every reason, (field, English, Chinese).
    Rejected(Vec<(String, String, String)>),
}

/// What can go wrong on the producer's side.
#[derive(Debug)]
pub enum ProducerError {
    Nats(String),
    /// No answer within the time asked: intake is down or slow; the submission waits in the
    /// stream and its answer will come — ask again later, with the same `channel_ref`.
    NoAnswerYet,
    BadAnswer(String),
}

impl std::fmt::Display for ProducerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProducerError::Nats(e) => write!(f, "NATS: {e}"),
            ProducerError::NoAnswerYet => f.write_str("no answer yet: the submission is kept; read the answer later"),
            ProducerError::BadAnswer(e) => write!(f, "an answer that is not JSON: {e}"),
        }
    }
}

impl std::error::Error for ProducerError {}

fn nats(e: impl std::fmt::Display) -> ProducerError {
    ProducerError::Nats(e.to_string())
}

/// The `Nats-Msg-Id` the documentation asks for: channel, reference and a hash of the body, so a
/// re-send of the same bytes is dropped by JetStream and a corrected body is not.
pub fn message_id(channel: &str, channel_ref: &str, body: &[u8]) -> String {
    let hash = Sha256::digest(body);
    let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{channel}:{channel_ref}:{hex}")
}

/// Connects as the channel's user `channel-<channel>` with its nkey seed (the `.nk` file the
/// district's operator handed over).
pub async fn connect(url: &str, seed: &str, channel: &str) -> Result<async_nats::Client, ProducerError> {
    async_nats::ConnectOptions::with_nkey(seed.trim().to_string())
        .custom_inbox_prefix(format!("_INBOX.channel-{channel}"))
        .connect(url)
        .await
        .map_err(nats)
}

/// Publishes `submission` (a JSON object with at least `channel_ref` and `description`) and
/// waits up to `wait` for intake's answer.
pub async fn submit(
    client: &async_nats::Client,
    root: &str,
    channel: &str,
    submission: &serde_json::Value,
    wait: Duration,
) -> Result<Answer, ProducerError> {
    let js = jetstream::new(client.clone());
    let channel_ref = submission["channel_ref"].as_str().unwrap_or_default().to_string();
    let body = serde_json::to_vec(submission).map_err(|e| ProducerError::BadAnswer(e.to_string()))?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "application/json");
    headers.insert("Nats-Msg-Id", message_id(channel, &channel_ref, &body).as_str());
    js.publish_with_headers(format!("{root}.intake.{channel}"), headers, body.into()).await.map_err(nats)?.await.map_err(nats)?;
    // The answers wait in the stream for us: read them from our durable consumer, so nothing
    // is missed while we were away, and acknowledge each one we have dealt with.
    let stream = format!("{}_INTAKE", root.to_uppercase().replace(['.', '-'], "_"));
    let consumer: PullConsumer = js.get_consumer_from_stream(format!("answers-{channel}"), stream).await.map_err(nats)?;
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        let mut batch = consumer.fetch().max_messages(10).expires(Duration::from_secs(1)).messages().await.map_err(nats)?;
        while let Some(msg) = batch.next().await {
            let msg = msg.map_err(nats)?;
            let theirs = msg.headers.as_ref().and_then(|h| h.get("Jiesu-Channel-Ref")).map(|v| v.as_str().to_string());
            msg.ack().await.map_err(nats)?;
            if theirs.as_deref() != Some(channel_ref.as_str()) {
                continue; // an answer to another submission of ours
            }
            let answer: serde_json::Value = serde_json::from_slice(&msg.payload).map_err(|e| ProducerError::BadAnswer(e.to_string()))?;
            let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            return Ok(if msg.subject.as_str().starts_with(&format!("{root}.intake.accepted.")) {
                Answer::Accepted {
                    case_no: text(&answer["case_no"]),
                    query_code: text(&answer["query_code"]),
                    duplicate: answer["duplicate"] == true,
                }
            } else {
                let reasons = answer["violations"].as_array().cloned().unwrap_or_default();
                Answer::Rejected(reasons.iter().map(|v| (text(&v["field"]), text(&v["reason"]), text(&v["reason_zh"]))).collect())
            });
        }
    }
    Err(ProducerError::NoAnswerYet)
}
