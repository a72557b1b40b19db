//! The mailbox form's rules (表单规则), without I/O: the signed form token that carries the
//! anti-forgery binding and the human check, the replay guard, the rate limits, and where
//! intake's reasons are shown on the form.
//!
//! The human check is a sum a person does in their head (3 加 4 等于几？): no foreign service,
//! no script. Its question and answer travel inside the form token, signed with the front's key,
//! so the server keeps no state per form shown and a bot cannot change the question.

use std::{collections::HashMap, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use ring::hmac;

/// How long a form shown stays valid: time enough to write a long letter on a phone.
pub const FORM_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// What the form token says, once its signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormToken {
    /// Random; also the submission's `channel_ref`, so a re-sent form is the same request.
    pub nonce: String,
    pub channel: String,
    pub issued_at: i64,
    /// The two numbers of the human check.
    pub a: u8,
    pub b: u8,
}

impl FormToken {
    /// The question a person answers.
    pub fn question(&self) -> String {
        format!("{} 加 {} 等于几？", self.a, self.b)
    }
}

/// Why a posted form is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the form token is missing or forged")]
    Forged,
    #[error("the form is from another mailbox")]
    OtherMailbox,
    #[error("the form was shown too long ago")]
    Expired,
    #[error("the form's cookie does not match: not posted from the page we served")]
    CrossSite,
    #[error("the human check was answered wrongly")]
    WrongAnswer,
    #[error("this form was already submitted")]
    Replayed,
}

impl FormError {
    /// What the citizen reads, in Chinese.
    pub fn zh(&self) -> &'static str {
        match self {
            FormError::Forged | FormError::CrossSite => "页面已失效，请刷新页面后重新填写提交",
            FormError::OtherMailbox => "表单与信箱不符，请从信箱页面重新填写",
            FormError::Expired => "页面停留时间过长，请刷新页面后重新提交",
            FormError::WrongAnswer => "验证题答案不正确，请重新计算",
            FormError::Replayed => "该表单已经提交过，请勿重复提交；如需查询，请使用受理编号和查询码",
        }
    }
}

/// Signs and checks form tokens with the front's key.
pub struct FormKey(hmac::Key);

impl FormKey {
    pub fn new(secret: &[u8]) -> Self {
        FormKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// A token for a new form of `channel`, bound to the browser's `cookie`. `random` gives the
    /// nonce (16 bytes) and the two numbers.
    pub fn issue(&self, channel: &str, cookie: &str, now: DateTime<Utc>, random: &[u8; 18]) -> (String, FormToken) {
        let token = FormToken {
            nonce: URL_SAFE_NO_PAD.encode(&random[..16]),
            channel: channel.to_string(),
            issued_at: now.timestamp(),
            a: 1 + random[16] % 9,
            b: 1 + random[17] % 9,
        };
        let body = format!("{}.{}.{}.{}.{}", token.nonce, token.channel, token.issued_at, token.a, token.b);
        let tag = hmac::sign(&self.0, format!("{body}|{cookie}").as_bytes());
        (format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())), token)
    }

    /// Checks a posted token: signed by us, for this mailbox, this browser, recent, and the
    /// human check answered.
    pub fn check(&self, posted: &str, channel: &str, cookie: &str, answer: &str, now: DateTime<Utc>) -> Result<FormToken, FormError> {
        let (body, tag) = posted.rsplit_once('.').ok_or(FormError::Forged)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| FormError::Forged)?;
        let parts: Vec<&str> = body.split('.').collect();
        let [nonce, form_channel, issued_at, a, b] = parts[..] else { return Err(FormError::Forged) };
        // The cookie is part of what was signed: a token lifted into another site's page fails
        // here, because that page cannot send our cookie (SameSite=Strict).
        if hmac::verify(&self.0, format!("{body}|{cookie}").as_bytes(), &tag).is_err() {
            let without_cookie = hmac::verify(&self.0, format!("{body}|").as_bytes(), &tag).is_ok();
            return Err(if cookie.is_empty() || without_cookie { FormError::CrossSite } else { FormError::Forged });
        }
        let token = FormToken {
            nonce: nonce.to_string(),
            channel: form_channel.to_string(),
            issued_at: issued_at.parse().map_err(|_| FormError::Forged)?,
            a: a.parse().map_err(|_| FormError::Forged)?,
            b: b.parse().map_err(|_| FormError::Forged)?,
        };
        if token.channel != channel {
            return Err(FormError::OtherMailbox);
        }
        let age = now.timestamp() - token.issued_at;
        if !(-60..=FORM_LIFETIME.as_secs() as i64).contains(&age) {
            return Err(FormError::Expired);
        }
        let answer: String = answer.chars().filter(|c| !c.is_whitespace()).map(fullwidth_digit).collect();
        if answer.parse::<u32>().ok() != Some(u32::from(token.a) + u32::from(token.b)) {
            return Err(FormError::WrongAnswer);
        }
        Ok(token)
    }
}

