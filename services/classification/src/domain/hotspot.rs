//! Hot spots (热点, 未诉先办): one problem rising in one place. A sub-item's cases in one community
//! over the current window are compared with that place's own baseline — the average of the
//! windows before — so a street that always has parking complaints is not "hot" for having them,
//! and one that suddenly has five in a week is.

use serde::Deserialize;

use jiesu_reference::time::Limit;

/// `[classification.hotspots]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HotspotRules {
    /// The window cases are counted over (elapsed time: "7d", "48h").
    pub window: Limit,
    /// How many windows before the current one make the baseline.
    pub baseline_windows: u32,
    /// At least this many cases in the window…
    pub min_count: u32,
    /// …and at least this many times the baseline (a baseline under one counts as one).
    pub ratio: f64,
}

impl Default for HotspotRules {
    fn default() -> Self {
        HotspotRules { window: Limit::Days(7), baseline_windows: 4, min_count: 5, ratio: 3.0 }
    }
}

impl HotspotRules {
    /// Every problem with the rules, naming the key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.window.elapsed().is_none() || self.window.is_immediate() {
            p.push(format!("hotspots.window {} must be elapsed time (m, h, d) and not zero", self.window));
        }
        if self.baseline_windows == 0 {
            p.push("hotspots.baseline_windows must be at least 1".into());
        }
        if self.min_count < 2 {
            p.push(format!("hotspots.min_count {} must be at least 2: one case is no pattern", self.min_count));
        }
        if self.ratio.is_nan() || self.ratio < 1.0 {
            p.push(format!("hotspots.ratio {} must be at least 1", self.ratio));
        }
        p
    }

    /// The window in milliseconds.
    pub fn window_ms(&self) -> i64 {
        self.window.elapsed().map_or(0, |d| d.num_milliseconds())
    }

    /// Whether `count` cases in the window, against `before` cases in the baseline windows, make
    /// a hot spot; the baseline per window when they do.
    pub fn hot(&self, count: u32, before: u32) -> Option<f64> {
        let baseline = f64::from(before) / f64::from(self.baseline_windows.max(1));
        (count >= self.min_count && f64::from(count) >= self.ratio * baseline.max(1.0)).then_some(baseline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rise_against_the_places_own_baseline() {
        let r = HotspotRules::default();
        assert_eq!(r.hot(4, 0), None, "below the minimum");
        assert_eq!(r.hot(5, 0), Some(0.0), "five where there were none");
        assert_eq!(r.hot(5, 8), None, "two a week before: five is not three times that");
        assert_eq!(r.hot(6, 8), Some(2.0));
        assert_eq!(r.window_ms(), 7 * 86_400_000);
        assert!(r.problems().is_empty());
        let bad = HotspotRules { window: Limit::WorkingDays(5), baseline_windows: 0, min_count: 1, ratio: f64::NAN };
        assert_eq!(bad.problems().len(), 4, "{:?}", bad.problems());
    }
}
