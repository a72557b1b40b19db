//! Intake's rules (受理规则), without I/O: what makes a submission acceptable, how a phone number
//! is normalised and masked, how the public case number (受理编号) is formed.

use chrono::{DateTime, NaiveDate, Utc};
pub use jiesu_kit::channels::{Channel, ChannelKind, check_channels};
use jiesu_kit::text::has_control;
use jiesu_proto::v1::{FieldViolation, Satisfaction, Submission};
use serde::Deserialize;

use crate::consume::ProgressEvents;

/// Limits a submission must respect.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Limits {
    pub max_title_chars: usize,
    pub max_description_chars: usize,
    pub max_name_chars: usize,
    pub max_channel_ref_chars: usize,
    pub max_attachments: usize,
    /// How far back a channel may date a submission (`submitted_at`), e.g. a patrol report
    /// entered after a day offline.
    pub max_backdate_days: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_title_chars: 200,
            max_description_chars: 5_000,
            max_name_chars: 50,
            max_channel_ref_chars: 128,
            max_attachments: 9,
            max_backdate_days: 30,
        }
    }
}

/// How far ahead of intake's clock a producer's clock may run before its `submitted_at` is
/// refused as being in the future.
const MAX_CLOCK_AHEAD_MINUTES: i64 = 5;

