//! Classification domain: the taxonomy (分类体系) of citizens' requests (诉求), keyword
//! classification into a sub-item (小项), and urgency (紧急程度: 紧急 / 一般 / 复杂).
//!
//! Everything here is pure: no I/O, no clock, no randomness, so the same text and taxonomy
//! always yield the same [`Classification`] — a clerk reviewing a case (人工复核) and a replay
//! of the event log must agree.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The demo district's taxonomy file, which is also Jiesu's default taxonomy
/// (十大类二十二小项). A district may replace it with its own file.
pub const DEFAULT_TAXONOMY_TOML: &str =
    include_str!("../../../deploy/districts/demo/taxonomy.toml");

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Errors of the classification domain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// The taxonomy text is not TOML of the expected shape.
    #[error("taxonomy is not valid TOML: {0}")]
    TaxonomyToml(#[from] toml::de::Error),
    /// The taxonomy parsed but breaks one or more rules; every problem found is listed so a
    /// district operator can fix the file in one pass.
    #[error("invalid taxonomy ({} problem(s)): {}", .0.len(), join_problems(.0))]
    InvalidTaxonomy(Vec<TaxonomyProblem>),
}

/// One broken rule in a taxonomy file, carried by [`DomainError::InvalidTaxonomy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaxonomyProblem {
    /// The file declares no category at all.
    NoCategories,
    /// A required text field (code, name, name_en) is empty.
    BlankField {
        location: String,
        field: &'static str,
    },
    /// Two categories (大类) share a code.
    DuplicateCategoryCode { code: String },
    /// Two sub-items (小项) share a code, possibly under different categories.
    DuplicateSubItemCode { code: String },
    /// A sub-item's code does not start with its category's code and a dot ("01.03" under "01").
    SubItemOutsideCategory { sub_item: String, category: String },
    /// A category has no sub-item, so nothing could ever be classified into it.
    CategoryWithoutSubItems { category: String },
    /// A sub-item has no keyword, so classification could never reach it.
    EmptyKeywords { sub_item: String },
    /// A keyword is empty once whitespace and punctuation are ignored; it would match any text.
    BlankKeyword { owner: String },
    /// No `fallback` sub-item (兜底小项) is declared.
    MissingFallback,
    /// The declared `fallback` names no sub-item of the taxonomy.
    UnknownFallback { code: String },
}

impl fmt::Display for TaxonomyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCategories => write!(f, "no categories declared"),
            Self::BlankField { location, field } => write!(f, "{location}: `{field}` is empty"),
            Self::DuplicateCategoryCode { code } => write!(f, "duplicate category code {code:?}"),
            Self::DuplicateSubItemCode { code } => write!(f, "duplicate sub-item code {code:?}"),
            Self::SubItemOutsideCategory { sub_item, category } => write!(
                f,
                "sub-item {sub_item:?} is listed under category {category:?} \
                 but its code does not start with \"{category}.\""
            ),
            Self::CategoryWithoutSubItems { category } => {
                write!(f, "category {category:?} has no sub-items")
            }
            Self::EmptyKeywords { sub_item } => write!(f, "sub-item {sub_item:?} has no keywords"),
            Self::BlankKeyword { owner } => write!(f, "{owner} has a blank keyword"),
            Self::MissingFallback => write!(f, "no `fallback` sub-item declared"),
            Self::UnknownFallback { code } => {
                write!(f, "fallback {code:?} is not a sub-item of the taxonomy")
            }
        }
    }
}

fn join_problems(problems: &[TaxonomyProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

// ---------------------------------------------------------------------------------------------
// Taxonomy (分类体系)
// ---------------------------------------------------------------------------------------------

/// A sub-item (小项), the unit a request is classified into, e.g. "01.03 占道经营与乱停放".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubItem {
    /// Code "<category>.<nn>", e.g. "01.03".
    #[serde(default)]
    pub code: String,
    /// Chinese name (名称), e.g. "占道经营与乱停放".
    #[serde(default)]
    pub name: String,
    /// English name.
    #[serde(default)]
    pub name_en: String,
    /// Department that leads this sub-item when it differs from its category's lead
    /// (牵头部门), e.g. water supply under a utilities category led by urban management.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<String>,
    /// Words citizens actually use for this kind of problem (关键词).
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// A category (大类), e.g. "01 城市管理", with its lead department (牵头部门).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Code, e.g. "01".
    #[serde(default)]
    pub code: String,
    /// Chinese name, e.g. "城市管理".
    #[serde(default)]
    pub name: String,
    /// English name.
    #[serde(default)]
    pub name_en: String,
    /// Department id of the lead department, e.g. "dept-urban-management"; absent when no
    /// department on the platform fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<String>,
    /// Sub-items (小项) of this category.
    #[serde(default)]
    pub sub_items: Vec<SubItem>,
}

/// Keywords deciding urgency: 紧急 (emergency) and 复杂 (complex); anything else is 一般.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrgencyRules {
    /// 紧急: gas leak, fire, no water or power, danger to people.
    #[serde(default)]
    pub emergency: Vec<String>,
    /// 复杂: repeated, long-standing, several departments, many people.
    #[serde(default)]
    pub complex: Vec<String>,
}

/// A taxonomy as written in TOML, not yet validated. Turn it into a [`Taxonomy`] with
/// `Taxonomy::try_from`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxonomyFile {
    /// Code of the fallback sub-item (兜底小项) used when no keyword matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Urgency keywords.
    #[serde(default)]
    pub urgency: UrgencyRules,
    /// Categories (大类) in display order.
    #[serde(default)]
    pub categories: Vec<Category>,
}

/// A validated taxonomy (分类体系) with its keyword index, ready for [`classify`].
///
/// Only obtainable through validation ([`Taxonomy::parse`], `TryFrom<TaxonomyFile>`,
/// [`Taxonomy::default_taxonomy`]), so classification never has to cope with duplicate
/// codes or a missing fallback.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "TaxonomyFile", into = "TaxonomyFile")]
pub struct Taxonomy {
    file: TaxonomyFile,
    /// (category index, sub-item index) of every sub-item, in file order.
    flat: Vec<(usize, usize)>,
    /// Position of the fallback in `flat`.
    fallback: usize,
    keywords: Vec<IndexedKeyword>,
    emergency: Vec<(String, String)>,
    complex: Vec<(String, String)>,
}

