//! The trained classifier (分类模型): sub-item, urgency and request type decided together from
//! one text, with calibrated confidence, the reason, and the model version recorded on every
//! decision. Trained by `jiesu-classifier train` into a versioned file the service loads.

use serde::{Deserialize, Serialize};

use super::{
    Taxonomy, Urgency,
    emergency::emergency,
    keywords::normalize,
    model::{LinearModel, Training, put_json, take_json, text_features},
};

/// The probability from which a request is called 复杂 rather than 一般. Complex requests are a
/// minority the model is shy of: by the most likely class it found 4 in 10 of them (precision
/// near 100 %), while a complex case sent on as normal gets a day where it needs three and is
/// then red for lack of time. From 0.25 it finds 6–7 in 10 with precision above 90 %, and urgency
/// accuracy rises by 2 points (`jiesu-classifier evaluate --fold 0…3`).
pub const COMPLEX_AT: f32 = 0.25;

/// The urgency model's probability from which a request the emergency rule let pass is called
/// an emergency all the same. Emergencies are one request in twelve, and the model is shy of
/// calling one: the rule catches those described as it knows, the model must catch the rest.
/// From 0.15 rather than 0.5 it caught 34 of 35 emergencies in requests written apart from the
/// data set (27 at 0.5) while precision over the four folds of `jiesu-classifier evaluate --fold
/// all` fell from 83 % to 76 %: a false alarm costs a clerk minutes, a missed one a life.
pub const EMERGENCY_AT: f32 = 0.15;

/// How much naive Bayes weighs in the sub-item's probabilities, beside the logistic regression
/// (a weighted geometric mean). The two err differently: the regression learns which n-grams
/// tell sub-items apart and discounts the rest, while naive Bayes lets every n-gram a sub-item's
/// requests used count, which carries a request phrased unlike any it was trained on. Mixed at
/// 0.35 (smoothing 1), the sub-item's category was right in 89.5 % rather than 88.8 % over the
/// four folds of `jiesu-classifier evaluate --fold all`; at 0.5 and above naive Bayes' habit of
/// counting one frequent word many times (物业) wins and accuracy falls.
pub const NAIVE_BAYES_SHARE: f32 = 0.35;

/// Naive Bayes' additive smoothing: 1 (Laplace) was the best of 0.02…4.
const NAIVE_BAYES_ALPHA: f32 = 1.0;

/// The weighted geometric mean of two distributions, normalised.
fn mix(p: &[f32], q: &[f32], share_of_q: f32) -> Vec<f32> {
    let mut out: Vec<f32> =
        p.iter().zip(q).map(|(a, b)| (a.max(1e-9).ln() * (1.0 - share_of_q) + b.max(1e-9).ln() * share_of_q).exp()).collect();
    let sum: f32 = out.iter().sum();
    out.iter_mut().for_each(|a| *a /= sum);
    out
}

/// The kinds of request (诉求类型), by their keys.
pub const REQUEST_TYPES: [&str; 5] = ["consultation", "help", "complaint", "report", "suggestion"];

/// The Chinese name of a request type key.
pub fn request_type_zh(key: &str) -> &str {
    match key {
        "consultation" => "咨询",
        "help" => "求助",
        "complaint" => "投诉",
        "report" => "举报",
        "suggestion" => "建议",
        other => other,
    }
}

/// One labelled request of the data set (`services/classification/data/cases/*.jsonl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labelled {
    pub text: String,
    pub sub_item: String,
    pub urgency: String,
    pub request_type: String,
    #[serde(default)]
    pub channel: String,
}

/// The model file: four linear models over the same features (the sub-item's two, urgency's and
/// the request type's), and what they were trained on.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierModel {
    /// `format` of the file; a service refuses a file it cannot read.
    pub format: u32,
    /// Derived from the training data and settings: the same data gives the same version.
    pub version: String,
    /// The taxonomy's sub-item codes, in the order of the sub-item model's labels.
    pub taxonomy: Vec<String>,
    /// How many labelled requests it was trained on.
    pub trained_on: usize,
    /// Each sub-item's taxonomy keywords, normalised, as they were when the model learnt them.
    pub keywords: Vec<(String, Vec<String>)>,
    pub sub_item: LinearModel,
    /// Naive Bayes over the sub-item model's features, whose probabilities are mixed into the
    /// logistic regression's ([`NAIVE_BAYES_SHARE`]).
    pub sub_item_nb: LinearModel,
    pub urgency: LinearModel,
    pub request_type: LinearModel,
}

