//! Repeat requests (重复诉求): the same citizen, or the same place, with the same problem again
//! within the district's window. A repeat is linked to the earlier case — open or closed — so the
//! unit sees the history, the centre counts how often a problem comes back (the 问题解决率 the
//! district is ranked on suffers from every one), and a citizen calling for the third time is
//! not treated as new. The same words from the same channel within minutes are a duplicate
//! (重复提交: a form sent twice, a call logged twice) and are merged into the earlier case.
//!
//! The citizen is known only by the keyed hash of their phone that intake puts on
//! `case.received`; the place by its community and its address, normalised.

use serde::Deserialize;

use jiesu_reference::time::Limit;

/// `[classification.repeats]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepeatRules {
    /// How far back a repeat is looked for (elapsed time: "30d").
    pub window: Limit,
    /// How close two identical requests from one channel must be to be one submission ("1d").
    pub duplicate_window: Limit,
}

impl Default for RepeatRules {
    fn default() -> Self {
        RepeatRules { window: Limit::Days(30), duplicate_window: Limit::Days(1) }
    }
}

impl RepeatRules {
    /// Every problem with the rules, naming the key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (key, limit) in [("window", &self.window), ("duplicate_window", &self.duplicate_window)] {
            if limit.elapsed().is_none() || limit.is_immediate() {
                p.push(format!("repeats.{key} {limit} must be elapsed time (m, h, d) and not zero"));
            }
        }
        if p.is_empty() && self.duplicate_ms() > self.window_ms() {
            p.push(format!("repeats.duplicate_window {} must not be longer than repeats.window {}", self.duplicate_window, self.window));
        }
        p
    }

    pub fn window_ms(&self) -> i64 {
        self.window.elapsed().map_or(0, |d| d.num_milliseconds())
    }

    pub fn duplicate_ms(&self) -> i64 {
        self.duplicate_window.elapsed().map_or(0, |d| d.num_milliseconds())
    }
}

/// What a classified case is remembered by, to find its repeats.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mark {
    pub case_id: String,
    pub case_no: String,
    pub channel: String,
    pub sub_item: String,
    /// The keyed hash of the citizen's phone; empty when unknown.
    pub citizen_key: String,
    pub community: String,
    /// The address, normalised ([`normalise`]); empty when none was given.
    pub place: String,
    /// A digest of the request's words, normalised ([`digest`]).
    pub digest: String,
    pub at_ms: i64,
    /// The first case of its chain (itself when it repeats nothing).
    pub first_case_id: String,
    pub first_case_no: String,
}

/// How a repeat was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Citizen,
    Place,
}

impl By {
    pub fn key(self) -> &'static str {
        match self {
            By::Citizen => "citizen",
            By::Place => "place",
        }
    }
}

/// A case's link to the case it repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct Link<'a> {
    pub by: By,
    pub previous: &'a Mark,
    /// The same words from the same channel within the duplicate window: merged into `previous`.
    pub duplicate: bool,
    /// The first case of the chain the case joins.
    pub first_case_id: &'a str,
    pub first_case_no: &'a str,
}

impl Mark {
    fn same_citizen(&self, other: &Mark) -> bool {
        !self.citizen_key.is_empty() && self.citizen_key == other.citizen_key
    }

    fn same_place(&self, other: &Mark) -> bool {
        !self.place.is_empty() && !self.community.is_empty() && self.community == other.community && self.place == other.place
    }
}

/// The case `now` repeats among `earlier`, if any: the latest of the same sub-item within the
/// window, from the same citizen or at the same place. The citizen is the stronger evidence.
pub fn link<'a>(rules: &RepeatRules, now: &Mark, earlier: &'a [Mark]) -> Option<Link<'a>> {
    let from = now.at_ms - rules.window_ms();
    let candidates =
        || earlier.iter().filter(|m| m.case_id != now.case_id && m.sub_item == now.sub_item && m.at_ms >= from && m.at_ms <= now.at_ms);
    let (by, previous) = candidates()
        .filter(|m| now.same_citizen(m))
        .max_by_key(|m| m.at_ms)
        .map(|m| (By::Citizen, m))
        .or_else(|| candidates().filter(|m| now.same_place(m)).max_by_key(|m| m.at_ms).map(|m| (By::Place, m)))?;
    let duplicate = previous.channel == now.channel && previous.digest == now.digest && now.at_ms - previous.at_ms <= rules.duplicate_ms();
    let (first_case_id, first_case_no) = if previous.first_case_id.is_empty() {
        (previous.case_id.as_str(), previous.case_no.as_str())
    } else {
        (previous.first_case_id.as_str(), previous.first_case_no.as_str())
    };
    Some(Link { by, previous, duplicate, first_case_id, first_case_no })
}