/// A distinct normalised keyword and every sub-item that lists it.
#[derive(Debug, Clone)]
struct IndexedKeyword {
    normalized: String,
    weight: u32,
    /// (position in `flat`, keyword as written in that sub-item).
    owners: Vec<(usize, String)>,
}

impl PartialEq for Taxonomy {
    // The index is derived from the file, so comparing files is enough.
    fn eq(&self, other: &Self) -> bool {
        self.file == other.file
    }
}

impl Eq for Taxonomy {}

impl TryFrom<TaxonomyFile> for Taxonomy {
    type Error = DomainError;

    fn try_from(file: TaxonomyFile) -> Result<Self, Self::Error> {
        let problems = validate(&file);
        if !problems.is_empty() {
            return Err(DomainError::InvalidTaxonomy(problems));
        }
        Ok(Self::build(file))
    }
}

impl From<Taxonomy> for TaxonomyFile {
    fn from(taxonomy: Taxonomy) -> Self {
        taxonomy.file
    }
}

impl Taxonomy {
    /// Parses and validates a taxonomy written in TOML.
    pub fn parse(toml_text: &str) -> Result<Self, DomainError> {
        let file: TaxonomyFile = toml::from_str(toml_text)?;
        Self::try_from(file)
    }

    /// Jiesu's default taxonomy (10 categories, 22 sub-items), embedded at compile time.
    pub fn default_taxonomy() -> Self {
        // The embedded file is covered by `default_taxonomy_has_10_categories_22_sub_items`,
        // so a failure here is a build defect, not a runtime condition.
        Self::parse(DEFAULT_TAXONOMY_TOML).expect("embedded default taxonomy is valid")
    }

    /// Categories (大类) in file order.
    pub fn categories(&self) -> &[Category] {
        &self.file.categories
    }

    /// Every sub-item (小项) with its category, in file order.
    pub fn sub_items(&self) -> impl Iterator<Item = (&Category, &SubItem)> + '_ {
        self.flat.iter().map(|&(c, s)| {
            let category = &self.file.categories[c];
            (category, &category.sub_items[s])
        })
    }

    /// The category with this code, e.g. "01".
    pub fn category(&self, code: &str) -> Option<&Category> {
        self.file.categories.iter().find(|c| c.code == code)
    }

    /// The sub-item with this code, e.g. "01.03".
    pub fn sub_item(&self, code: &str) -> Option<&SubItem> {
        self.sub_items()
            .find(|(_, s)| s.code == code)
            .map(|(_, s)| s)
    }

    /// The category a sub-item belongs to; `None` when no sub-item has this code.
    pub fn category_of(&self, sub_item_code: &str) -> Option<&Category> {
        self.sub_items()
            .find(|(_, s)| s.code == sub_item_code)
            .map(|(c, _)| c)
    }

    /// The department leading a sub-item (牵头部门): its own `lead`, else its category's.
    pub fn lead_department(&self, sub_item_code: &str) -> Option<&str> {
        let (category, sub) = self.sub_items().find(|(_, s)| s.code == sub_item_code)?;
        sub.lead.as_deref().or(category.lead.as_deref())
    }

    /// The fallback sub-item (兜底小项) used when nothing matches.
    pub fn fallback(&self) -> &SubItem {
        let (c, s) = self.flat[self.fallback];
        &self.file.categories[c].sub_items[s]
    }

    /// Urgency keywords as written in the file.
    pub fn urgency_rules(&self) -> &UrgencyRules {
        &self.file.urgency
    }

    /// The taxonomy as written, e.g. to show or export it.
    pub fn as_file(&self) -> &TaxonomyFile {
        &self.file
    }

    /// Same as the free function [`classify`].
    pub fn classify(&self, title: &str, description: &str) -> Classification {
        classify(self, title, description)
    }

    fn build(file: TaxonomyFile) -> Self {
        let flat: Vec<(usize, usize)> = file
            .categories
            .iter()
            .enumerate()
            .flat_map(|(c, cat)| (0..cat.sub_items.len()).map(move |s| (c, s)))
            .collect();
        let sub = |&(c, s): &(usize, usize)| &file.categories[c].sub_items[s];
        let fallback_code = file.fallback.as_deref().unwrap_or_default();
        // Validation has checked that the fallback exists; 0 only keeps this total.
        let fallback = flat
            .iter()
            .position(|p| sub(p).code == fallback_code)
            .unwrap_or(0);

        // One entry per distinct normalised keyword, so a keyword shared by two sub-items is
        // found once and credited to both, and "PM2.5"/"pm2.5" in one sub-item count once.
        let mut by_text: BTreeMap<String, usize> = BTreeMap::new();
        let mut keywords: Vec<IndexedKeyword> = Vec::new();
        for (pos, p) in flat.iter().enumerate() {
            for written in &sub(p).keywords {
                let normalized = normalize(written);
                let i = *by_text.entry(normalized.clone()).or_insert_with(|| {
                    keywords.push(IndexedKeyword {
                        weight: keyword_weight(&normalized),
                        normalized,
                        owners: Vec::new(),
                    });
                    keywords.len() - 1
                });
                if !keywords[i].owners.iter().any(|(owner, _)| *owner == pos) {
                    keywords[i].owners.push((pos, written.clone()));
                }
            }
        }

        let index = |list: &[String]| -> Vec<(String, String)> {
            let mut out: Vec<(String, String)> = Vec::new();
            for written in list {
                let normalized = normalize(written);
                if !out.iter().any(|(n, _)| *n == normalized) {
                    out.push((normalized, written.clone()));
                }
            }
            out
        };
        let emergency = index(&file.urgency.emergency);
        let complex = index(&file.urgency.complex);

        Self {
            flat,
            fallback,
            keywords,
            emergency,
            complex,
            file,
        }
    }
}

