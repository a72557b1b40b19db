//! Sliding-window rate limits (限流) per key — a client address, a phone's hash, a channel —
//! kept in memory: a limit protects one process from a flood, it is not a quota to account for.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use chrono::{DateTime, Utc};

/// Sliding-window rate limits per key (a client address, a phone number's hash).
#[derive(Default)]
pub struct RateLimiter {
    hits: HashMap<String, VecDeque<i64>>,
}

impl RateLimiter {
    /// Counts a hit of `key`; `Err(seconds)` to wait if it had `limit` hits within `window` already.
    pub fn hit(&mut self, key: &str, limit: u32, window: Duration, now: DateTime<Utc>) -> Result<(), u64> {
        let now = now.timestamp();
        let start = now - window.as_secs() as i64;
        // Keep the table small: drop keys with nothing left in their window now and then.
        if self.hits.len() > 10_000 {
            self.hits.retain(|_, q| q.back().is_some_and(|t| *t > start));
        }
        let q = self.hits.entry(key.to_string()).or_default();
        while q.front().is_some_and(|t| *t <= start) {
            q.pop_front();
        }
        if q.len() as u32 >= limit {
            let oldest = q.front().copied().unwrap_or(now);
            return Err(u64::try_from(oldest - start).unwrap_or(1).max(1));
        }
        q.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn rates_are_limited_per_key_in_a_sliding_window() {
        let mut r = RateLimiter::default();
        let hour = Duration::from_secs(3600);
        for i in 0..3 {
            assert!(r.hit("1.2.3.4", 3, hour, at(i)).is_ok());
        }
        let wait = r.hit("1.2.3.4", 3, hour, at(100)).unwrap_err();
        assert!(wait > 3000 && wait <= 3600, "{wait}");
        assert!(r.hit("5.6.7.8", 3, hour, at(100)).is_ok(), "another client is not held up");
        assert!(r.hit("1.2.3.4", 3, hour, at(3601)).is_ok(), "the oldest hit left the window");
    }
}
