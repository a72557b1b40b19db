//! The taxonomy (分类体系): its file model, parsing and validation, and the default taxonomy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::classify::{classify, keyword_weight};
use super::keywords::{IndexedKeyword, normalize};
use super::{Classification, DomainError, TaxonomyProblem};

/// The demo district's taxonomy file, which is also Jiesu's default taxonomy
/// (十大类二十二小项). A district may replace it with its own file.
pub const DEFAULT_TAXONOMY_TOML: &str = include_str!("../../../../deploy/districts/demo/taxonomy.toml");

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
    /// What belongs here and what does not (说明), for clerks reviewing a classification.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Requests as citizens phrase them (示例); the classifier learns from them too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
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
    /// The taxonomy's version (版本), e.g. "2026.1": recorded with the model trained on it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
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
    pub(super) file: TaxonomyFile,
    /// (category index, sub-item index) of every sub-item, in file order.
    pub(super) flat: Vec<(usize, usize)>,
    /// Position of the fallback in `flat`.
    pub(super) fallback: usize,
    pub(super) keywords: Vec<IndexedKeyword>,
    pub(super) emergency: Vec<(String, String)>,
    pub(super) complex: Vec<(String, String)>,
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
        self.sub_items().find(|(_, s)| s.code == code).map(|(_, s)| s)
    }

    /// The category a sub-item belongs to; `None` when no sub-item has this code.
    pub fn category_of(&self, sub_item_code: &str) -> Option<&Category> {
        self.sub_items().find(|(_, s)| s.code == sub_item_code).map(|(c, _)| c)
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
        let flat: Vec<(usize, usize)> =
            file.categories.iter().enumerate().flat_map(|(c, cat)| (0..cat.sub_items.len()).map(move |s| (c, s))).collect();
        let sub = |&(c, s): &(usize, usize)| &file.categories[c].sub_items[s];
        let fallback_code = file.fallback.as_deref().unwrap_or_default();
        // Validation has checked that the fallback exists; 0 only keeps this total.
        let fallback = flat.iter().position(|p| sub(p).code == fallback_code).unwrap_or(0);

        // One entry per distinct normalised keyword, so a keyword shared by two sub-items is
        // found once and credited to both, and "PM2.5"/"pm2.5" in one sub-item count once.
        let mut by_text: BTreeMap<String, usize> = BTreeMap::new();
        let mut keywords: Vec<IndexedKeyword> = Vec::new();
        for (pos, p) in flat.iter().enumerate() {
            for written in &sub(p).keywords {
                let normalized = normalize(written);
                let i = *by_text.entry(normalized.clone()).or_insert_with(|| {
                    keywords.push(IndexedKeyword { weight: keyword_weight(&normalized), normalized, owners: Vec::new() });
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

        Self { flat, fallback, keywords, emergency, complex, file }
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
        blank_fields(&mut problems, &cat_label, &category.code, &category.name, &category.name_en);
        if !category.code.trim().is_empty() {
            let seen = category_codes.entry(&category.code).or_default();
            *seen += 1;
            if *seen == 2 {
                problems.push(P::DuplicateCategoryCode { code: category.code.clone() });
            }
        }
        if category.sub_items.is_empty() {
            problems.push(P::CategoryWithoutSubItems { category: cat_label.clone() });
        }

        for (si, sub) in category.sub_items.iter().enumerate() {
            let sub_label = label(&sub.code, || format!("sub-item #{} of {cat_label}", si + 1));
            blank_fields(&mut problems, &sub_label, &sub.code, &sub.name, &sub.name_en);
            if !sub.code.trim().is_empty() {
                let seen = sub_codes.entry(&sub.code).or_default();
                *seen += 1;
                if *seen == 2 {
                    problems.push(P::DuplicateSubItemCode { code: sub.code.clone() });
                }
                let under_category = sub
                    .code
                    .strip_prefix(category.code.as_str())
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|rest| !rest.is_empty());
                if !under_category {
                    problems.push(P::SubItemOutsideCategory { sub_item: sub.code.clone(), category: category.code.clone() });
                }
            }
            if sub.keywords.is_empty() {
                problems.push(P::EmptyKeywords { sub_item: sub_label.clone() });
            } else if sub.keywords.iter().any(|k| normalize(k).is_empty()) {
                problems.push(P::BlankKeyword { owner: format!("sub-item {sub_label:?}") });
            }
        }
    }

    for (list, words) in [("emergency", &file.urgency.emergency), ("complex", &file.urgency.complex)] {
        if words.iter().any(|k| normalize(k).is_empty()) {
            problems.push(P::BlankKeyword { owner: format!("urgency.{list}") });
        }
    }

    match file.fallback.as_deref() {
        None => problems.push(P::MissingFallback),
        Some(code) if code.trim().is_empty() => problems.push(P::MissingFallback),
        // Exact comparison: `build` looks the fallback up by the same exact code.
        Some(code) => {
            let known = file.categories.iter().flat_map(|c| &c.sub_items).any(|s| s.code == code);
            if !known {
                problems.push(P::UnknownFallback { code: code.to_owned() });
            }
        }
    }
    problems
}

fn label(code: &str, otherwise: impl FnOnce() -> String) -> String {
    if code.trim().is_empty() { otherwise() } else { code.to_owned() }
}

fn blank_fields(problems: &mut Vec<TaxonomyProblem>, location: &str, code: &str, name: &str, name_en: &str) {
    for (field, value) in [("code", code), ("name", name), ("name_en", name_en)] {
        if value.trim().is_empty() {
            problems.push(TaxonomyProblem::BlankField { location: location.to_owned(), field });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::super::Urgency;
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
        assert_eq!(codes, ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10"]);
        assert_eq!(t.fallback().code, "10.02");
        assert_eq!(t.fallback().name, "咨询建议与其他");
        assert_eq!(t.sub_item("01.03").unwrap().name, "占道经营与乱停放");
        assert_eq!(t.category_of("06.01").unwrap().name, "劳动与社保");
        assert!(t.sub_item("11.01").is_none());
        assert!(t.category_of("01").is_none());
        assert_eq!(t.category("05").unwrap().lead.as_deref(), Some("dept-environment"));
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
        let actual: Vec<(&str, &str)> = t.sub_items().map(|(_, s)| (s.code.as_str(), s.name.as_str())).collect();
        assert_eq!(actual, expected);
        assert!(t.sub_items().all(|(c, s)| !c.name_en.is_empty() && !s.name_en.is_empty()));
    }

    #[test]
    fn default_taxonomy_keywords_are_rich_and_unambiguous() {
        let t = default();
        let mut owner: BTreeMap<String, &str> = BTreeMap::new();
        for (_, sub) in t.sub_items() {
            let n = sub.keywords.len();
            assert!((15..=80).contains(&n), "{} has {n} keywords", sub.code);
            for k in &sub.keywords {
                let norm = normalize(k);
                assert!(norm.chars().count() >= 2, "{}: one-character keyword {k:?}", sub.code);
                if let Some(other) = owner.insert(norm, &sub.code) {
                    panic!("keyword {k:?} is in both {other} and {}", sub.code);
                }
            }
        }
    }

    #[test]
    fn default_leads_are_demo_departments() {
        let t = default();
        let known = ["dept-urban-management", "dept-housing", "dept-water", "dept-environment", "dept-labour", "dept-market"];
        for (c, s) in t.sub_items() {
            for lead in [c.lead.as_deref(), s.lead.as_deref()].into_iter().flatten() {
                assert!(known.contains(&lead), "{}: unknown department {lead}", s.code);
            }
        }
        assert_eq!(t.lead_department("01.03"), Some("dept-urban-management"));
        assert_eq!(t.lead_department("03.01"), Some("dept-water"));
        assert_eq!(t.lead_department("03.02"), Some("dept-urban-management"));
        assert_eq!(t.lead_department("06.01"), Some("dept-labour"));
        assert_eq!(t.lead_department("09.01"), None);
        assert_eq!(t.lead_department("99.99"), None);
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
        assert_eq!(classify(&t, "", "着火了，垃圾堆").urgency, Urgency::Emergency);
    }

    #[test]
    fn rejects_duplicate_category_codes() {
        let text = VALID.replace("code = \"02\"", "code = \"01\"").replace("02.01", "01.02");
        assert_eq!(problems(&text), [TaxonomyProblem::DuplicateCategoryCode { code: "01".into() }]);
    }

    #[test]
    fn rejects_duplicate_sub_item_codes() {
        let text = VALID.replace("code = \"02.01\"", "code = \"01.01\"");
        let p = problems(&text);
        assert!(p.contains(&TaxonomyProblem::DuplicateSubItemCode { code: "01.01".into() }));
    }

    #[test]
    fn rejects_sub_item_outside_its_category() {
        let text = VALID.replace("code = \"01.01\"", "code = \"03.01\"");
        assert_eq!(problems(&text), [TaxonomyProblem::SubItemOutsideCategory { sub_item: "03.01".into(), category: "01".into() }]);
        // "010.1" shares the prefix characters but is not "01." + something.
        let text = VALID.replace("code = \"01.01\"", "code = \"010.1\"");
        assert_eq!(problems(&text).len(), 1);
        let text = VALID.replace("code = \"01.01\"", "code = \"01.\"");
        assert_eq!(problems(&text).len(), 1);
    }

    #[test]
    fn rejects_empty_and_blank_keywords() {
        let text = VALID.replace("keywords = [\"垃圾\"]", "keywords = []");
        assert_eq!(problems(&text), [TaxonomyProblem::EmptyKeywords { sub_item: "01.01".into() }]);
        let text = VALID.replace("keywords = [\"垃圾\"]", "");
        assert_eq!(problems(&text), [TaxonomyProblem::EmptyKeywords { sub_item: "01.01".into() }]);
        let text = VALID.replace("keywords = [\"垃圾\"]", "keywords = [\"垃圾\", \" ，\"]");
        assert_eq!(problems(&text), [TaxonomyProblem::BlankKeyword { owner: "sub-item \"01.01\"".into() }]);
        let text = VALID.replace("emergency = [\"着火\"]", "emergency = [\"\"]");
        assert_eq!(problems(&text), [TaxonomyProblem::BlankKeyword { owner: "urgency.emergency".into() }]);
    }

    #[test]
    fn rejects_missing_or_unknown_fallback() {
        let text = VALID.replace("fallback = \"02.01\"", "");
        assert_eq!(problems(&text), [TaxonomyProblem::MissingFallback]);
        let text = VALID.replace("fallback = \"02.01\"", "fallback = \"09.09\"");
        assert_eq!(problems(&text), [TaxonomyProblem::UnknownFallback { code: "09.09".into() }]);
        let text = VALID.replace("fallback = \"02.01\"", "fallback = \" \"");
        assert_eq!(problems(&text), [TaxonomyProblem::MissingFallback]);
        // Codes are compared exactly, as everywhere else.
        let text = VALID.replace("fallback = \"02.01\"", "fallback = \" 02.01\"");
        assert_eq!(problems(&text), [TaxonomyProblem::UnknownFallback { code: " 02.01".into() }]);
    }

    #[test]
    fn rejects_empty_categories_and_blank_fields() {
        assert_eq!(
            problems("fallback = \"01.01\""),
            [TaxonomyProblem::NoCategories, TaxonomyProblem::UnknownFallback { code: "01.01".into() }]
        );
        let text = format!("{VALID}\n[[categories]]\ncode = \"03\"\nname = \"\"\nname_en = \"X\"\n");
        assert_eq!(
            problems(&text),
            [
                TaxonomyProblem::BlankField { location: "03".into(), field: "name" },
                TaxonomyProblem::CategoryWithoutSubItems { category: "03".into() },
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
                TaxonomyProblem::SubItemOutsideCategory { sub_item: "02.01".into(), category: "01".into() },
                TaxonomyProblem::EmptyKeywords { sub_item: "02.01".into() },
                TaxonomyProblem::MissingFallback,
            ]
        );
        let message = DomainError::InvalidTaxonomy(p).to_string();
        assert!(message.contains("4 problem(s)"), "{message}");
        assert!(message.contains("duplicate category code \"01\""), "{message}");
        assert!(message.contains("no `fallback`"), "{message}");
    }

    #[test]
    fn malformed_toml_and_unknown_fields_are_errors() {
        assert!(matches!(Taxonomy::parse("[[categories"), Err(DomainError::TaxonomyToml(_))));
        let typo = VALID.replace("keywords = [\"垃圾\"]", "keyword = [\"垃圾\"]");
        assert!(matches!(Taxonomy::parse(&typo), Err(DomainError::TaxonomyToml(_))));
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
        let broken = TaxonomyFile { fallback: None, ..file };
        assert_eq!(Taxonomy::try_from(broken), Err(DomainError::InvalidTaxonomy(vec![TaxonomyProblem::MissingFallback])));
    }
}