/// Every reason a submission cannot be accepted, or the submission cleaned up (trimmed fields,
/// normalised phone number).
pub fn validate(s: &Submission, channels: &[Channel], limits: &Limits, now: DateTime<Utc>) -> Result<Submission, Vec<FieldViolation>> {
    let mut v = Violations::default();
    // A web form's textarea sends CRLF line breaks: they are line breaks, not control characters.
    let mut s = s.clone();
    s.description = s.description.replace("\r\n", "\n");
    if let Some(loc) = s.location.as_mut() {
        loc.address = loc.address.replace("\r\n", "\n");
    }
    let s = &s;
    control_characters(s, &mut v);
    let mut clean = s.clone();
    clean.channel = s.channel.trim().to_string();
    clean.channel_ref = s.channel_ref.trim().to_string();
    clean.title = s.title.trim().to_string();
    clean.description = s.description.trim().to_string();

    clean.session = s.session.trim().to_string();
    let channel = channels.iter().find(|c| c.id == clean.channel);
    match channel {
        _ if clean.channel.is_empty() => v.add("channel", "is required", "渠道不能为空"),
        None => v.add(
            "channel",
            &format!("{:?} is not a channel of this district (known: {})", clean.channel, known(channels)),
            &format!("未知的受理渠道“{}”", clean.channel),
        ),
        Some(c) if !c.enabled => v.add("channel", &format!("{:?} is disabled", c.id), &format!("渠道“{}”已停用", c.id)),
        Some(_) => {}
    }
    if clean.channel_ref.is_empty() {
        v.add("channel_ref", "is required (the channel's own id, used to recognise re-sends)", "渠道流水号不能为空");
    } else if chars(&clean.channel_ref) > limits.max_channel_ref_chars {
        v.add(
            "channel_ref",
            &format!("is longer than {} characters", limits.max_channel_ref_chars),
            &format!("渠道流水号不能超过{}个字符", limits.max_channel_ref_chars),
        );
    }
    if clean.description.is_empty() {
        v.add("description", "is required: what is the problem?", "诉求内容不能为空");
    } else if chars(&clean.description) > limits.max_description_chars {
        v.add(
            "description",
            &format!("is longer than {} characters", limits.max_description_chars),
            &format!("诉求内容不能超过{}字", limits.max_description_chars),
        );
    }
    if chars(&clean.title) > limits.max_title_chars {
        v.add(
            "title",
            &format!("is longer than {} characters", limits.max_title_chars),
            &format!("标题不能超过{}字", limits.max_title_chars),
        );
    }

    let citizen = clean.citizen.get_or_insert_with(Default::default);
    citizen.name = citizen.name.trim().to_string();
    if chars(&citizen.name) > limits.max_name_chars {
        v.add(
            "citizen.name",
            &format!("is longer than {} characters", limits.max_name_chars),
            &format!("姓名不能超过{}个字符", limits.max_name_chars),
        );
    }
    if citizen.phone.trim().is_empty() {
        if channel.is_some_and(|c| c.requires_contact) {
            v.add("citizen.phone", "is required on this channel, to call the citizen back", "请填写联系电话，以便回复和回访");
        }
    } else {
        match normalise_phone(&citizen.phone) {
            Some(p) => citizen.phone = p,
            None => v.add(
                "citizen.phone",
                "is not a mainland China mobile (1xxxxxxxxxx) or landline (0xx-xxxxxxxx) number, with or without +86; other countries' numbers are not accepted",
                "联系电话格式不正确（仅支持中国大陆手机号或带区号的固定电话，可加+86）",
            ),
        }
    }

    match channel.map(|c| c.kind) {
        // A grid officer reports from their grid: the grid is what counts their patrol.
        Some(ChannelKind::Patrol) if clean.location.as_ref().is_none_or(|l| l.grid.trim().is_empty()) => {
            v.add("location.grid", "is required on a patrol channel: the grid code of the officer's grid", "网格员巡查须填写网格编码")
        }
        Some(ChannelKind::WalkIn) if clean.session.is_empty() => {
            v.add("session", "is required on a walk-in channel: the session the entry was made at", "现场接访须填写所属接访活动（场次）")
        }
        _ => {}
    }
    if chars(&clean.session) > 128 {
        v.add("session", "is longer than 128 characters", "接访场次编号不能超过128个字符");
    }
    if let Some(loc) = &clean.location {
        if !(-90.0..=90.0).contains(&loc.latitude) || !(-180.0..=180.0).contains(&loc.longitude) {
            v.add("location", "latitude/longitude out of range", "经纬度超出范围");
        }
        if chars(&loc.address) > 300 {
            v.add("location.address", "is longer than 300 characters", "地址不能超过300字");
        }
    }
    if let Some(t) = &clean.submitted_at {
        let oldest = now - chrono::Duration::days(limits.max_backdate_days);
        match jiesu_kit::time::from_proto(t) {
            Some(at) if at > now + chrono::Duration::minutes(MAX_CLOCK_AHEAD_MINUTES) => {
                v.add("submitted_at", "is in the future; leave it out to mean now", "受理时间不能晚于当前时间")
            }
            Some(at) if at >= oldest => {}
            _ => v.add(
                "submitted_at",
                &format!("is more than {} days before now; leave it out to mean now", limits.max_backdate_days),
                &format!("受理时间不能早于{}天前", limits.max_backdate_days),
            ),
        }
    }
    let max_attachments = channel.and_then(|c| c.limits.max_attachments).map_or(limits.max_attachments, |m| m.min(limits.max_attachments));
    if clean.attachments.len() > max_attachments {
        v.add("attachments", &format!("at most {max_attachments} attachments"), &format!("附件不能超过{max_attachments}个"));
    }
    for (i, a) in clean.attachments.iter().enumerate() {
        // An upload is named by its content's hash; what it is intake sniffed itself.
        if !a.sha256.is_empty() {
            if !is_sha256(&a.sha256) {
                v.add(&format!("attachments[{i}].sha256"), "must be 64 lowercase hex digits, as UploadAttachment answered", "附件编号无效");
            }
            if !a.url.is_empty() {
                v.add(
                    &format!("attachments[{i}].url"),
                    "give either a url or the sha256 of an upload, not both",
                    "附件地址与附件编号只能填写一个",
                );
            }
            continue;
        }
        if !matches!(a.kind.as_str(), "photo" | "video" | "document") {
            v.add(&format!("attachments[{i}].kind"), "must be photo, video or document", "附件类型应为照片、视频或文档");
        }
        if !(a.url.starts_with("https://") || a.url.starts_with("http://")) || a.url.len() > 2_000 {
            v.add(&format!("attachments[{i}].url"), "must be an http(s) URL of at most 2000 characters", "附件地址无效");
        }
    }
    if v.0.is_empty() { Ok(clean) } else { Err(v.0) }
}

