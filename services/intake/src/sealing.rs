//! The citizen's name and phone at rest (个人信息加密存储): sealed with an AEAD
//! (ChaCha20-Poly1305, from `ring`) under a key of the district's, bound to the case they belong
//! to, with the key's id stored beside them so keys rotate: new contacts are sealed with
//! `[intake] contact_key`, old ones still open with any key left in `contact_keys`. The phone's
//! keyed hash (HMAC-SHA256 with `contact_hash_key`) lets the same citizen be found again without
//! the number ever being stored in clear.

use std::collections::BTreeMap;

use base64::Engine;
use ring::{
    aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey},
    hmac,
    rand::{SecureRandom, SystemRandom},
};

/// What a sealed value starts with: `sealed:v1:<key id>:<base64 of nonce and ciphertext>`.
const PREFIX: &str = "sealed:v1:";

/// Why a stored contact cannot be opened, or the keys cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("[intake] contact key {0:?} is not 32 bytes of base64")]
    BadKey(String),
    #[error("[intake] contact_key {0:?} is not one of contact_keys")]
    UnknownWriteKey(String),
    #[error("a stored contact was sealed with key {0:?}, which is no longer configured (keep old keys in contact_keys)")]
    UnknownKey(String),
    #[error("a stored contact does not open: altered, or sealed for another case")]
    Corrupt,
}

/// The keys of `[intake]`.
pub struct ContactSeal {
    keys: BTreeMap<String, LessSafeKey>,
    write: Option<String>,
    hash: Option<hmac::Key>,
    rng: SystemRandom,
}

impl ContactSeal {
    /// `keys`: key id → 32 bytes in base64; `write`: the id new contacts are sealed with (empty:
    /// none, contacts stored in clear — a service says so loudly at start); `hash_key`: base64.
    pub fn new(keys: &BTreeMap<String, String>, write: &str, hash_key: &str) -> Result<Self, SealError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut parsed = BTreeMap::new();
        for (id, text) in keys {
            let bytes = b64.decode(text.trim()).map_err(|_| SealError::BadKey(id.clone()))?;
            let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| SealError::BadKey(id.clone()))?;
            parsed.insert(id.clone(), LessSafeKey::new(key));
        }
        let write = (!write.is_empty()).then(|| write.to_string());
        if let Some(id) = &write
            && !parsed.contains_key(id)
        {
            return Err(SealError::UnknownWriteKey(id.clone()));
        }
        let hash = match hash_key.trim() {
            "" => None,
            text => Some(hmac::Key::new(hmac::HMAC_SHA256, &b64.decode(text).map_err(|_| SealError::BadKey("contact_hash_key".into()))?)),
        };
        Ok(Self { keys: parsed, write, hash, rng: SystemRandom::new() })
    }

    /// Whether new contacts are sealed.
    pub fn seals(&self) -> bool {
        self.write.is_some()
    }

    /// `plain` sealed for `case_id` (empty stays empty; without a write key, `plain` itself).
    pub fn seal(&self, plain: &str, case_id: &str) -> String {
        let (Some(id), false) = (&self.write, plain.is_empty()) else {
            return plain.to_string();
        };
        let key = &self.keys[id];
        let mut nonce = [0u8; 12];
        self.rng.fill(&mut nonce).expect("the system's random source");
        let mut data = plain.as_bytes().to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(case_id.as_bytes()), &mut data)
            .expect("sealing a short text");
        let mut out = nonce.to_vec();
        out.extend(data);
        format!("{PREFIX}{id}:{}", base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// A stored value of `case_id` opened (a value stored in clear is returned as it is).
    pub fn open(&self, stored: &str, case_id: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let (id, body) = rest.split_once(':').ok_or(SealError::Corrupt)?;
        let key = self.keys.get(id).ok_or_else(|| SealError::UnknownKey(id.to_string()))?;
        let mut data = base64::engine::general_purpose::STANDARD.decode(body).map_err(|_| SealError::Corrupt)?;
        if data.len() < 12 {
            return Err(SealError::Corrupt);
        }
        let ciphertext = data.split_off(12);
        let nonce = Nonce::try_assume_unique_for_key(&data).map_err(|_| SealError::Corrupt)?;
        let mut ciphertext = ciphertext;
        let plain = key.open_in_place(nonce, Aad::from(case_id.as_bytes()), &mut ciphertext).map_err(|_| SealError::Corrupt)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Corrupt)
    }

    /// The keyed hash of a (normalised) phone number, for finding the same citizen again; empty
    /// without a hash key or a phone.
    pub fn phone_hash(&self, phone: &str) -> String {
        match (&self.hash, phone.is_empty()) {
            (Some(key), false) => {
                let tag = hmac::sign(key, phone.as_bytes());
                tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
            }
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiesu_kit::auth::random_key as new_key;

    fn seal_with(write: &str, keys: &[(&str, &str)]) -> ContactSeal {
        let keys = keys.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ContactSeal::new(&keys, write, &new_key()).unwrap()
    }

    #[test]
    fn a_sealed_contact_opens_only_for_its_case_and_hides_the_number() {
        let k1 = new_key();
        let seal = seal_with("k1", &[("k1", &k1)]);
        let sealed = seal.seal("13912345678", "case-1");
        assert!(sealed.starts_with("sealed:v1:k1:"), "{sealed}");
        assert!(!sealed.contains("13912345678"));
        assert_ne!(seal.seal("13912345678", "case-1"), sealed, "a fresh nonce each time");
        assert_eq!(seal.open(&sealed, "case-1").unwrap(), "13912345678");
        assert_eq!(seal.open(&sealed, "case-2"), Err(SealError::Corrupt), "bound to its case");
        let mut altered = sealed.clone();
        altered.replace_range(altered.len() - 3.., "AAA");
        assert_eq!(seal.open(&altered, "case-1"), Err(SealError::Corrupt));
        assert_eq!(seal.seal("", "case-1"), "", "nothing to seal");
        assert_eq!(seal.open("13800138000", "case-1").unwrap(), "13800138000", "values stored in clear still read");
    }

    #[test]
    fn keys_rotate() {
        let (k1, k2) = (new_key(), new_key());
        let old = seal_with("k1", &[("k1", &k1)]).seal("张女士", "c");
        let rotated = seal_with("k2", &[("k1", &k1), ("k2", &k2)]);
        assert_eq!(rotated.open(&old, "c").unwrap(), "张女士", "old contacts open with the old key");
        assert!(rotated.seal("张女士", "c").starts_with("sealed:v1:k2:"));
        let forgotten = seal_with("k2", &[("k2", &k2)]);
        assert_eq!(forgotten.open(&old, "c"), Err(SealError::UnknownKey("k1".into())));
        let keys = [("k1".to_string(), "short".to_string())].into_iter().collect();
        assert!(matches!(ContactSeal::new(&keys, "k1", ""), Err(SealError::BadKey(_))));
        let keys = [("k1".to_string(), k1.clone())].into_iter().collect();
        assert_eq!(ContactSeal::new(&keys, "k9", "").err(), Some(SealError::UnknownWriteKey("k9".into())));
    }

    #[test]
    fn the_same_phone_hashes_alike_and_never_in_clear() {
        let seal = seal_with("k1", &[("k1", &new_key())]);
        let h = seal.phone_hash("13912345678");
        assert_eq!(h.len(), 64);
        assert_eq!(h, seal.phone_hash("13912345678"));
        assert_ne!(h, seal.phone_hash("13912345679"));
        assert!(!h.contains("13912345678"));
        assert_eq!(seal.phone_hash(""), "");
    }
}