/// How long a texted verification code (短信验证码) stays good: its ten-minute window and the next.
const SMS_WINDOW_SECS: i64 = 600;

impl FormKey {
    /// The verification code for `phone` now: derived from the key, the number and the
    /// ten-minute window, so the front keeps no state and a code is good for one number only.
    pub fn sms_code(&self, phone: &str, now: DateTime<Utc>) -> String {
        self.sms_code_in(phone, now.timestamp().div_euclid(SMS_WINDOW_SECS))
    }

    fn sms_code_in(&self, phone: &str, window: i64) -> String {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        let tag = hmac::sign(&self.0, format!("sms|{digits}|{window}").as_bytes());
        let n = u32::from_be_bytes([tag.as_ref()[0], tag.as_ref()[1], tag.as_ref()[2], tag.as_ref()[3]]) % 1_000_000;
        format!("{n:06}")
    }

    /// Whether `typed` is the code sent to `phone` in this window or the one before.
    pub fn sms_code_ok(&self, phone: &str, typed: &str, now: DateTime<Utc>) -> bool {
        let typed: String = typed.chars().filter(|c| !c.is_whitespace()).map(fullwidth_digit).collect();
        let window = now.timestamp().div_euclid(SMS_WINDOW_SECS);
        typed.len() == 6 && [window, window - 1].iter().any(|w| self.sms_code_in(phone, *w) == typed)
    }
}

/// A phone's keyboard may type full-width digits (１２).
fn fullwidth_digit(c: char) -> char {
    match c {
        '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
        _ => c,
    }
}

/// The forms already submitted, until their tokens expire: a replayed post is refused.
#[derive(Default)]
pub struct Submitted {
    seen: HashMap<String, i64>,
}

impl Submitted {
    /// Records `nonce` as submitted; `Err` if it already was.
    pub fn first_time(&mut self, nonce: &str, now: DateTime<Utc>) -> Result<(), FormError> {
        let now = now.timestamp();
        self.seen.retain(|_, until| *until > now);
        if self.seen.contains_key(nonce) {
            return Err(FormError::Replayed);
        }
        self.seen.insert(nonce.to_string(), now + FORM_LIFETIME.as_secs() as i64 + 60);
        Ok(())
    }

    /// Forgets `nonce`: its submission failed, the citizen may correct the form and send it again.
    pub fn forget(&mut self, nonce: &str) {
        self.seen.remove(nonce);
    }
}

/// The form's field where intake's reason about `field` is shown.
pub fn form_field(intake_field: &str) -> &'static str {
    match intake_field {
        "citizen.phone" => "phone",
        "citizen.name" => "name",
        "title" => "title",
        "description" => "description",
        "location.address" => "address",
        "location" | "location.latitude" | "location.longitude" => "address",
        "location.street" | "location.community" => "community",
        f if f.starts_with("attachments") => "photos",
        _ => "form",
    }
}

