use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use super::TimeError;

/// The longest limit accepted from configuration, in days: anything longer is a typo, and the
/// bound keeps every deadline far inside the range of dates chrono can represent.
const MAX_DAYS: u32 = 3653;

/// A time limit (时限) as configured: `"10m"`, `"1h"`, `"4d"`, `"3wd"`, or `"0"` for at once (立即).
///
/// Minutes, hours and days (`d`) are elapsed time: `"4d"` is 96 hours whatever the calendar says.
/// Working days (`wd`, 工作日) follow the district's [`Calendar`](super::Calendar), see
/// [`Calendar::deadline`](super::Calendar::deadline).
///
/// `"0"` and `"0m"` are the same limit; it is written back as `"0m"`, so that parsing what
/// `Display` prints always gives the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Limit {
    /// Elapsed minutes (`m`, 分钟).
    Minutes(u32),
    /// Elapsed hours (`h`, 小时).
    Hours(u32),
    /// Elapsed days of 24 hours (`d`, 天 / 自然日).
    Days(u32),
    /// Working days (`wd`, 工作日) of the district's calendar.
    WorkingDays(u32),
    /// Working hours (`wh`, 工作小时) on a unit's business hours (办公时间).
    WorkingHours(u32),
}

impl Limit {
    /// At once (立即): the deadline is the start.
    pub const IMMEDIATE: Limit = Limit::Minutes(0);

    /// The number in front of the unit.
    pub fn amount(self) -> u32 {
        match self {
            Limit::Minutes(n) | Limit::Hours(n) | Limit::Days(n) | Limit::WorkingDays(n) | Limit::WorkingHours(n) => n,
        }
    }

    /// Whether the limit is zero, whatever its unit.
    pub fn is_immediate(self) -> bool {
        self.amount() == 0
    }

    /// The limit as elapsed time, or `None` for working days and hours, whose length depends on
    /// the start.
    pub fn elapsed(self) -> Option<TimeDelta> {
        let n = i64::from(self.amount());
        match self {
            Limit::Minutes(_) => Some(TimeDelta::minutes(n)),
            Limit::Hours(_) => Some(TimeDelta::hours(n)),
            Limit::Days(_) => Some(TimeDelta::days(n)),
            Limit::WorkingDays(_) | Limit::WorkingHours(_) => None,
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Limit::Minutes(_) => "m",
            Limit::Hours(_) => "h",
            Limit::Days(_) => "d",
            Limit::WorkingDays(_) => "wd",
            Limit::WorkingHours(_) => "wh",
        }
    }

    fn max_amount(self) -> u32 {
        match self {
            Limit::Minutes(_) => MAX_DAYS * 24 * 60,
            Limit::Hours(_) | Limit::WorkingHours(_) => MAX_DAYS * 24,
            Limit::Days(_) | Limit::WorkingDays(_) => MAX_DAYS,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount(), self.unit())
    }
}

impl FromStr for Limit {
    type Err = TimeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| TimeError::InvalidLimit { input: input.to_owned(), reason: reason.to_owned() };
        // Values may come from environment variables, where stray blanks are easy to type.
        let text = input.trim();
        if text.is_empty() {
            return Err(invalid("empty"));
        }
        if text.starts_with('-') {
            return Err(invalid("negative"));
        }
        let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
        if digits.is_empty() {
            return Err(invalid("must start with a whole number, e.g. \"30m\""));
        }
        // Only digits are left, so the sole possible failure is overflow.
        let n: u32 = digits.parse().map_err(|_| invalid("number too large"))?;
        let limit = match unit {
            "m" => Limit::Minutes(n),
            "h" => Limit::Hours(n),
            "d" => Limit::Days(n),
            "wd" => Limit::WorkingDays(n),
            "wh" => Limit::WorkingHours(n),
            "" if n == 0 => Limit::IMMEDIATE,
            "" => return Err(invalid("missing unit (m, h, d, wd or wh)")),
            u if u.starts_with(['.', ',']) => {
                return Err(invalid("fractions are not supported, use a smaller unit"));
            }
            u => {
                return Err(invalid(&format!("unknown unit {u:?} (expected m, h, d, wd or wh)")));
            }
        };
        if n > limit.max_amount() {
            return Err(invalid(&format!("longer than the maximum of {MAX_DAYS} days")));
        }
        Ok(limit)
    }
}