/// Control characters (CR, LF, ESC, NUL…) are refused in every text field: they forge log lines
/// and terminal output. Only the free texts (description, address) may hold line breaks and tabs.
fn control_characters(s: &Submission, v: &mut Violations) {
    let citizen = s.citizen.clone().unwrap_or_default();
    let location = s.location.clone().unwrap_or_default();
    let mut fields: Vec<(String, &str, bool)> = vec![
        ("channel".into(), &s.channel, false),
        ("channel_ref".into(), &s.channel_ref, false),
        ("title".into(), &s.title, false),
        ("description".into(), &s.description, true),
        ("category_hint".into(), &s.category_hint, false),
        ("session".into(), &s.session, false),
        ("citizen.name".into(), &citizen.name, false),
        ("citizen.phone".into(), &citizen.phone, false),
        ("location.street".into(), &location.street, false),
        ("location.community".into(), &location.community, false),
        ("location.grid".into(), &location.grid, false),
        ("location.address".into(), &location.address, true),
    ];
    for (i, a) in s.attachments.iter().enumerate() {
        fields.push((format!("attachments[{i}].kind"), &a.kind, false));
        fields.push((format!("attachments[{i}].url"), &a.url, false));
    }
    for (field, text, multiline) in fields {
        if has_control(text, multiline) {
            v.add(&field, "contains control characters", "含有不可见的控制字符");
        }
    }
}

#[derive(Default)]
struct Violations(Vec<FieldViolation>);

impl Violations {
    fn add(&mut self, field: &str, reason: &str, reason_zh: &str) {
        self.0.push(FieldViolation { field: field.into(), reason: reason.into(), reason_zh: reason_zh.into() });
    }
}

/// One step of a case as the citizen is told it on the status page (办理进度).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicStep {
    pub step: &'static str,
    /// Chinese, what the citizen reads; never a handler's name or anyone's contact.
    pub text: String,
    /// The handling unit, where the step names one.
    pub unit_name: String,
}

/// What the citizen is told of a case event, if anything: who handles it and what they
/// answered, not the centre's internal steps (returns, extensions, supervision).
pub fn public_step(event: &ProgressEvents) -> Option<PublicStep> {
    let step = |step, text: String| Some(PublicStep { step, text, unit_name: String::new() });
    match event {
        ProgressEvents::CaseDispatched(e) => {
            let unit = if e.unit_name.is_empty() { e.unit_id.clone() } else { e.unit_name.clone() };
            let text = if e.round > 1 || e.how != "rule" && e.how != "manual" && !e.how.is_empty() {
                format!("已转由{unit}办理")
            } else {
                format!("已派至{unit}办理")
            };
            Some(PublicStep { step: "dispatched", text, unit_name: unit })
        }
        ProgressEvents::CaseAccepted(_) => step("accepted", "承办单位已签收，正在办理".into()),
        ProgressEvents::CaseContacted(_) => step("contacted", "承办单位已与您联系".into()),
        ProgressEvents::CaseReplied(e) => {
            let letter = e.letter.clone().unwrap_or_default();
            let parts: Vec<String> = [("核实情况", &letter.verification), ("处理结果", &letter.handling), ("下一步", &letter.next_steps)]
                .into_iter()
                .filter(|(_, t)| !t.trim().is_empty())
                .map(|(label, t)| format!("{label}：{}", t.trim()))
                .collect();
            step("replied", if parts.is_empty() { "承办单位已答复".into() } else { format!("承办单位答复。{}", parts.join("；")) })
        }
        ProgressEvents::CaseResolved(e) if e.reply.trim().is_empty() => step("resolved", "已办结".into()),
        ProgressEvents::CaseResolved(e) => step("resolved", format!("已办结：{}", e.reply.trim())),
        ProgressEvents::CaseClosed(e) if !e.explanation.trim().is_empty() => step("closed", format!("已结案：{}", e.explanation.trim())),
        ProgressEvents::CaseClosed(_) => step("closed", "已结案".into()),
        ProgressEvents::CaseReopened(_) => step("reopened", "根据您的回访意见，已重新交办".into()),
        ProgressEvents::CaseMerged(e) => step("merged", format!("与您此前提交的同一诉求（{}）合并办理", e.into_case_no)),
        ProgressEvents::RevisitRecorded(e) => {
            let verdict = match Satisfaction::try_from(e.satisfaction) {
                Ok(Satisfaction::Satisfied) => "满意",
                Ok(Satisfaction::BasicallySatisfied) => "基本满意",
                Ok(Satisfaction::Dissatisfied) => "不满意",
                _ => "已记录",
            };
            step("revisited", format!("已回访，您的评价：{verdict}"))
        }
    }
}