/// Checks every rule and returns all problems found, in file order.
fn validate(file: &TaxonomyFile) -> Vec<TaxonomyProblem> {
    use TaxonomyProblem as P;
    let mut problems = Vec::new();

    if file.categories.is_empty() {
        problems.push(P::NoCategories);
    }

    let mut category_codes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut sub_codes: BTreeMap<&str, usize> = BTreeMap::new();
    for (ci, category) in file.categories.iter().enumerate() {
        let cat_label = label(&category.code, || format!("category #{}", ci + 1));
        blank_fields(
            &mut problems,
            &cat_label,
            &category.code,
            &category.name,
            &category.name_en,
        );
        if !category.code.trim().is_empty() {
            let seen = category_codes.entry(&category.code).or_default();
            *seen += 1;
            if *seen == 2 {
                problems.push(P::DuplicateCategoryCode {
                    code: category.code.clone(),
                });
            }
        }
        if category.sub_items.is_empty() {
            problems.push(P::CategoryWithoutSubItems {
                category: cat_label.clone(),
            });
        }

        for (si, sub) in category.sub_items.iter().enumerate() {
            let sub_label = label(&sub.code, || format!("sub-item #{} of {cat_label}", si + 1));
            blank_fields(
                &mut problems,
                &sub_label,
                &sub.code,
                &sub.name,
                &sub.name_en,
            );
            if !sub.code.trim().is_empty() {
                let seen = sub_codes.entry(&sub.code).or_default();
                *seen += 1;
                if *seen == 2 {
                    problems.push(P::DuplicateSubItemCode {
                        code: sub.code.clone(),
                    });
                }
                let under_category = sub
                    .code
                    .strip_prefix(category.code.as_str())
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|rest| !rest.is_empty());
                if !under_category {
                    problems.push(P::SubItemOutsideCategory {
                        sub_item: sub.code.clone(),
                        category: category.code.clone(),
                    });
                }
            }
            if sub.keywords.is_empty() {
                problems.push(P::EmptyKeywords {
                    sub_item: sub_label.clone(),
                });
            } else if sub.keywords.iter().any(|k| normalize(k).is_empty()) {
                problems.push(P::BlankKeyword {
                    owner: format!("sub-item {sub_label:?}"),
                });
            }
        }
    }

    for (list, words) in [
        ("emergency", &file.urgency.emergency),
        ("complex", &file.urgency.complex),
    ] {
        if words.iter().any(|k| normalize(k).is_empty()) {
            problems.push(P::BlankKeyword {
                owner: format!("urgency.{list}"),
            });
        }
    }

    match file.fallback.as_deref() {
        None => problems.push(P::MissingFallback),
        Some(code) if code.trim().is_empty() => problems.push(P::MissingFallback),
        // Exact comparison: `build` looks the fallback up by the same exact code.
        Some(code) => {
            let known = file
                .categories
                .iter()
                .flat_map(|c| &c.sub_items)
                .any(|s| s.code == code);
            if !known {
                problems.push(P::UnknownFallback {
                    code: code.to_owned(),
                });
            }
        }
    }
    problems
}

fn label(code: &str, otherwise: impl FnOnce() -> String) -> String {
    if code.trim().is_empty() {
        otherwise()
    } else {
        code.to_owned()
    }
}

fn blank_fields(
    problems: &mut Vec<TaxonomyProblem>,
    location: &str,
    code: &str,
    name: &str,
    name_en: &str,
) {
    for (field, value) in [("code", code), ("name", name), ("name_en", name_en)] {
        if value.trim().is_empty() {
            problems.push(TaxonomyProblem::BlankField {
                location: location.to_owned(),
                field,
            });
        }
    }
}

pub use jiesu_reference::Urgency;

// ---------------------------------------------------------------------------------------------
// Classification (分类)
// ---------------------------------------------------------------------------------------------

/// Result of classifying one request; a clerk reviews it before or after dispatch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// Sub-item code (小项), e.g. "01.03".
    pub sub_item: String,
    /// Category code (大类), e.g. "01".
    pub category: String,
    /// Urgency (紧急 / 一般 / 复杂).
    pub urgency: Urgency,
    /// 0 when the choice is a guess (no match, or a tie); towards 1 with strong, unambiguous
    /// evidence.
    pub confidence: f32,
    /// Keywords that decided the result, as written in the taxonomy: first those supporting
    /// the sub-item (strongest first), then those that set the urgency.
    pub matched: Vec<String>,
    /// True when nothing matched and the fallback sub-item (兜底小项) was used.
    pub fallback: bool,
}

/// Title hits count double: the title is the clerk's or citizen's own summary of the problem,
/// while descriptions wander (where it happened, who was called before…).
const TITLE_FACTOR: u32 = 2;
const DESCRIPTION_FACTOR: u32 = 1;
/// Repeating a word is some evidence, but a rant naming 噪音 ten times is not ten complaints.
const MAX_COUNTED_OCCURRENCES: u32 = 5;
/// Score (in keyword-weight units, see [`keyword_weight`]) at which evidence is "fairly
/// strong": one 2-character title word or one 4-character description phrase.
const CONFIDENCE_SCALE: f32 = 2000.0;

/// Weight of a keyword, in thousandths, growing with its length: a 4-character phrase
/// (拖欠工资) is far less likely to appear by accident than a 2-character word (工资).
/// Integer so that equal evidence gives exactly equal scores and ties break by code alone.
fn keyword_weight(normalized: &str) -> u32 {
    let chars = normalized.chars().filter(|&c| c != SEPARATOR).count() as u32;
    (chars * 500).clamp(500, 3000)
}

