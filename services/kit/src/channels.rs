//! The district's channel registry (渠道登记, `[[intake.channels]]`): what intake accepts, what
//! each producer may publish on NATS, and which mailboxes the web front serves — one definition
//! for all of them.

use serde::Deserialize;

/// A configured intake channel (受理渠道), e.g. the 12345 hotline: one entry of the district's
/// channel registry. Adding a channel is an entry here and a producer; nothing else changes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// Subject token and API name: `hotline`, `secretary_mailbox`, …
    pub id: String,
    /// What clerks and citizens see: "12345热线", "书记信箱".
    #[serde(default)]
    pub name: String,
    /// What sort of channel it is; decides, e.g., whether its requests are proactive.
    #[serde(default)]
    pub kind: ChannelKind,
    /// Whose channel it is (信箱归属): the unit or leader id of the organisation tree a mailbox
    /// belongs to (`ld-secretary` for 书记信箱); empty for the centre's own channels.
    #[serde(default)]
    pub owner: String,
    /// The verified identity (token subject) of the channel's producer: a `channel_integrator`
    /// may submit only to the channels naming it. Defaults to the channel's id.
    #[serde(default)]
    pub producer: String,
    /// Whether a callback phone number is required (a patrol report by a grid officer needs none).
    #[serde(default = "yes")]
    pub requires_contact: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The channel's own limits, tighter than the district's where set.
    #[serde(default)]
    pub limits: ChannelLimits,
}

/// A channel's own limits (渠道限额): a channel of short messages may carry fewer files than
/// the mailboxes, a partner's platform may be held to its agreed rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelLimits {
    /// Files one submission may carry (the district's `[intake.limits] max_attachments` when
    /// tighter).
    pub max_attachments: Option<usize>,
    /// Bytes one uploaded file may have (the district's `[intake.attachments]` when tighter).
    pub max_file_bytes: Option<u64>,
    /// Submissions a minute through gRPC; more are refused with RESOURCE_EXHAUSTED and a time to
    /// retry, so a runaway producer slows down alone. (NATS submissions queue in the stream.)
    pub submissions_per_minute: Option<u32>,
}

impl Channel {
    /// The identity that produces for this channel.
    pub fn producer(&self) -> &str {
        if self.producer.is_empty() { &self.id } else { &self.producer }
    }

    /// Whether its requests are problems found before anyone complained (未诉先办).
    pub fn proactive(&self) -> bool {
        self.kind == ChannelKind::Patrol
    }
}

/// The kinds of channel a district runs (渠道类型).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// 12345 热线: agents enter calls.
    Hotline,
    /// 书记信箱, 主任信箱, 局长信箱: a web form behind a QR code, per owner.
    Mailbox,
    /// 网格员巡查: grid officers' reports, proactive.
    Patrol,
    /// 心安夜话 and other face-to-face sessions: entries made on the spot.
    WalkIn,
    /// Open311 GeoReport v2.
    Open311,
    /// 留言板: web, WeChat and leaders' message boards.
    MessageBoard,
    /// Anything else a district adds.
    #[default]
    Other,
}

impl ChannelKind {
    pub fn key(self) -> &'static str {
        match self {
            ChannelKind::Hotline => "hotline",
            ChannelKind::Mailbox => "mailbox",
            ChannelKind::Patrol => "patrol",
            ChannelKind::WalkIn => "walk_in",
            ChannelKind::Open311 => "open311",
            ChannelKind::MessageBoard => "message_board",
            ChannelKind::Other => "other",
        }
    }
}

fn yes() -> bool {
    true
}

/// Why a channel list cannot be used, if it cannot: every id must be a subject token
/// (letters, digits, `_`, `-`), unique, and not one of the answer subjects' words.
pub fn check_channels(channels: &[Channel]) -> Result<(), String> {
    if channels.is_empty() {
        return Err("[intake] lists no channels: add at least one [[intake.channels]]".into());
    }
    for (i, c) in channels.iter().enumerate() {
        let token = !c.id.is_empty() && c.id.len() <= 64 && c.id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
        if !token {
            return Err(format!("[[intake.channels]] id {:?} must be 1-64 letters, digits, _ or -", c.id));
        }
        if matches!(c.id.as_str(), "accepted" | "rejected") {
            return Err(format!("[[intake.channels]] id {:?} is reserved: intake answers on jiesu.intake.{}.<channel>", c.id, c.id));
        }
        if channels[..i].iter().any(|other| other.id == c.id) {
            return Err(format!("[[intake.channels]] id {:?} is listed twice", c.id));
        }
    }
    Ok(())
}

const MIB: u64 = 1 << 20;

/// How many photos and videos a request may carry, and how large each may be (附件限制).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AttachmentLimits {
    /// Photos per request (照片张数).
    pub max_photos: usize,
    /// Videos per request (视频个数).
    pub max_videos: usize,
    /// Bytes per photo, after its metadata is stripped.
    pub max_photo_bytes: u64,
    /// Bytes per video.
    pub max_video_bytes: u64,
    /// Bytes per PDF document.
    pub max_document_bytes: u64,
}

impl Default for AttachmentLimits {
    fn default() -> Self {
        Self { max_photos: 9, max_videos: 1, max_photo_bytes: 10 * MIB, max_video_bytes: 50 * MIB, max_document_bytes: 10 * MIB }
    }
}

impl AttachmentLimits {
    /// The largest file of any kind: where an upload can be cut off before it is sniffed.
    pub fn largest(&self) -> u64 {
        self.max_photo_bytes.max(self.max_video_bytes).max(self.max_document_bytes)
    }
}