/// The file format this code reads and writes.
pub const FORMAT: u32 = 2;

/// How a model file starts.
const MAGIC: &[u8; 8] = b"JIESUCLF";

/// What the model file says about itself before the weights.
#[derive(Serialize, Deserialize)]
struct FileHeader {
    format: u32,
    version: String,
    taxonomy: Vec<String>,
    trained_on: usize,
    keywords: Vec<(String, Vec<String>)>,
}

/// A sub-item the model considers, with its calibrated probability.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub sub_item: String,
    pub probability: f32,
}

/// What the classifier decided about one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The three likeliest sub-items, likeliest first.
    pub candidates: Vec<Candidate>,
    pub urgency: Urgency,
    /// What made it an emergency, when it is one (the rule's words, or the model).
    pub emergency_because: Vec<String>,
    pub request_type: String,
    /// The n-grams and keywords that weighed most for the chosen sub-item.
    pub reason: Vec<String>,
    pub model_version: String,
}

/// Each sub-item's keywords, normalised.
fn keyword_table(taxonomy: &Taxonomy) -> Vec<(String, Vec<String>)> {
    taxonomy
        .sub_items()
        .map(|(_, s)| (s.code.clone(), s.keywords.iter().map(|k| normalize(k)).filter(|k| !k.is_empty()).collect()))
        .collect()
}

/// The features of a text for the sub-item model: its n-grams and a feature per sub-item whose
/// taxonomy keywords it contains.
fn sub_item_features(keywords: &[(String, Vec<String>)], normalized: &str, grams: &[String]) -> Vec<String> {
    let mut names = grams.to_vec();
    for (code, words) in keywords {
        if words.iter().any(|k| normalized.contains(k.as_str())) {
            names.push(format!("k:{code}"));
        }
    }
    names
}

/// The urgency model's features: the n-grams, and whether the emergency rule fired.
fn urgency_features(grams: &[String], rule: bool) -> Vec<String> {
    let mut names = grams.to_vec();
    if rule {
        names.push("rule:emergency".into());
    }
    names
}

const URGENCIES: [&str; 3] = ["emergency", "normal", "complex"];

fn fnv(bytes: impl IntoIterator<Item = u8>, mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// What the emergency rule alone says of `text`: the words that made it an emergency.
pub fn emergency_rule(taxonomy: &Taxonomy, text: &str) -> Option<Vec<String>> {
    emergency(&normalize(text), &taxonomy.urgency_rules().emergency)
}

/// Errors in the labelled data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("line {line}: {why}")]
    Bad { line: usize, why: String },
    #[error("no labelled requests to train on")]
    Empty,
}

/// Checks labelled requests against the taxonomy and the label sets.
pub fn check(taxonomy: &Taxonomy, data: &[Labelled]) -> Result<(), DataError> {
    if data.is_empty() {
        return Err(DataError::Empty);
    }
    for (i, d) in data.iter().enumerate() {
        let bad = |why: String| Err(DataError::Bad { line: i + 1, why });
        if d.text.trim().is_empty() {
            return bad("empty text".into());
        }
        if taxonomy.sub_item(&d.sub_item).is_none() {
            return bad(format!("sub_item {:?} is not in the taxonomy", d.sub_item));
        }
        if !URGENCIES.contains(&d.urgency.as_str()) {
            return bad(format!("urgency {:?} is not one of {URGENCIES:?}", d.urgency));
        }
        if !REQUEST_TYPES.contains(&d.request_type.as_str()) {
            return bad(format!("request_type {:?} is not one of {REQUEST_TYPES:?}", d.request_type));
        }
    }
    Ok(())
}

