//! Urgency (紧急程度), decided by classification; it picks a case's time limits.

use std::{fmt, str::FromStr};

use jiesu_proto::v1::Urgency as Proto;
use serde::{Deserialize, Serialize};

/// How urgent a case is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// 紧急: gas, fire, no water or power, danger to people — handled at once (快处).
    Emergency,
    /// 一般: the ordinary case.
    #[default]
    Normal,
    /// 复杂: several departments, a history, or needs research — a longer limit, may be
    /// escalated (提级办理).
    Complex,
}

/// Text that names no urgency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrgencyError(pub String);

impl fmt::Display for UrgencyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown urgency {:?}: expected emergency, normal or complex (紧急/一般/复杂)", self.0)
    }
}

impl std::error::Error for UrgencyError {}

impl Urgency {
    /// Every urgency, most urgent first.
    pub const ALL: [Urgency; 3] = [Urgency::Emergency, Urgency::Normal, Urgency::Complex];

    /// The name stored in databases, events and configuration.
    pub fn key(self) -> &'static str {
        match self {
            Urgency::Emergency => "emergency",
            Urgency::Normal => "normal",
            Urgency::Complex => "complex",
        }
    }

    /// What clerks read: 紧急, 一般 or 复杂.
    pub fn name_zh(self) -> &'static str {
        match self {
            Urgency::Emergency => "紧急",
            Urgency::Normal => "一般",
            Urgency::Complex => "复杂",
        }
    }

    /// A stored key; anything unknown (an old row, an empty column) is the ordinary case.
    pub fn from_key(key: &str) -> Self {
        key.parse().unwrap_or(Urgency::Normal)
    }

    /// The contract's value; an unspecified urgency is the ordinary case.
    pub fn from_proto(u: Proto) -> Self {
        match u {
            Proto::Emergency => Urgency::Emergency,
            Proto::Complex => Urgency::Complex,
            Proto::Normal | Proto::Unspecified => Urgency::Normal,
        }
    }

    pub fn to_proto(self) -> Proto {
        match self {
            Urgency::Emergency => Proto::Emergency,
            Urgency::Normal => Proto::Normal,
            Urgency::Complex => Proto::Complex,
        }
    }
}

impl fmt::Display for Urgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl FromStr for Urgency {
    type Err = UrgencyError;

    /// The keys in any ASCII case and the Chinese names: both come back from clerks' tools and
    /// district files.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Urgency::ALL.into_iter().find(|u| u.key().eq_ignore_ascii_case(t) || u.name_zh() == t).ok_or_else(|| UrgencyError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_names_and_the_contract_round_trip() {
        for u in Urgency::ALL {
            assert_eq!(u.key().parse::<Urgency>(), Ok(u));
            assert_eq!(u.name_zh().parse::<Urgency>(), Ok(u));
            assert_eq!(Urgency::from_key(u.key()), u);
            assert_eq!(Urgency::from_proto(u.to_proto()), u);
        }
        assert_eq!(" EMERGENCY ".parse::<Urgency>(), Ok(Urgency::Emergency));
        assert_eq!(Urgency::from_proto(Proto::Unspecified), Urgency::Normal);
        assert_eq!(Urgency::from_key(""), Urgency::Normal);
        assert!("urgent".parse::<Urgency>().unwrap_err().to_string().contains("紧急"));
    }
}