/// The kinds of request a citizen picks (诉求类型): key and name.
pub const REQUEST_TYPES: [(&str, &str); 5] =
    [("consultation", "咨询"), ("help", "求助"), ("complaint", "投诉"), ("report", "举报"), ("suggestion", "建议")];

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn a_token_carries_its_check_and_is_bound_to_mailbox_browser_and_time() {
        let key = FormKey::new(b"secret");
        let (posted, shown) = key.issue("secretary_mailbox", "cookie-1", at(0), &[7; 18]);
        let sum = (u32::from(shown.a) + u32::from(shown.b)).to_string();
        assert_eq!(key.check(&posted, "secretary_mailbox", "cookie-1", &sum, at(60)).unwrap(), shown);
        assert!(shown.question().contains("加"));
        assert_eq!(key.check(&posted, "director_mailbox", "cookie-1", &sum, at(60)), Err(FormError::OtherMailbox));
        assert_eq!(key.check(&posted, "secretary_mailbox", "cookie-2", &sum, at(60)), Err(FormError::Forged));
        assert_eq!(key.check(&posted, "secretary_mailbox", "", &sum, at(60)), Err(FormError::CrossSite));
        assert_eq!(key.check(&posted, "secretary_mailbox", "cookie-1", "99", at(60)), Err(FormError::WrongAnswer));
        assert_eq!(key.check(&posted, "secretary_mailbox", "cookie-1", &sum, at(3 * 3600)), Err(FormError::Expired));
        let fullwidth: String = sum.chars().map(|c| char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap()).collect();
        assert!(key.check(&posted, "secretary_mailbox", "cookie-1", &fullwidth, at(60)).is_ok(), "full-width digits");
        // Changing the question (to make the answer easy) breaks the signature.
        let tampered = posted.replacen(&format!(".{}.{}.", shown.a, shown.b), ".1.1.", 1);
        assert_eq!(key.check(&tampered, "secretary_mailbox", "cookie-1", "2", at(60)), Err(FormError::Forged));
        assert_eq!(FormKey::new(b"other").check(&posted, "secretary_mailbox", "cookie-1", &sum, at(60)), Err(FormError::Forged));
        for junk in ["", ".", "a.b", "a.b.c.d.e.f", "….."] {
            assert!(key.check(junk, "secretary_mailbox", "cookie-1", &sum, at(60)).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn a_form_is_taken_once() {
        let mut s = Submitted::default();
        assert!(s.first_time("n1", at(0)).is_ok());
        assert_eq!(s.first_time("n1", at(10)), Err(FormError::Replayed));
        s.forget("n1");
        assert!(s.first_time("n1", at(20)).is_ok(), "a failed submission may be corrected and sent again");
        assert!(s.first_time("n1", at(3 * 3600)).is_ok(), "forgotten once its token expired (and it cannot be posted any more)");
    }

    #[test]
    fn intake_reasons_land_next_to_their_field() {
        assert_eq!(form_field("citizen.phone"), "phone");
        assert_eq!(form_field("attachments[3].sha256"), "photos");
        assert_eq!(form_field("description"), "description");
        assert_eq!(form_field("channel"), "form");
    }

    /// Property: any posted token, answer and cookie is refused or accepted, never a panic,
    /// and only the signed one with the right sum is accepted.
    #[test]
    fn no_string_passes_for_a_token() {
        let key = FormKey::new(b"secret");
        let (good, shown) = key.issue("m", "c", at(0), &[3; 18]);
        let sum = (u32::from(shown.a) + u32::from(shown.b)).to_string();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: Vec<char> = "ab.|-_=0123456789加 \u{0}\u{1b}中".chars().collect();
        for i in 0..20_000 {
            let token: String = if i % 2 == 0 {
                let mut t: Vec<char> = good.chars().collect();
                let at_ = (next() as usize) % t.len();
                t[at_] = alphabet[(next() as usize) % alphabet.len()];
                t.into_iter().collect()
            } else {
                (0..(next() % 80)).map(|_| alphabet[(next() as usize) % alphabet.len()]).collect()
            };
            if token != good {
                assert!(key.check(&token, "m", "c", &sum, at(1)).is_err(), "{token:?}");
            }
        }
    }

    #[test]
    fn a_texted_code_is_good_for_its_number_for_ten_to_twenty_minutes() {
        let key = FormKey::new(b"secret");
        let code = key.sms_code("138 0013 8000", at(0));
        assert_eq!(code.len(), 6);
        assert!(key.sms_code_ok("13800138000", &code, at(60)));
        assert!(key.sms_code_ok("13800138000", &format!(" {code} "), at(599)), "the next window still takes it");
        assert!(!key.sms_code_ok("13800138000", &code, at(1300)), "expired");
        assert!(!key.sms_code_ok("13900139000", &code, at(60)), "another number");
        assert!(!key.sms_code_ok("13800138000", "12345", at(60)));
        assert!(!FormKey::new(b"other").sms_code_ok("13800138000", &code, at(60)));
    }
}