impl ClassifierModel {
    /// Trains the three models on `train` and fits their temperatures on `calibration` (held
    /// out from `train`; may be empty, then the temperature stays 1).
    pub fn train(taxonomy: &Taxonomy, train: &[Labelled], calibration: &[Labelled]) -> Result<ClassifierModel, DataError> {
        check(taxonomy, train)?;
        check(taxonomy, calibration).or_else(|e| if calibration.is_empty() { Ok(()) } else { Err(e) })?;
        let codes: Vec<String> = taxonomy.sub_items().map(|(_, s)| s.code.clone()).collect();
        let keywords = keyword_table(taxonomy);
        let prepare = |data: &[Labelled]| -> Vec<[(Vec<String>, usize); 3]> {
            data.iter()
                .map(|d| {
                    let (normalized, grams) = text_features(&d.text);
                    let rule = emergency(&normalized, &taxonomy.urgency_rules().emergency).is_some();
                    let sub = codes.iter().position(|c| *c == d.sub_item).unwrap_or_default();
                    let urg = URGENCIES.iter().position(|u| *u == d.urgency).unwrap_or(1);
                    let typ = REQUEST_TYPES.iter().position(|t| *t == d.request_type).unwrap_or(2);
                    [(sub_item_features(&keywords, &normalized, &grams), sub), (urgency_features(&grams, rule), urg), (grams, typ)]
                })
                .collect()
        };
        let train_rows = prepare(train);
        let calibration_rows = prepare(calibration);
        let column = |rows: &[[(Vec<String>, usize); 3]], k: usize| rows.iter().map(|r| r[k].clone()).collect::<Vec<_>>();
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let settings = Training::default();
        // Every taxonomy keyword is a tiny request of its sub-item too: the district's words reach
        // the model even where the labelled requests never used them.
        let mut sub_item_rows = column(&train_rows, 0);
        for (i, (code, words)) in keywords.iter().enumerate() {
            for w in words {
                let features = sub_item_features(&keywords, w, &super::model::ngrams(w));
                sub_item_rows.push((features, codes.iter().position(|c| c == code).unwrap_or(i)));
            }
        }
        // Twenty-two sub-items from some 1,800 requests: stronger regularisation than the other
        // models keeps the model from learning the data set's wording instead of the topics;
        // 3e-4 is the best of 1e-4…3e-3 over the four folds of `jiesu-classifier evaluate
        // --fold 0…3` (sub-item 86.0 % on average against 85.2 % at 1e-3).
        // …and so is every example the taxonomy gives.
        for (i, (_, sub)) in taxonomy.sub_items().enumerate() {
            for example in &sub.examples {
                let (normalized, grams) = text_features(example);
                sub_item_rows.push((sub_item_features(&keywords, &normalized, &grams), i));
            }
        }
        let mut sub_item = LinearModel::train(codes.clone(), &sub_item_rows, Training { l2: 3e-4, ..settings });
        let mut urgency = LinearModel::train(strings(&URGENCIES), &column(&train_rows, 1), settings);
        let mut request_type = LinearModel::train(strings(&REQUEST_TYPES), &column(&train_rows, 2), settings);
        sub_item.calibrate(&column(&calibration_rows, 0));
        let mut nb = LinearModel::naive_bayes(&sub_item, &sub_item_rows, NAIVE_BAYES_ALPHA);
        nb.calibrate(&column(&calibration_rows, 0));
        urgency.calibrate(&column(&calibration_rows, 1));
        request_type.calibrate(&column(&calibration_rows, 2));
        // With the temperatures fitted, the calibration requests are worth more as training
        // data than held aside: the models are trained again on everything, keeping the
        // temperatures (a model trained on a little more data is, if anything, a little surer).
        if !calibration_rows.is_empty() {
            sub_item_rows.extend(column(&calibration_rows, 0));
            let all: Vec<_> = train_rows.iter().chain(&calibration_rows).cloned().collect();
            let refit = |m: &LinearModel, rows: &[(Vec<String>, usize)], t: Training| LinearModel {
                temperature: m.temperature,
                ..LinearModel::train(m.labels.clone(), rows, t)
            };
            sub_item = refit(&sub_item, &sub_item_rows, Training { l2: 3e-4, ..settings });
            nb = LinearModel { temperature: nb.temperature, ..LinearModel::naive_bayes(&sub_item, &sub_item_rows, NAIVE_BAYES_ALPHA) };
            urgency = refit(&urgency, &column(&all, 1), settings);
            request_type = refit(&request_type, &column(&all, 2), settings);
        }
        let mut h = 0xcbf2_9ce4_8422_2325;
        for d in train.iter().chain(calibration) {
            for field in [&d.text, &d.sub_item, &d.urgency, &d.request_type] {
                h = fnv(field.bytes().chain([0]), h);
            }
        }
        // What the taxonomy teaches counts too: its keywords and examples.
        for (_, sub) in taxonomy.sub_items() {
            for text in std::iter::once(&sub.code).chain(&sub.keywords).chain(&sub.examples) {
                h = fnv(text.bytes().chain([0]), h);
            }
        }
        h = fnv(format!("{settings:?}{FORMAT}{NAIVE_BAYES_SHARE}{NAIVE_BAYES_ALPHA}{EMERGENCY_AT}{COMPLEX_AT}").bytes(), h);
        // …and what was learnt: a change of the rules or of the training that changes a weight
        // changes the version, so two different models never share one.
        for m in [&sub_item, &urgency, &request_type, &nb] {
            let numbers = m.weights.iter().chain(&m.bias).chain(std::iter::once(&m.temperature));
            h = fnv(numbers.flat_map(|x| x.to_le_bytes()), h);
        }
        Ok(ClassifierModel {
            format: FORMAT,
            version: format!("m{FORMAT}-{h:016x}"),
            taxonomy: codes,
            trained_on: train.len() + calibration.len(),
            keywords,
            sub_item,
            sub_item_nb: nb,
            urgency,
            request_type,
        })
    }