/// Classifies a request by its title and description (标题 / 诉求内容).
///
/// Each sub-item scores the weight of every keyword found, doubled in the title, with
/// diminishing credit for repeats; a keyword found only inside a longer found keyword is
/// not counted (拖欠工资 does not also count 工资). The highest score wins, ties going to the
/// lower code. Confidence grows with the winning score and with its margin over the
/// runner-up, and is 0 on a tie. With no match the fallback sub-item is returned with
/// confidence 0 and `fallback = true`. Urgency is emergency if any emergency keyword occurs,
/// else complex if any complex keyword occurs, else normal.
pub fn classify(taxonomy: &Taxonomy, title: &str, description: &str) -> Classification {
    let title = normalize(title);
    let description = normalize(description);

    // score per position in `taxonomy.flat`; per sub-item, credit per keyword as written.
    let mut scores = vec![0u32; taxonomy.flat.len()];
    let mut credit: BTreeMap<usize, BTreeMap<String, u32>> = BTreeMap::new();
    for (text, factor) in [(&title, TITLE_FACTOR), (&description, DESCRIPTION_FACTOR)] {
        for (kw, count) in count_hits(&taxonomy.keywords, text) {
            let keyword = &taxonomy.keywords[kw];
            let counted = count.min(MAX_COUNTED_OCCURRENCES);
            // first occurrence full weight, each further one half
            let points = keyword.weight * factor * (counted + 1) / 2;
            for (pos, written) in &keyword.owners {
                scores[*pos] += points;
                *credit
                    .entry(*pos)
                    .or_default()
                    .entry(written.clone())
                    .or_default() += points;
            }
        }
    }

    // Highest score, then lowest code: the order of the file must not decide a tie.
    let code_at = |pos: usize| {
        let (c, s) = taxonomy.flat[pos];
        taxonomy.file.categories[c].sub_items[s].code.as_str()
    };
    let mut ranked: Vec<usize> = (0..scores.len()).filter(|&p| scores[p] > 0).collect();
    ranked.sort_by(|&a, &b| {
        scores[b]
            .cmp(&scores[a])
            .then_with(|| code_at(a).cmp(code_at(b)))
    });

    let (urgency, urgency_words) = assess_urgency(taxonomy, &title, &description);

    let (winner, confidence, mut matched, fallback) = match ranked.first() {
        None => (taxonomy.fallback, 0.0, Vec::new(), true),
        Some(&best) => {
            let best_score = scores[best] as f32;
            let runner_up = ranked.get(1).map_or(0.0, |&p| scores[p] as f32);
            let margin = (best_score - runner_up) / best_score;
            let strength = 1.0 - (-best_score / CONFIDENCE_SCALE).exp();
            let confidence = ((margin * strength).clamp(0.0, 1.0) * 1000.0).round() / 1000.0;
            let mut words: Vec<(String, u32)> = credit
                .remove(&best)
                .unwrap_or_default()
                .into_iter()
                .collect();
            words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            (
                best,
                confidence,
                words.into_iter().map(|(w, _)| w).collect(),
                false,
            )
        }
    };
    for word in urgency_words {
        if !matched.contains(&word) {
            matched.push(word);
        }
    }

    let (c, s) = taxonomy.flat[winner];
    let category = &taxonomy.file.categories[c];
    Classification {
        sub_item: category.sub_items[s].code.clone(),
        category: category.code.clone(),
        urgency,
        confidence,
        matched,
        fallback,
    }
}