/// Text as compared: no spaces or punctuation, full-width letters and digits as ASCII, lower case
/// — "朝阳路 12 号" and "朝阳路１２号。" are one place.
pub fn normalise(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        })
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A digest of a request's words (title and description, normalised): equal for the same words,
/// whatever their spacing and punctuation. Stored instead of the text.
pub fn digest(title: &str, description: &str) -> String {
    let text = normalise(&format!("{title}{description}"));
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, text.as_bytes()).simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn mark(case: &str, at_day: i64) -> Mark {
        Mark {
            case_id: case.into(),
            case_no: format!("NO-{case}"),
            channel: "hotline".into(),
            sub_item: "05.01".into(),
            citizen_key: "k1".into(),
            community: "cm-lizhi".into(),
            place: normalise("朝阳路12号"),
            digest: digest("", "楼下工地半夜施工"),
            at_ms: at_day * DAY,
            ..Mark::default()
        }
    }

    #[test]
    fn the_same_citizen_with_the_same_problem_repeats_the_latest_case() {
        let r = RepeatRules::default();
        let first = mark("a", 0);
        let mut second = mark("b", 10);
        second.first_case_id = "a".into();
        second.first_case_no = "NO-a".into();
        let mut now = mark("c", 20);
        now.digest = digest("", "工地又在夜里施工");
        let earlier = [first.clone(), second.clone()];
        let l = link(&r, &now, &earlier).expect("a repeat");
        assert_eq!((l.by, l.previous.case_id.as_str(), l.first_case_id, l.duplicate), (By::Citizen, "b", "a", false));

        let only_first = [first.clone()];
        let l = link(&r, &now, &only_first).unwrap();
        assert_eq!((l.first_case_id, l.first_case_no), ("a", "NO-a"));
    }

    #[test]
    fn another_problem_another_citizen_elsewhere_or_too_long_ago_is_no_repeat() {
        let r = RepeatRules::default();
        let now = mark("now", 40);
        let mut other_problem = mark("x", 39);
        other_problem.sub_item = "01.03".into();
        let mut elsewhere = mark("y", 39);
        elsewhere.citizen_key = "k2".into();
        elsewhere.place = normalise("幸福路1号");
        let long_ago = mark("z", 9);
        assert_eq!(link(&r, &now, &[other_problem, elsewhere, long_ago.clone()]), None);
        assert!(link(&r, &now, &[mark("w", 10)]).is_some(), "30 days back is within the window");
        assert_eq!(link(&r, &now, std::slice::from_ref(&now)), None, "a case does not repeat itself");
        let mut unknown = now.clone();
        unknown.case_id = "u".into();
        unknown.citizen_key.clear();
        unknown.place.clear();
        let mut earlier_unknown = long_ago;
        earlier_unknown.citizen_key.clear();
        earlier_unknown.at_ms = 39 * DAY;
        earlier_unknown.place.clear();
        assert_eq!(link(&r, &unknown, &[earlier_unknown]), None, "no citizen and no address: nothing to match on");
    }

    #[test]
    fn the_same_place_links_when_the_citizen_differs_and_the_citizen_wins_over_the_place() {
        let r = RepeatRules::default();
        let mut neighbour = mark("n", 5);
        neighbour.citizen_key = "k2".into();
        neighbour.place = normalise("朝阳路 １２ 号。");
        let now = mark("now", 6);
        let l = link(&r, &now, std::slice::from_ref(&neighbour)).unwrap();
        assert_eq!((l.by, l.previous.case_id.as_str()), (By::Place, "n"));
        let own = mark("o", 1);
        let both = [neighbour, own];
        let l = link(&r, &now, &both).unwrap();
        assert_eq!((l.by, l.previous.case_id.as_str()), (By::Citizen, "o"), "the citizen's own earlier case, though older");
        let mut other_community = mark("p", 5);
        other_community.citizen_key = "k3".into();
        other_community.community = "cm-other".into();
        assert_eq!(link(&r, &now, &[other_community]), None, "the same address in another community is another place");
    }

    #[test]
    fn the_same_words_from_the_same_channel_soon_after_are_a_duplicate() {
        let r = RepeatRules::default();
        let first = mark("a", 0);
        let mut again = mark("b", 0);
        again.at_ms += 3 * 60_000;
        again.digest = digest("", "楼下工地，半夜施工！");
        let l = link(&r, &again, std::slice::from_ref(&first)).unwrap();
        assert!(l.duplicate);
        let mut by_web = again.clone();
        by_web.channel = "web".into();
        assert!(!link(&r, &by_web, std::slice::from_ref(&first)).unwrap().duplicate, "another channel: a repeat, not a duplicate");
        let mut days_later = again.clone();
        days_later.at_ms = 3 * DAY;
        assert!(!link(&r, &days_later, std::slice::from_ref(&first)).unwrap().duplicate, "days later: a repeat");
    }

    #[test]
    fn normalising_ignores_spacing_punctuation_and_width() {
        assert_eq!(normalise("朝阳路 12 号"), normalise("朝阳路１２号。"));
        assert_eq!(normalise("Ａ座 3 单元"), "a座3单元");
        assert_ne!(digest("噪音", "工地"), digest("工地", "扬尘"));
        assert_eq!(digest("", "工地 半夜"), digest("工地", "半夜。"));
    }

    #[test]
    fn bad_rules_are_named() {
        assert!(RepeatRules::default().problems().is_empty());
        let bad = RepeatRules { window: Limit::Days(1), duplicate_window: Limit::Days(2) };
        assert_eq!(bad.problems().len(), 1, "{:?}", bad.problems());
        let bad = RepeatRules { window: Limit::WorkingDays(3), duplicate_window: Limit::Days(0) };
        assert_eq!(bad.problems().len(), 2, "{:?}", bad.problems());
    }
}
