//! The review queue's rule (待人工复核): when the classifier is not sure enough to send a case on
//! by itself. A wrong sub-item sends the case to the wrong unit, which returns it (退回) and
//! loses days; a person at the centre settles a doubtful case in a minute. The case waits, its
//! dispatch limit running, until one confirms or corrects the guess.
//!
//! An emergency never waits: a gas smell sent to the wrong unit is transferred within minutes,
//! one waiting in a queue is not handled at all.

use serde::Deserialize;

use super::Urgency;

/// `[classification.review]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewRules {
    /// Whether doubtful cases wait for a person at all; when false every case goes on at once.
    pub enabled: bool,
    /// A best sub-item below this calibrated probability waits.
    pub min_confidence: f32,
    /// Two sub-items closer than this (difference of their probabilities) wait.
    pub min_margin: f32,
}

impl Default for ReviewRules {
    fn default() -> Self {
        ReviewRules { enabled: true, min_confidence: 0.4, min_margin: 0.1 }
    }
}

/// Why a case waits for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doubt {
    /// The best sub-item is not likely enough.
    LowConfidence,
    /// The best two are too close to choose between.
    CloseCandidates,
    /// Nothing recognised at all (the keyword rules' fallback).
    Unrecognised,
}

impl Doubt {
    pub fn key(self) -> &'static str {
        match self {
            Doubt::LowConfidence => "low_confidence",
            Doubt::CloseCandidates => "close_candidates",
            Doubt::Unrecognised => "unrecognised",
        }
    }

    pub fn from_key(key: &str) -> Option<Doubt> {
        [Doubt::LowConfidence, Doubt::CloseCandidates, Doubt::Unrecognised].into_iter().find(|d| d.key() == key)
    }

    /// As a clerk reads it.
    pub fn name_zh(self) -> &'static str {
        match self {
            Doubt::LowConfidence => "置信度低",
            Doubt::CloseCandidates => "两个小项难以区分",
            Doubt::Unrecognised => "未能识别",
        }
    }
}

impl ReviewRules {
    /// Every problem with the rules, naming the key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(0.0..=1.0).contains(&self.min_confidence) {
            p.push(format!("review.min_confidence {} must be between 0 and 1", self.min_confidence));
        }
        if !(0.0..=1.0).contains(&self.min_margin) {
            p.push(format!("review.min_margin {} must be between 0 and 1", self.min_margin));
        }
        p
    }

    /// Whether a decision waits for a person, and why: `best` and `second` are the two likeliest
    /// sub-items' probabilities, `fallback` that nothing was recognised.
    pub fn doubt(&self, urgency: Urgency, best: f32, second: Option<f32>, fallback: bool) -> Option<Doubt> {
        if !self.enabled || urgency == Urgency::Emergency {
            return None;
        }
        if fallback {
            Some(Doubt::Unrecognised)
        } else if best < self.min_confidence {
            Some(Doubt::LowConfidence)
        } else if second.is_some_and(|s| best - s < self.min_margin) {
            Some(Doubt::CloseCandidates)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_doubtful_case_waits_and_an_emergency_never() {
        let r = ReviewRules::default();
        assert_eq!(r.doubt(Urgency::Normal, 0.9, Some(0.05), false), None, "sure");
        assert_eq!(r.doubt(Urgency::Normal, 0.39, Some(0.2), false), Some(Doubt::LowConfidence));
        assert_eq!(r.doubt(Urgency::Complex, 0.45, Some(0.4), false), Some(Doubt::CloseCandidates));
        assert_eq!(r.doubt(Urgency::Normal, 0.5, Some(0.375), false), None, "a margin above the minimum");
        assert_eq!(r.doubt(Urgency::Normal, 0.45, None, false), None, "no runner-up");
        assert_eq!(r.doubt(Urgency::Normal, 0.9, None, true), Some(Doubt::Unrecognised));
        assert_eq!(r.doubt(Urgency::Emergency, 0.1, Some(0.09), true), None, "an emergency goes on at once");
        let off = ReviewRules { enabled: false, ..r.clone() };
        assert_eq!(off.doubt(Urgency::Normal, 0.1, Some(0.09), true), None);
    }

    #[test]
    fn doubts_round_trip_and_bad_rules_are_named() {
        for d in [Doubt::LowConfidence, Doubt::CloseCandidates, Doubt::Unrecognised] {
            assert_eq!(Doubt::from_key(d.key()), Some(d));
            assert!(!d.name_zh().is_empty());
        }
        assert_eq!(Doubt::from_key("bored"), None);
        assert!(ReviewRules::default().problems().is_empty());
        let bad = ReviewRules { enabled: true, min_confidence: 1.5, min_margin: -0.1 };
        assert_eq!(bad.problems().len(), 2, "{:?}", bad.problems());
    }
}