impl TryFrom<String> for Limit {
    type Error = TimeError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Limit> for String {
    fn from(limit: Limit) -> Self {
        limit.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_writes_it_back() {
        let cases = [
            ("10m", Limit::Minutes(10)),
            ("30m", Limit::Minutes(30)),
            ("1h", Limit::Hours(1)),
            ("72h", Limit::Hours(72)),
            ("4d", Limit::Days(4)),
            ("3wd", Limit::WorkingDays(3)),
            ("50wd", Limit::WorkingDays(50)),
            ("0m", Limit::IMMEDIATE),
            ("0h", Limit::Hours(0)),
            ("0wd", Limit::WorkingDays(0)),
        ];
        for (text, want) in cases {
            let got: Limit = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string(), text);
            assert_eq!(got.to_string().parse::<Limit>().unwrap(), got);
        }
    }

    #[test]
    fn bare_zero_is_immediate_and_canonicalised() {
        let zero: Limit = "0".parse().unwrap();
        assert_eq!(zero, Limit::IMMEDIATE);
        assert!(zero.is_immediate());
        assert_eq!(zero.to_string(), "0m");
        assert!(Limit::WorkingDays(0).is_immediate());
        assert!(!Limit::Minutes(1).is_immediate());
    }

    #[test]
    fn tolerates_surrounding_blanks_and_leading_zeros() {
        assert_eq!(" 1h\n".parse::<Limit>().unwrap(), Limit::Hours(1));
        assert_eq!("007m".parse::<Limit>().unwrap(), Limit::Minutes(7));
        assert_eq!("000".parse::<Limit>().unwrap(), Limit::IMMEDIATE);
    }

    #[test]
    fn accepts_the_maximum_and_rejects_one_more() {
        for (ok, too_long) in [("5260320m", "5260321m"), ("87672h", "87673h"), ("3653d", "3654d"), ("3653wd", "3654wd")] {
            assert!(ok.parse::<Limit>().is_ok(), "{ok}");
            let err = too_long.parse::<Limit>().unwrap_err().to_string();
            assert!(err.contains("maximum"), "{too_long}: {err}");
        }
    }

    #[test]
    fn rejects_bad_input_with_a_clear_reason() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("-1h", "negative"),
            ("-0", "negative"),
            ("h", "whole number"),
            ("wd", "whole number"),
            ("+1h", "whole number"),
            ("10", "missing unit"),
            ("1.5h", "fractions"),
            ("1,5h", "fractions"),
            ("10x", "unknown unit \"x\""),
            ("10s", "unknown unit \"s\""),
            ("1H", "unknown unit \"H\""),
            ("1 h", "unknown unit \" h\""),
            ("3w", "unknown unit \"w\""),
            ("3wdx", "unknown unit \"wdx\""),
            ("1h30m", "unknown unit \"h30m\""),
            ("4294967296m", "number too large"),
            ("99999999999999999999wd", "number too large"),
        ];
        for (text, reason) in cases {
            match text.parse::<Limit>() {
                Err(TimeError::InvalidLimit { input, reason: got }) => {
                    assert_eq!(input, text);
                    assert!(got.contains(reason), "{text:?}: {got:?} lacks {reason:?}");
                }
                other => panic!("{text:?} gave {other:?}"),
            }
        }
        let shown = "10x".parse::<Limit>().unwrap_err().to_string();
        assert_eq!(shown, "invalid time limit \"10x\": unknown unit \"x\" (expected m, h, d, wd or wh)");
    }

    #[test]
    fn elapsed_spans() {
        assert_eq!(Limit::Minutes(10).elapsed(), Some(TimeDelta::minutes(10)));
        assert_eq!(Limit::Hours(72).elapsed(), Some(TimeDelta::hours(72)));
        assert_eq!(Limit::Days(4).elapsed(), Some(TimeDelta::hours(96)));
        assert_eq!(Limit::IMMEDIATE.elapsed(), Some(TimeDelta::zero()));
        assert_eq!(Limit::WorkingDays(3).elapsed(), None);
        assert_eq!(Limit::Minutes(u32::MAX).elapsed(), Some(TimeDelta::minutes(i64::from(u32::MAX))));
        assert_eq!(Limit::WorkingDays(50).amount(), 50);
    }

    #[test]
    fn serde_uses_the_string_form() {
        #[derive(Debug, Deserialize)]
        struct T {
            limit: Limit,
        }
        let t: T = toml::from_str("limit = \"3wd\"").unwrap();
        assert_eq!(t.limit, Limit::WorkingDays(3));
        assert_eq!(String::from(t.limit), "3wd");
        let err = toml::from_str::<T>("limit = \"3 days\"").unwrap_err().to_string();
        assert!(err.contains("unknown unit"), "{err}");
        assert!(toml::from_str::<T>("limit = 3").is_err());
    }
}