    /// The model file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = FileHeader {
            format: self.format,
            version: self.version.clone(),
            taxonomy: self.taxonomy.clone(),
            trained_on: self.trained_on,
            keywords: self.keywords.clone(),
        };
        let mut out = MAGIC.to_vec();
        put_json(&mut out, &header);
        for m in [&self.sub_item, &self.urgency, &self.request_type] {
            out.extend(m.to_bytes());
        }
        out.extend(self.sub_item_nb.to_bytes_without_features());
        out
    }

    /// Reads a model file; says what is wrong with one it cannot read.
    pub fn from_bytes(bytes: &[u8]) -> Result<ClassifierModel, String> {
        let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or("not a Jiesu classifier model file")?;
        let (header, rest): (FileHeader, _) = take_json(rest, "the model file's header")?;
        if header.format != FORMAT {
            return Err(format!("model format {} is not {FORMAT}: retrain it with this version", header.format));
        }
        let (sub_item, rest) = LinearModel::from_bytes(rest)?;
        let (urgency, rest) = LinearModel::from_bytes(rest)?;
        let (request_type, rest) = LinearModel::from_bytes(rest)?;
        let (mut sub_item_nb, rest) = LinearModel::from_bytes(rest)?;
        sub_item_nb.share_features(&sub_item)?;
        if !rest.is_empty() {
            return Err("the model file has bytes after its last model".into());
        }
        Ok(ClassifierModel {
            format: header.format,
            version: header.version,
            taxonomy: header.taxonomy,
            trained_on: header.trained_on,
            keywords: header.keywords,
            sub_item,
            sub_item_nb,
            urgency,
            request_type,
        })
    }

    /// Whether the model was trained for this taxonomy's sub-items.
    pub fn fits(&self, taxonomy: &Taxonomy) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("model format {} is not {FORMAT}: retrain it", self.format));
        }
        let codes: Vec<&str> = taxonomy.sub_items().map(|(_, s)| s.code.as_str()).collect();
        if codes != self.taxonomy.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(format!("model {} was trained for other sub-items than the taxonomy's: retrain it", self.version));
        }
        Ok(())
    }

    /// Classifies one text.
    pub fn classify(&self, taxonomy: &Taxonomy, text: &str) -> Decision {
        let (normalized, grams) = text_features(text);
        let rule = emergency(&normalized, &taxonomy.urgency_rules().emergency);
        let features = sub_item_features(&self.keywords, &normalized, &grams);
        let x = self.sub_item.encode(&features);
        let p = mix(&self.sub_item.probabilities_of(&x), &self.sub_item_nb.probabilities_of(&x), NAIVE_BAYES_SHARE);
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|a, b| p[*b].total_cmp(&p[*a]).then(a.cmp(b)));
        let candidates: Vec<Candidate> =
            order.iter().take(3).map(|&i| Candidate { sub_item: self.sub_item.labels[i].clone(), probability: p[i] }).collect();
        // The words a clerk can check: n-grams of two characters or more, most telling first,
        // none inside another already given.
        let mut reason: Vec<String> = Vec::new();
        if let Some(&best) = order.first() {
            for (feature, _) in self.sub_item.reasons(&features, best, 20) {
                let word = feature.replace(['^', '$'], "");
                if feature.starts_with("k:")
                    || word.chars().count() < 2
                    || reason.iter().any(|r| r.contains(&word) || word.contains(r.as_str()))
                {
                    continue;
                }
                reason.push(word);
                if reason.len() == 4 {
                    break;
                }
            }
        }

        let pu = self.urgency.probabilities(&urgency_features(&grams, rule.is_some()));
        // An emergency is what the rule says, or what the model finds likely enough
        // ([`EMERGENCY_AT`]): missing one costs a life, a false alarm minutes of a clerk's time.
        let (urgency, emergency_because) = match rule {
            Some(words) => (Urgency::Emergency, words),
            None if pu[0] >= EMERGENCY_AT => (Urgency::Emergency, vec![format!("model {:.0}%", pu[0] * 100.0)]),
            None if pu[2] >= COMPLEX_AT => (Urgency::Complex, Vec::new()),
            None => (Urgency::Normal, Vec::new()),
        };
        let pt = self.request_type.probabilities(&grams);
        let t = (0..pt.len()).max_by(|a, b| pt[*a].total_cmp(&pt[*b]).then(b.cmp(a))).unwrap_or(2);
        Decision {
            candidates,
            urgency,
            emergency_because,
            request_type: self.request_type.labels[t].clone(),
            reason,
            model_version: self.version.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixing_keeps_a_distribution_and_leans_by_its_share() {
        let (p, q) = ([0.7, 0.2, 0.1], [0.1, 0.8, 0.1]);
        for share in [0.0, NAIVE_BAYES_SHARE, 1.0] {
            let m = mix(&p, &q, share);
            assert!((m.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{m:?}");
        }
        assert!(mix(&p, &q, 0.0).iter().zip(&p).all(|(a, b)| (a - b).abs() < 1e-5));
        assert!(mix(&p, &q, 1.0).iter().zip(&q).all(|(a, b)| (a - b).abs() < 1e-5));
        // A third of the way, the regression's clear winner stays the winner.
        let m = mix(&p, &q, NAIVE_BAYES_SHARE);
        assert!(m[0] > m[1], "{m:?}");
    }

    #[test]
    fn a_model_file_of_another_format_is_refused_with_a_reason() {
        let taxonomy = Taxonomy::default_taxonomy();
        let model = ClassifierModel::from_bytes(crate::DEFAULT_MODEL).unwrap();
        let mut old = model.clone();
        old.format = 1;
        let err = ClassifierModel::from_bytes(&old.to_bytes()).unwrap_err();
        assert!(err.contains("format 1") && err.contains("retrain"), "{err}");
        assert_eq!(
            ClassifierModel::from_bytes(&model.to_bytes()).unwrap().classify(&taxonomy, "楼下垃圾没人收").candidates[0].sub_item,
            "01.01"
        );
        assert!(ClassifierModel::from_bytes(b"JIESUCLF").is_err(), "a truncated file");
    }
}