/// How a case stands for the citizen, from its latest step.
pub fn public_status(step: &str) -> &'static str {
    match step {
        "received" => "已受理，等待分派",
        "dispatched" | "accepted" | "contacted" | "replied" => "办理中",
        "resolved" => "已办结，等待回访",
        "revisited" => "已办结并回访",
        "reopened" => "重新办理中",
        "merged" => "已合并办理",
        "closed" => "已结案",
        _ => "办理中",
    }
}

/// Whether `s` names an upload: 64 lowercase hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The alphabet of query codes: no 0/O, 1/I/L, so a code read aloud or copied from a phone's
/// screen is typed right.
const QUERY_CODE_ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// How long a query code is: 31⁸ ≈ 8.5 × 10¹¹ codes, against a handful of tries per hour.
pub const QUERY_CODE_LEN: usize = 8;

/// A query code (查询码) from random bytes: never derived from the case number.
pub fn query_code(random: &[u8; QUERY_CODE_LEN]) -> String {
    random.iter().map(|b| QUERY_CODE_ALPHABET[usize::from(*b) % QUERY_CODE_ALPHABET.len()] as char).collect()
}

/// A query code as a citizen may type it: case, spaces and dashes do not matter.
pub fn normalise_query_code(typed: &str) -> String {
    typed.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_uppercase).collect()
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn known(channels: &[Channel]) -> String {
    channels.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ")
}

/// A mainland number in canonical form: mobile `13800138000`, landline `010-12345678`.
/// Accepts spaces, dashes, full-width digits and a `+86`/`86` prefix.
pub fn normalise_phone(raw: &str) -> Option<String> {
    let raw = raw.trim().replace('＋', "+");
    // An international prefix must be China's: `+1 415 555 0100` is not a mainland mobile.
    let (raw, international) = match raw.strip_prefix('+') {
        Some(rest) => (rest.trim_start().strip_prefix("86")?.to_string(), true),
        None => match raw.strip_prefix("0086") {
            Some(rest) => (rest.to_string(), true),
            None => (raw, false),
        },
    };
    match mainland(&raw) {
        // After +86 a landline drops its leading 0: +86 10 1234 5678 is 010-12345678.
        None if international => mainland(&format!("0{}", raw.trim_start())),
        found => found,
    }
}

fn mainland(raw: &str) -> Option<String> {
    let digits: String = raw
        .chars()
        .filter_map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
            '0'..='9' => Some(c),
            ' ' | '-' | '－' | '(' | ')' | '（' | '）' => None,
            _ => Some('x'),
        })
        .collect();
    if digits.contains('x') {
        return None;
    }
    let digits = if digits.len() == 13 && digits.starts_with("86") { digits[2..].to_string() } else { digits };
    let b = digits.as_bytes();
    if b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) {
        return Some(digits);
    }
    // Landline: 0 + area code (2–3 more digits) + 7–8 digit number. Beijing, Shanghai, Tianjin,
    // Chongqing and 02x areas have 3-digit codes (incl. the 0); the rest have 4.
    if b.first() == Some(&b'0') && (10..=12).contains(&b.len()) {
        let area_len = if matches!(b[1], b'1' | b'2') { 3 } else { 4 };
        let number_len = b.len() - area_len;
        if (7..=8).contains(&number_len) {
            return Some(format!("{}-{}", &digits[..area_len], &digits[area_len..]));
        }
    }
    None
}

