//! Keyword index and matching, and the text normalisation both keywords and citizens' text go
//! through.

use std::collections::BTreeMap;

/// A distinct normalised keyword and every sub-item that lists it.
#[derive(Debug, Clone)]
pub(super) struct IndexedKeyword {
    pub(super) normalized: String,
    pub(super) weight: u32,
    /// (position in `flat`, keyword as written in that sub-item).
    pub(super) owners: Vec<(usize, String)>,
}

/// Occurrences of each keyword in `text`, leaving out occurrences that lie inside an
/// occurrence of a longer keyword, so a phrase is counted once and not again for every
/// shorter word it contains. Returns (keyword index, count) in keyword order.
pub(super) fn count_hits(keywords: &[IndexedKeyword], text: &str) -> Vec<(usize, u32)> {
    if text.is_empty() {
        return Vec::new();
    }
    // (start, end, keyword) in bytes of `text`
    let mut hits: Vec<(usize, usize, usize)> = Vec::new();
    for (i, keyword) in keywords.iter().enumerate() {
        for (start, found) in text.match_indices(keyword.normalized.as_str()) {
            hits.push((start, start + found.len(), i));
        }
    }
    // Longest first, so containers are accepted before what they contain.
    hits.sort_by(|a, b| (b.1 - b.0).cmp(&(a.1 - a.0)).then(a.0.cmp(&b.0)).then(a.2.cmp(&b.2)));
    let mut accepted: Vec<(usize, usize, usize)> = Vec::with_capacity(hits.len());
    for hit in hits {
        let inside_longer = accepted.iter().any(|a| a.1 - a.0 > hit.1 - hit.0 && a.0 <= hit.0 && hit.1 <= a.1);
        if !inside_longer {
            accepted.push(hit);
        }
    }
    let mut counts: BTreeMap<usize, u32> = BTreeMap::new();
    for (_, _, i) in accepted {
        *counts.entry(i).or_default() += 1;
    }
    counts.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Text normalisation
// ---------------------------------------------------------------------------------------------

/// Stands in for any run of punctuation. Punctuation separates rather than vanishes so that
/// a keyword cannot match across a clause break ("…不停，电话…" must not read as 停电).
pub(super) const SEPARATOR: char = '\u{1f}';

/// Folds text so that keyword and citizen text compare equal despite typing differences:
/// full-width forms become half-width (ＫＴＶ → ktv), ASCII is lower-cased, whitespace is
/// dropped (phone transcripts put spaces anywhere), and each run of punctuation, full- or
/// half-width, becomes one [`SEPARATOR`].
pub(super) fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_separator = false;
    for c in text.chars() {
        let c = fold_width(c);
        if c.is_whitespace() || is_invisible(c) {
            continue;
        }
        if is_punctuation(c) {
            pending_separator = !out.is_empty();
            continue;
        }
        if pending_separator {
            out.push(SEPARATOR);
            pending_separator = false;
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn fold_width(c: char) -> char {
    match c {
        // Full-width ASCII variants (！ .. ～) sit at a fixed offset from ASCII.
        '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}')
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c,
            '\u{00a1}'..='\u{00bf}'          // Latin-1 punctuation and signs (·, «, »)
            | '\u{2010}'..='\u{205e}'        // dashes, “ ” ‘ ’, …, ※
            | '\u{3001}'..='\u{3004}'        // 、 。 〃
            | '\u{3008}'..='\u{3020}'        // 〈 〉 《 》 「 」 【 】 〜
            | '\u{3030}'
            | '\u{303d}'
            | '\u{fe10}'..='\u{fe6b}'        // vertical and small forms
            | '\u{ff5f}'..='\u{ff65}'        // half-width 「 」 、 ･
        )
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::super::{Taxonomy, Urgency, classify};
    use super::*;

    fn default() -> Taxonomy {
        Taxonomy::default_taxonomy()
    }

    #[test]
    fn normalisation_ignores_width_case_whitespace_and_punctuation_style() {
        let t = default();
        let a = classify(&t, "", "楼下ＫＴＶ太 吵");
        let b = classify(&t, "", "楼下ktv太吵");
        assert_eq!(a, b);
        assert_eq!(a.sub_item, "05.01");
        assert_eq!(a.matched, ["KTV", "太吵"]);

        assert_eq!(normalize("ＰＭ２．５"), normalize("pm2.5"));
        assert_eq!(normalize("燃气　泄漏"), "燃气泄漏");
        assert_eq!(normalize("“停水”，"), "停水");
        assert_eq!(normalize("不停，电话"), format!("不停{SEPARATOR}电话"));
        // A clause break keeps "不停，电话" from reading as 停电.
        assert_eq!(classify(&t, "", "他们不停，电话也打不通").urgency, Urgency::Normal);
        assert_eq!(classify(&t, "", "空气里ＰＭ２．５超标").sub_item, "05.02");
    }
}