/// Occurrences of each keyword in `text`, leaving out occurrences that lie inside an
/// occurrence of a longer keyword, so a phrase is counted once and not again for every
/// shorter word it contains. Returns (keyword index, count) in keyword order.
fn count_hits(keywords: &[IndexedKeyword], text: &str) -> Vec<(usize, u32)> {
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
    hits.sort_by(|a, b| {
        (b.1 - b.0)
            .cmp(&(a.1 - a.0))
            .then(a.0.cmp(&b.0))
            .then(a.2.cmp(&b.2))
    });
    let mut accepted: Vec<(usize, usize, usize)> = Vec::with_capacity(hits.len());
    for hit in hits {
        let inside_longer = accepted
            .iter()
            .any(|a| a.1 - a.0 > hit.1 - hit.0 && a.0 <= hit.0 && hit.1 <= a.1);
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

/// Urgency and the keywords that set it. No negation handling on purpose: "是不是燃气泄漏"
/// must still raise an emergency, and a clerk can downgrade a false alarm in seconds.
fn assess_urgency(taxonomy: &Taxonomy, title: &str, description: &str) -> (Urgency, Vec<String>) {
    let found = |list: &[(String, String)]| -> Vec<String> {
        list.iter()
            .filter(|(n, _)| title.contains(n.as_str()) || description.contains(n.as_str()))
            .map(|(_, written)| written.clone())
            .collect()
    };
    let emergency = found(&taxonomy.emergency);
    if !emergency.is_empty() {
        return (Urgency::Emergency, emergency);
    }
    let complex = found(&taxonomy.complex);
    if !complex.is_empty() {
        return (Urgency::Complex, complex);
    }
    (Urgency::Normal, Vec::new())
}

// ---------------------------------------------------------------------------------------------
// Text normalisation
// ---------------------------------------------------------------------------------------------

/// Stands in for any run of punctuation. Punctuation separates rather than vanishes so that
/// a keyword cannot match across a clause break ("…不停，电话…" must not read as 停电).
const SEPARATOR: char = '\u{1f}';

/// Folds text so that keyword and citizen text compare equal despite typing differences:
/// full-width forms become half-width (ＫＴＶ → ktv), ASCII is lower-cased, whitespace is
/// dropped (phone transcripts put spaces anywhere), and each run of punctuation, full- or
/// half-width, becomes one [`SEPARATOR`].
fn normalize(text: &str) -> String {
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
    use super::*;

    fn default() -> Taxonomy {
        Taxonomy::default_taxonomy()
    }

    #[test]
    fn default_taxonomy_has_10_categories_22_sub_items() {
        let t = default();
        assert_eq!(t.categories().len(), 10);
        assert_eq!(t.sub_items().count(), 22);
        let codes: Vec<&str> = t.categories().iter().map(|c| c.code.as_str()).collect();
        assert_eq!(
            codes,
            ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10"]
        );
        assert_eq!(t.fallback().code, "10.02");
        assert_eq!(t.fallback().name, "咨询建议与其他");
        assert_eq!(t.sub_item("01.03").unwrap().name, "占道经营与乱停放");
        assert_eq!(t.category_of("06.01").unwrap().name, "劳动与社保");
        assert!(t.sub_item("11.01").is_none());
        assert!(t.category_of("01").is_none());
        assert_eq!(
            t.category("05").unwrap().lead.as_deref(),
            Some("dept-environment")
        );
    }

    #[test]
    fn default_taxonomy_names_match_domain_table() {
        let expected = [
            ("01.01", "市容环境卫生"),
            ("01.02", "违法建设"),
            ("01.03", "占道经营与乱停放"),
            ("02.01", "物业管理"),
            ("02.02", "群租房"),
            ("02.03", "房产证办理"),
            ("03.01", "供水停水"),
            ("03.02", "供电停电"),
            ("03.03", "燃气供暖"),
            ("04.01", "道路与市政设施"),
            ("04.02", "公共交通"),
            ("05.01", "噪声与施工扰民"),
            ("05.02", "扬尘与污染"),
            ("06.01", "欠薪"),
            ("06.02", "社保医保"),
            ("07.01", "教育"),
            ("07.02", "医疗卫生"),
            ("08.01", "消费维权与食品药品"),
            ("08.02", "价格与市场秩序"),
            ("09.01", "治安与消防隐患"),
            ("10.01", "农村事务"),
            ("10.02", "咨询建议与其他"),
        ];
        let t = default();
        let actual: Vec<(&str, &str)> = t
            .sub_items()
            .map(|(_, s)| (s.code.as_str(), s.name.as_str()))
            .collect();
        assert_eq!(actual, expected);
        assert!(
            t.sub_items()
                .all(|(c, s)| !c.name_en.is_empty() && !s.name_en.is_empty())
        );
    }

    #[test]
    fn default_taxonomy_keywords_are_rich_and_unambiguous() {
        let t = default();
        let mut owner: BTreeMap<String, &str> = BTreeMap::new();
        for (_, sub) in t.sub_items() {
            let n = sub.keywords.len();
            assert!((15..=40).contains(&n), "{} has {n} keywords", sub.code);
            for k in &sub.keywords {
                let norm = normalize(k);
                assert!(
                    norm.chars().count() >= 2,
                    "{}: one-character keyword {k:?}",
                    sub.code
                );
                if let Some(other) = owner.insert(norm, &sub.code) {
                    panic!("keyword {k:?} is in both {other} and {}", sub.code);
                }
            }
        }
    }

    #[test]
    fn default_leads_are_demo_departments() {
        let t = default();
        let known = [
            "dept-urban-management",
            "dept-housing",
            "dept-water",
            "dept-environment",
            "dept-labour",
            "dept-market",
        ];
        for (c, s) in t.sub_items() {
            for lead in [c.lead.as_deref(), s.lead.as_deref()].into_iter().flatten() {
                assert!(
                    known.contains(&lead),
                    "{}: unknown department {lead}",
                    s.code
                );
            }
        }
        assert_eq!(t.lead_department("01.03"), Some("dept-urban-management"));
        assert_eq!(t.lead_department("03.01"), Some("dept-water"));
        assert_eq!(t.lead_department("03.02"), Some("dept-urban-management"));
        assert_eq!(t.lead_department("06.01"), Some("dept-labour"));
        assert_eq!(t.lead_department("09.01"), None);
        assert_eq!(t.lead_department("99.99"), None);
    }

    /// Realistic complaints, as a 12345 clerk would type them, with the expected sub-item.
    #[rustfmt::skip]
    const COMPLAINTS: &[(&str, &str, &str)] = &[
        ("", "小区门口有人私装地锁，占用公共车位", "01.03"),
        ("地铁口电动车乱停乱放", "灵芝地铁站A出口电动车乱停乱放，无人管理，行人无法通行", "01.03"),
        ("共享单车堵路", "楼下共享单车乱停，把消防通道都堵上了", "01.03"),
        ("占道经营", "菜市场外面每天晚上都有人摆摊卖水果，占道经营", "01.03"),
        ("", "小区垃圾桶满了好几天没人清，臭气熏天，到处都是小广告", "01.01"),
        ("路边垃圾堆", "路边有一大堆建筑垃圾，乱倒垃圾没人管", "01.01"),
        ("楼顶违建", "顶楼住户在楼顶加盖了一间彩钢房，属于违章建筑", "01.02"),
        ("", "邻居在院子里私搭乱建，还扩建了两间房", "01.02"),
        ("物业不作为", "物业费年年交，电梯坏了一个月都没人修", "02.01"),
        ("", "小区保洁不到位，垃圾清运不及时，物业公司也不管", "02.01"),
        ("群租", "对门房子被二房东打了隔断，住了十几个人，进出人员混杂", "02.02"),
        ("房产证办不下来", "买房已经五年了，开发商一直不给办房产证", "02.03"),
        ("", "回迁房交房三年了还办不了证，不动产登记一直卡着", "02.03"),
        ("停水", "小区从昨天起停水，也没有通知，家里一点水都没有", "03.01"),
        ("水质问题", "自来水发黄浑浊，水压小，二次供水水箱很久没清洗", "03.01"),
        ("停电", "我们整栋楼突然停电了，供电公司电话打不通", "03.02"),
        ("", "这个月电费特别高，怀疑电表有问题", "03.02"),
        ("", "家里闻到很浓的煤气味", "03.03"),
        ("暖气不热", "供暖已经开始一周了，暖气片还是凉的，室温只有十五度", "03.03"),
        ("井盖丢失", "路口的井盖丢了，晚上很危险", "04.01"),
        ("", "马路上有个大坑，路灯也不亮，晚上骑车很危险", "04.01"),
        ("公交班次少", "建议增加公交车班次，早高峰等车要四十分钟", "04.02"),
        ("", "出租车司机拒载还绕路", "04.02"),
        ("施工扰民", "工地夜间施工噪音太大，晚上十一点还在打桩", "05.01"),
        ("", "楼下广场舞音响声音太大，每天吵到晚上十点", "05.01"),
        ("扬尘", "工地渣土车不苫盖，扬尘特别严重，到处是灰尘", "05.02"),
        ("", "小区旁边饭馆油烟直排，还有一股恶臭", "05.02"),
        ("欠薪", "公司拖欠三个月工资不发", "06.01"),
        ("", "包工头跑了，我们二十多个农民工的工钱一直拿不到", "06.01"),
        ("社保", "单位一直没交社保，现在医保卡也用不了", "06.02"),
        ("", "想问一下养老金什么时候调整，退休金怎么这么少", "06.02"),
        ("入学问题", "孩子今年上小学，划片学校离家太远，入学太难了", "07.01"),
        ("", "培训机构收了学费就跑了，孩子的课外班也停了", "07.01"),
        ("看病难", "社区医院挂号难，医生态度也不好", "07.02"),
        ("", "在超市买到过期食品，孩子吃了拉肚子，商家不给退", "08.01"),
        ("", "健身房突然关门，会员卡里的钱退不了", "08.01"),
        ("乱收费", "停车场乱收费，没有明码标价", "08.02"),
        ("", "菜市场有个摊位电子秤缺斤少两", "08.02"),
        ("消防隐患", "楼道堆物很多，还有人飞线充电，电动车进楼", "09.01"),
        ("", "小区最近老有小偷，自行车被偷好几辆，希望派出所加强巡逻", "09.01"),
        ("村务问题", "村委会换届选举不公开，村干部把征地补偿款扣下了", "10.01"),
        ("", "镇上占用耕地建厂，土地补偿一直没给到村民", "10.01"),
        ("咨询", "请问办理居住证需要什么材料", "10.02"),
        ("表扬", "感谢社区工作人员，想给他们送一面锦旗", "10.02"),
    ];

    #[test]
    fn realistic_complaints_reach_every_sub_item() {
        let t = default();
        let mut failures = Vec::new();
        for (title, description, expected) in COMPLAINTS {
            let got = classify(&t, title, description);
            if got.sub_item != *expected || got.fallback {
                failures.push(format!(
                    "{title}|{description}: expected {expected}, got {got:?}"
                ));
            } else {
                assert_eq!(got.category, &expected[..2]);
                assert!(!got.matched.is_empty());
                assert!((0.0..=1.0).contains(&got.confidence));
            }
        }
        assert!(
            failures.is_empty(),
            "misclassified:\n{}",
            failures.join("\n")
        );

        for (_, sub) in t.sub_items() {
            assert!(
                COMPLAINTS.iter().any(|(_, _, code)| *code == sub.code),
                "no complaint reaches {}",
                sub.code
            );
        }
    }

    #[test]
    fn urgency_levels() {
        let t = default();
        let cases = [
            ("", "家里闻到很浓的煤气味", Urgency::Emergency),
            ("着火了", "楼下小饭馆着火了，一直在冒烟", Urgency::Emergency),
            ("", "小区停水两天了", Urgency::Emergency),
            ("", "整栋楼突然停电了", Urgency::Emergency),
            (
                "电梯困人",
                "电梯突然停了，有老人被困在里面",
                Urgency::Emergency,
            ),
            ("", "路口的井盖丢失了", Urgency::Emergency),
            (
                "",
                "大风把电线刮断了，电线掉落在人行道上",
                Urgency::Emergency,
            ),
            ("", "是不是燃气泄漏了，楼道里味道很大", Urgency::Emergency),
            ("", "违建问题多次反映，一直没解决", Urgency::Complex),
            ("", "这是历史遗留问题，涉及多个部门", Urgency::Complex),
            ("", "楼下广场舞太吵了", Urgency::Normal),
            ("", "物业费太贵", Urgency::Normal),
        ];
        for (title, description, expected) in cases {
            let got = classify(&t, title, description);
            assert_eq!(got.urgency, expected, "{title}|{description}: {got:?}");
        }
    }

    #[test]
    fn emergency_wins_over_complex_and_is_explained() {
        let t = default();
        let got = classify(&t, "又停水了", "小区停水问题已经多次反映，一直没解决");
        assert_eq!(got.urgency, Urgency::Emergency);
        assert_eq!(got.sub_item, "03.01");
        assert!(got.matched.iter().any(|m| m == "停水"));
        assert!(
            !got.matched.iter().any(|m| m == "多次反映"),
            "{:?}",
            got.matched
        );

        let got = classify(&t, "", "违建问题多次反映，一直没解决");
        assert_eq!(got.urgency, Urgency::Complex);
        assert!(got.matched.contains(&"多次反映".to_owned()));
        assert!(got.matched.contains(&"一直没解决".to_owned()));
    }

    #[test]
    fn gas_smell_is_gas_and_emergency() {
        let got = classify(&default(), "", "家里闻到很浓的煤气味");
        assert_eq!(got.sub_item, "03.03");
        assert_eq!(got.category, "03");
        assert_eq!(got.urgency, Urgency::Emergency);
        assert_eq!(got.matched, ["煤气味"]);
    }

    #[test]
    fn no_match_falls_back_with_zero_confidence() {
        let t = default();
        for (title, description) in [("", ""), ("   ", "，。！"), ("你好", "我找一下张三")]
        {
            let got = classify(&t, title, description);
            assert_eq!(got.sub_item, "10.02");
            assert_eq!(got.category, "10");
            assert_eq!(got.confidence, 0.0);
            assert!(got.fallback);
            assert!(got.matched.is_empty());
            assert_eq!(got.urgency, Urgency::Normal);
        }
        // Urgency is still assessed when the topic is unknown.
        let got = classify(&t, "", "快来人，有人晕倒了");
        assert!(got.fallback);
        assert_eq!(got.urgency, Urgency::Emergency);
        assert_eq!(got.matched, ["晕倒"]);
    }

    #[test]
    fn fallback_reached_by_its_own_keywords_is_not_a_fallback() {
        let got = classify(&default(), "", "请问办理居住证需要什么材料");
        assert_eq!(got.sub_item, "10.02");
        assert!(!got.fallback);
        assert!(got.confidence > 0.0);
    }

    #[test]
    fn longer_keyword_hides_the_shorter_one_inside_it() {
        let got = classify(&default(), "", "公司拖欠工资");
        assert_eq!(got.sub_item, "06.01");
        assert_eq!(got.matched, ["拖欠工资"]);

        // Across sub-items too: 占用消防通道 (01.03) is not also 消防通道 (09.01).
        let got = classify(&default(), "", "有车占用消防通道");
        assert_eq!(got.sub_item, "01.03");
        assert_eq!(got.matched, ["占用消防通道"]);
    }

    /// Two sub-items with identical evidence, written in reverse order, to check that the
    /// file's order never decides.
    fn tie_taxonomy(reverse: bool) -> Taxonomy {
        let a = r#"[[categories]]
code = "01"
name = "甲"
name_en = "A"
[[categories.sub_items]]
code = "01.01"
name = "甲一"
name_en = "A1"
keywords = ["噪音", "施工"]
"#;
        let b = r#"[[categories]]
code = "02"
name = "乙"
name_en = "B"
[[categories.sub_items]]
code = "02.01"
name = "乙一"
name_en = "B1"
keywords = ["施工", "噪音"]
[[categories.sub_items]]
code = "02.02"
name = "其他"
name_en = "Other"
keywords = ["咨询"]
"#;
        let body = if reverse {
            format!("{b}{a}")
        } else {
            format!("{a}{b}")
        };
        Taxonomy::parse(&format!("fallback = \"02.02\"\n{body}")).unwrap()
    }

    #[test]
    fn ties_break_by_lower_code_whatever_the_file_order() {
        for reverse in [false, true] {
            let t = tie_taxonomy(reverse);
            for _ in 0..3 {
                let got = classify(&t, "施工", "施工噪音");
                assert_eq!(got.sub_item, "01.01");
                assert_eq!(got.confidence, 0.0, "a tie is a guess");
                assert!(!got.fallback);
            }
        }
    }

    #[test]
    fn title_outweighs_description_and_longer_keywords_outweigh_shorter() {
        let t = default();
        // Same words, swapped between title and description: the title decides.
        assert_eq!(classify(&t, "噪音", "医院").sub_item, "05.01");
        assert_eq!(classify(&t, "医院", "噪音").sub_item, "07.02");
        // 4-character 拖欠工资 (06.01) beats 2-character 物业 (02.01).
        assert_eq!(classify(&t, "", "物业拖欠工资").sub_item, "06.01");
    }

    #[test]
    fn repeated_words_and_stronger_evidence_raise_confidence() {
        let t = default();
        let weak = classify(&t, "", "噪音");
        let strong = classify(&t, "施工扰民", "夜间施工噪音，一直在打桩，噪音太大");
        assert_eq!(weak.sub_item, "05.01");
        assert_eq!(strong.sub_item, "05.01");
        assert!(weak.confidence > 0.0 && weak.confidence < 0.5, "{weak:?}");
        assert!(strong.confidence > 0.9, "{strong:?}");
        assert!(
            strong.matched.starts_with(&["施工扰民".to_owned()]),
            "{:?}",
            strong.matched
        );

        // A runner-up lowers confidence in the same winner.
        let alone = classify(&t, "", "物业不管");
        let contested = classify(&t, "", "物业不管楼下噪音");
        assert_eq!(contested.sub_item, "02.01");
        assert!(
            contested.confidence < alone.confidence,
            "{contested:?} vs {alone:?}"
        );
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
        assert_eq!(
            classify(&t, "", "他们不停，电话也打不通").urgency,
            Urgency::Normal
        );
        assert_eq!(classify(&t, "", "空气里ＰＭ２．５超标").sub_item, "05.02");
    }

    #[test]
    fn classification_is_deterministic() {
        let t = default();
        let first = classify(&t, "物业", "电梯坏了，楼道堆物，垃圾没人清理，停车乱收费");
        for _ in 0..10 {
            assert_eq!(
                classify(&t, "物业", "电梯坏了，楼道堆物，垃圾没人清理，停车乱收费"),
                first
            );
        }
        let cloned = t.clone();
        assert_eq!(
            classify(
                &cloned,
                "物业",
                "电梯坏了，楼道堆物，垃圾没人清理，停车乱收费"
            ),
            first
        );
    }

    #[test]
    fn urgency_text_round_trip() {
        for u in [Urgency::Emergency, Urgency::Normal, Urgency::Complex] {
            assert_eq!(u.as_str().parse::<Urgency>().unwrap(), u);
            assert_eq!(u.label_zh().parse::<Urgency>().unwrap(), u);
            assert_eq!(u.to_string(), u.as_str());
        }
        assert_eq!(
            " Emergency ".parse::<Urgency>().unwrap(),
            Urgency::Emergency
        );
        assert_eq!(
            "urgent".parse::<Urgency>(),
            Err(DomainError::UnknownUrgency("urgent".to_owned()))
        );
    }

    // ---- validation ----------------------------------------------------------------------

    fn problems(toml_text: &str) -> Vec<TaxonomyProblem> {
        match Taxonomy::parse(toml_text) {
            Err(DomainError::InvalidTaxonomy(p)) => p,
            other => panic!("expected InvalidTaxonomy, got {other:?}"),
        }
    }

    const VALID: &str = r#"
fallback = "02.01"
[urgency]
emergency = ["着火"]
complex = ["多次反映"]
[[categories]]
code = "01"
name = "城市管理"
name_en = "City"
lead = "dept-urban-management"
[[categories.sub_items]]
code = "01.01"
name = "市容"
name_en = "Appearance"
keywords = ["垃圾"]
[[categories]]
code = "02"
name = "其他"
name_en = "Other"
[[categories.sub_items]]
code = "02.01"
name = "咨询"
name_en = "Enquiries"
keywords = ["咨询"]
"#;

    #[test]
    fn minimal_valid_taxonomy_parses() {
        let t = Taxonomy::parse(VALID).unwrap();
        assert_eq!(t.fallback().code, "02.01");
        assert_eq!(t.category_of("01.01").unwrap().code, "01");
        assert_eq!(
            classify(&t, "", "着火了，垃圾堆").urgency,
            Urgency::Emergency
        );
    }

    #[test]
    fn rejects_duplicate_category_codes() {
        let text = VALID
            .replace("code = \"02\"", "code = \"01\"")
            .replace("02.01", "01.02");
        assert_eq!(
            problems(&text),
            [TaxonomyProblem::DuplicateCategoryCode { code: "01".into() }]
        );
    }

    #[test]
    fn rejects_duplicate_sub_item_codes() {
        let text = VALID.replace("code = \"02.01\"", "code = \"01.01\"");
        let p = problems(&text);
        assert!(p.contains(&TaxonomyProblem::DuplicateSubItemCode {
            code: "01.01".into()
        }));
    }

    #[test]
    fn rejects_sub_item_outside_its_category() {
        let text = VALID.replace("code = \"01.01\"", "code = \"03.01\"");
        assert_eq!(
            problems(&text),
            [TaxonomyProblem::SubItemOutsideCategory {
                sub_item: "03.01".into(),
                category: "01".into()
            }]
        );
        // "010.1" shares the prefix characters but is not "01." + something.
        let text = VALID.replace("code = \"01.01\"", "code = \"010.1\"");
        assert_eq!(problems(&text).len(), 1);
        let text = VALID.replace("code = \"01.01\"", "code = \"01.\"");
        assert_eq!(problems(&text).len(), 1);
    }

    #[test]
    fn rejects_empty_and_blank_keywords() {
        let text = VALID.replace("keywords = [\"垃圾\"]", "keywords = []");
        assert_eq!(
            problems(&text),
            [TaxonomyProblem::EmptyKeywords {
                sub_item: "01.01".into()
            }]
        );
        let text = VALID.replace("keywords = [\"垃圾\"]", "");
        assert_eq!(
            problems(&text),
            [TaxonomyProblem::EmptyKeywords {
                sub_item: "01.01".into()
            }]
        );
        let text = VALID.replace("keywords = [\"垃圾\"]", "keywords = [\"垃圾\", \" ，\"]");
        assert_eq!(
            problems(&text),
            [TaxonomyProblem::BlankKeyword {
                owner: "sub-item \"01.01\"".into()
            }]
        );
        let text = VALID.replace("emergency = [\"着火\"]", "emergency = [\"\"]");
        assert_eq!(
            problems(&text),
            [TaxonomyProblem::BlankKeyword {
                owner: "urgency.emergency".into()
            }]
        );
    }

    #[test]
    fn rejects_missing_or_unknown_fallback() {
        let text = VALID.replace("fallback = \"02.01\"", "");
        assert_eq!(problems(&text), [TaxonomyProblem::MissingFallback]);
        let text = VALID.replace("fallback = \"02.01\"", "fallback = \"09.09\"");
        assert_eq!(
            problems(&text),
            [TaxonomyProblem::UnknownFallback {
                code: "09.09".into()
            }]
        );
        let text = VALID.replace("fallback = \"02.01\"", "fallback = \" \"");
        assert_eq!(problems(&text), [TaxonomyProblem::MissingFallback]);
        // Codes are compared exactly, as everywhere else.
        let text = VALID.replace("fallback = \"02.01\"", "fallback = \" 02.01\"");
        assert_eq!(
            problems(&text),
            [TaxonomyProblem::UnknownFallback {
                code: " 02.01".into()
            }]
        );
    }

    #[test]
    fn rejects_empty_categories_and_blank_fields() {
        assert_eq!(
            problems("fallback = \"01.01\""),
            [
                TaxonomyProblem::NoCategories,
                TaxonomyProblem::UnknownFallback {
                    code: "01.01".into()
                }
            ]
        );
        let text =
            format!("{VALID}\n[[categories]]\ncode = \"03\"\nname = \"\"\nname_en = \"X\"\n");
        assert_eq!(
            problems(&text),
            [
                TaxonomyProblem::BlankField {
                    location: "03".into(),
                    field: "name"
                },
                TaxonomyProblem::CategoryWithoutSubItems {
                    category: "03".into()
                },
            ]
        );
    }

    #[test]
    fn reports_every_problem_not_just_the_first() {
        let text = VALID
            .replace("fallback = \"02.01\"", "")
            .replace("code = \"02\"", "code = \"01\"")
            .replace("keywords = [\"咨询\"]", "keywords = []");
        let p = problems(&text);
        assert_eq!(
            p,
            [
                TaxonomyProblem::DuplicateCategoryCode { code: "01".into() },
                TaxonomyProblem::SubItemOutsideCategory {
                    sub_item: "02.01".into(),
                    category: "01".into()
                },
                TaxonomyProblem::EmptyKeywords {
                    sub_item: "02.01".into()
                },
                TaxonomyProblem::MissingFallback,
            ]
        );
        let message = DomainError::InvalidTaxonomy(p).to_string();
        assert!(message.contains("4 problem(s)"), "{message}");
        assert!(
            message.contains("duplicate category code \"01\""),
            "{message}"
        );
        assert!(message.contains("no `fallback`"), "{message}");
    }

    #[test]
    fn malformed_toml_and_unknown_fields_are_errors() {
        assert!(matches!(
            Taxonomy::parse("[[categories"),
            Err(DomainError::TaxonomyToml(_))
        ));
        let typo = VALID.replace("keywords = [\"垃圾\"]", "keyword = [\"垃圾\"]");
        assert!(matches!(
            Taxonomy::parse(&typo),
            Err(DomainError::TaxonomyToml(_))
        ));
    }

    #[test]
    fn taxonomy_deserialises_through_validation() {
        let t: Taxonomy = toml::from_str(VALID).unwrap();
        assert_eq!(t, Taxonomy::parse(VALID).unwrap());
        let broken = VALID.replace("fallback = \"02.01\"", "");
        let err = toml::from_str::<Taxonomy>(&broken).unwrap_err();
        assert!(err.to_string().contains("no `fallback`"), "{err}");
    }

    #[test]
    fn try_from_file_validates_too() {
        let file: TaxonomyFile = toml::from_str(VALID).unwrap();
        let t = Taxonomy::try_from(file.clone()).unwrap();
        assert_eq!(t.as_file(), &file);
        assert_eq!(TaxonomyFile::from(t), file);
        let broken = TaxonomyFile {
            fallback: None,
            ..file
        };
        assert_eq!(
            Taxonomy::try_from(broken),
            Err(DomainError::InvalidTaxonomy(vec![
                TaxonomyProblem::MissingFallback
            ]))
        );
    }
}