/// `138****8000`: enough for a clerk to recognise, not enough to call.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 7 {
        return "*".repeat(chars.len());
    }
    let keep_tail = 4;
    let keep_head = 3;
    chars.iter().enumerate().map(|(i, c)| if i < keep_head || i >= chars.len() - keep_tail || *c == '-' { *c } else { '*' }).collect()
}

/// The public case number: prefix, the local date, a sequence of that day (at least five
/// digits: a city-wide platform takes tens of thousands a day). Readable over the phone.
pub fn case_no(prefix: &str, day: NaiveDate, seq: i64) -> String {
    format!("{prefix}{}{seq:05}", day.format("%Y%m%d"))
}

#[cfg(test)]
mod tests {
    use jiesu_proto::v1::{Attachment, Citizen, Location};

    use super::*;

    fn channel(id: &str, name: &str, kind: ChannelKind, requires_contact: bool, enabled: bool) -> Channel {
        Channel {
            id: id.into(),
            name: name.into(),
            kind,
            owner: String::new(),
            producer: String::new(),
            requires_contact,
            enabled,
            limits: Default::default(),
        }
    }

    fn channels() -> Vec<Channel> {
        vec![
            channel("hotline", "12345热线", ChannelKind::Hotline, true, true),
            channel("grid_patrol", "网格巡查", ChannelKind::Patrol, false, true),
            channel("old_board", "旧留言板", ChannelKind::MessageBoard, true, false),
            channel("night_talks", "心安夜话", ChannelKind::WalkIn, true, true),
        ]
    }

    fn now() -> DateTime<Utc> {
        "2026-11-23T02:00:00Z".parse().unwrap()
    }

    fn good() -> Submission {
        Submission {
            channel: "hotline".into(),
            channel_ref: "call-1".into(),
            citizen: Some(Citizen { name: "张三".into(), phone: "138 0013 8000".into(), anonymous: false }),
            title: "小区地锁".into(),
            description: "小区门口有人私装地锁".into(),
            ..Default::default()
        }
    }

