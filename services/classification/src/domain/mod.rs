//! Classification domain: the taxonomy (分类体系) of citizens' requests (诉求), keyword
//! classification into a sub-item (小项), and urgency (紧急程度: 紧急 / 一般 / 复杂).
//!
//! Everything here is pure: no I/O, no clock, no randomness, so the same text and taxonomy
//! always yield the same [`Classification`] — a clerk reviewing a case (人工复核) and a replay
//! of the event log must agree.

mod classifier;
mod classify;
mod emergency;
mod hotspot;
mod keywords;
mod model;
mod repeat;
mod review;
mod taxonomy;

use std::fmt;

pub use classifier::{Candidate, ClassifierModel, DataError, Decision, Labelled, REQUEST_TYPES, check, emergency_rule, request_type_zh};
pub use classify::{Classification, classify};
pub use hotspot::HotspotRules;
pub use repeat::{By, Link, Mark, RepeatRules, digest, link, normalise};
pub use review::{Doubt, ReviewRules};
pub use taxonomy::{Category, DEFAULT_TAXONOMY_TOML, SubItem, Taxonomy, TaxonomyFile, UrgencyRules};

pub use jiesu_reference::Urgency;

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
    BlankField { location: String, field: &'static str },
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
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}