    fn fields(s: &Submission) -> Vec<String> {
        validate(s, &channels(), &Limits::default(), now()).unwrap_err().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_good_submission_is_cleaned() {
        let ok = validate(&good(), &channels(), &Limits::default(), now()).unwrap();
        assert_eq!(ok.citizen.unwrap().phone, "13800138000");
    }

    #[test]
    fn every_rule_names_its_field() {
        type Rule = (fn(&mut Submission), &'static str);
        let cases: Vec<Rule> = vec![
            (|s| s.channel = String::new(), "channel"),
            (|s| s.channel = "fax".into(), "channel"),
            (|s| s.channel = "old_board".into(), "channel"),
            (|s| s.channel_ref = "  ".into(), "channel_ref"),
            (|s| s.channel_ref = "x".repeat(129), "channel_ref"),
            (|s| s.channel_ref = "a\u{7}b".into(), "channel_ref"),
            (|s| s.description = " ".into(), "description"),
            (|s| s.description = "字".repeat(5001), "description"),
            (|s| s.title = "字".repeat(201), "title"),
            (|s| s.citizen.as_mut().unwrap().name = "名".repeat(51), "citizen.name"),
            (|s| s.citizen.as_mut().unwrap().phone = String::new(), "citizen.phone"),
            (|s| s.citizen.as_mut().unwrap().phone = "12345".into(), "citizen.phone"),
            (|s| s.citizen.as_mut().unwrap().phone = "1380013800a".into(), "citizen.phone"),
            (|s| s.location = Some(Location { latitude: 91.0, ..Default::default() }), "location"),
            (|s| s.location = Some(Location { address: "址".repeat(301), ..Default::default() }), "location.address"),
            (
                |s| s.attachments = vec![Attachment { kind: "photo".into(), url: "https://x/y.jpg".into(), ..Default::default() }; 10],
                "attachments",
            ),
            (
                |s| s.attachments = vec![Attachment { kind: "gif".into(), url: "https://x".into(), ..Default::default() }],
                "attachments[0].kind",
            ),
            (
                |s| s.attachments = vec![Attachment { kind: "photo".into(), url: "ftp://x".into(), ..Default::default() }],
                "attachments[0].url",
            ),
            (|s| s.title = "标题\r\nINFO forged".into(), "title"),
            (|s| s.citizen.as_mut().unwrap().name = "张\u{1b}[31m三".into(), "citizen.name"),
            (|s| s.description = "第一行\u{0}".into(), "description"),
            (|s| s.location = Some(Location { street: "st\n".into(), ..Default::default() }), "location.street"),
            (|s| s.submitted_at = Some(prost_types::Timestamp { seconds: -62_135_596_800, nanos: 0 }), "submitted_at"),
            (|s| s.submitted_at = Some(jiesu_kit::time::to_proto(now() - chrono::Duration::days(31))), "submitted_at"),
            (|s| s.submitted_at = Some(jiesu_kit::time::to_proto(now() + chrono::Duration::minutes(6))), "submitted_at"),
        ];
        for (mutate, field) in cases {
            let mut s = good();
            mutate(&mut s);
            assert_eq!(fields(&s), vec![field.to_string()], "rule for {field}");
        }
    }

    #[test]
    fn all_reasons_are_reported_at_once_in_both_languages() {
        let s = Submission { channel: "fax".into(), ..Default::default() };
        let v = validate(&s, &channels(), &Limits::default(), now()).unwrap_err();
        let f: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(f, ["channel", "channel_ref", "description"]);
        assert!(v.iter().all(|v| !v.reason.is_empty() && !v.reason_zh.is_empty()));
    }

    #[test]
    fn channel_ids_are_subject_tokens_unique_and_not_reserved() {
        assert!(check_channels(&channels()).is_ok());
        let with = |id: &str| {
            let mut c = channels();
            c.push(Channel { id: id.into(), ..c[0].clone() });
            check_channels(&c)
        };
        for bad in ["", "we chat", "a.b", "x>", "accepted", "rejected", "hotline", &"x".repeat(65)] {
            assert!(with(bad).is_err(), "{bad:?}");
        }
        assert!(with("wechat-2_b").is_ok());
        assert!(check_channels(&[]).is_err());
    }

    #[test]
    fn crlf_line_breaks_of_a_web_form_are_line_breaks() {
        let mut s = good();
        s.description = "第一行\r\n第二行".into();
        assert_eq!(validate(&s, &channels(), &Limits::default(), now()).unwrap().description, "第一行\n第二行");
        s.description = "第一行\r第二行".into();
        assert!(validate(&s, &channels(), &Limits::default(), now()).is_err(), "a lone CR is not a line break");
    }

    #[test]
    fn free_texts_may_break_lines() {
        let mut s = good();
        s.description = "第一行\n第二行\t完".into();
        assert!(validate(&s, &channels(), &Limits::default(), now()).is_ok());
        assert!(has_control("a\u{202e}b", true));
    }

    #[test]
    fn patrol_reports_need_no_phone_but_their_grid() {
        let mut s = good();
        s.channel = "grid_patrol".into();
        s.citizen = None;
        assert_eq!(fields(&s), ["location.grid"]);
        s.location = Some(Location { grid: "gd-lizhi-03".into(), ..Default::default() });
        assert!(validate(&s, &channels(), &Limits::default(), now()).is_ok());
    }

    #[test]
    fn walk_in_entries_belong_to_a_session() {
        let mut s = good();
        s.channel = "night_talks".into();
        assert_eq!(fields(&s), ["session"]);
        s.session = "  xaty-20261201-dongmen ".into();
        assert_eq!(validate(&s, &channels(), &Limits::default(), now()).unwrap().session, "xaty-20261201-dongmen");
        s.session = "x".repeat(129);
        assert_eq!(fields(&s), ["session"]);
        s.session = "场次\u{1b}[2J".into();
        assert_eq!(fields(&s), ["session"]);
    }

    #[test]
    fn phones() {
        assert_eq!(normalise_phone("13800138000").as_deref(), Some("13800138000"));
        assert_eq!(normalise_phone("+86 138-0013-8000").as_deref(), Some("13800138000"));
        assert_eq!(normalise_phone("１３８００１３８０００").as_deref(), Some("13800138000"));
        assert_eq!(normalise_phone("010-12345678").as_deref(), Some("010-12345678"));
        assert_eq!(normalise_phone("0755 8123 4567").as_deref(), Some("0755-81234567"));
        assert_eq!(normalise_phone("0534-2345678").as_deref(), Some("0534-2345678"));
        assert_eq!(normalise_phone("12345"), None);
        assert_eq!(normalise_phone("12800138000"), None);
        assert_eq!(normalise_phone("1380013800"), None);
        assert_eq!(normalise_phone("phone"), None);
        assert_eq!(normalise_phone("+1 415 555 0100"), None);
        assert_eq!(normalise_phone("+44 20 7946 0958"), None);
        assert_eq!(normalise_phone("0086 13800138000").as_deref(), Some("13800138000"));
        assert_eq!(normalise_phone("+86 10 1234 5678").as_deref(), Some("010-12345678"));
        assert_eq!(normalise_phone("86 13800138000").as_deref(), Some("13800138000"));
        assert_eq!(mask_phone("13800138000"), "138****8000");
        assert_eq!(mask_phone("010-12345678"), "010-****5678");
        assert_eq!(mask_phone("123"), "***");
    }

    #[test]
    fn case_numbers() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(case_no("DM", d, 7), "DM2026112300007");
        assert_eq!(case_no("DM", d, 123_456), "DM20261123123456");
    }

    #[test]
    fn query_codes_are_typed_forgivingly() {
        let code = query_code(&[0, 1, 30, 31, 255, 100, 7, 8]);
        assert_eq!(code.len(), QUERY_CODE_LEN);
        assert!(code.chars().all(|c| QUERY_CODE_ALPHABET.contains(&(c as u8))), "{code}");
        assert!(!code.contains(['0', 'O', '1', 'I', 'L']), "{code}");
        assert_eq!(normalise_query_code(" k7qx-m2pa "), "K7QXM2PA");
    }

    #[test]
    fn uploads_are_named_by_their_hash() {
        let hash = "ab".repeat(32);
        let mut s = good();
        s.attachments = vec![
            Attachment { sha256: hash.clone(), ..Default::default() },
            Attachment { sha256: "../etc/passwd".into(), ..Default::default() },
            Attachment { sha256: hash.to_uppercase(), ..Default::default() },
            Attachment { sha256: hash, url: "https://example.org/a.jpg".into(), ..Default::default() },
        ];
        let wrong = fields(&s);
        assert_eq!(wrong, ["attachments[1].sha256", "attachments[2].sha256", "attachments[3].url"]);
    }

    #[test]
    fn the_registry_reads_kinds_and_refuses_unknown_keys() {
        let c: Channel = toml::from_str(
            "id = \"secretary_mailbox\"\nname = \"书记信箱\"\nkind = \"mailbox\"\nowner = \"ld-secretary\"\nproducer = \"web\"",
        )
        .unwrap();
        assert_eq!((c.kind, c.owner.as_str(), c.producer(), c.proactive()), (ChannelKind::Mailbox, "ld-secretary", "web", false));
        let patrol: Channel = toml::from_str("id = \"grid_patrol\"\nkind = \"patrol\"").unwrap();
        assert!(patrol.proactive() && patrol.producer() == "grid_patrol");
        let typo = toml::from_str::<Channel>("id = \"x\"\nknid = \"mailbox\"").unwrap_err();
        assert!(typo.to_string().contains("knid"), "{typo}");
        assert!(toml::from_str::<Channel>("id = \"x\"\nkind = \"fax\"").is_err());
    }
}
