//! The statistical classifier (统计模型): multinomial logistic regression over character n-grams.
//!
//! Why this and not something else (docs/classification.md argues it at length):
//! - **Character n-grams (1–3), not words.** Citizens' text is colloquial, full of typos and
//!   homophones (乱挺车), dialect (咋整) and run-on phone transcripts. A segmenter such as jieba
//!   splits such text unpredictably and needs a dictionary of several megabytes that knows none of
//!   the slang; overlapping character n-grams need no dictionary, and a typo spoils only the few
//!   n-grams it touches while the rest of the phrase still counts.
//! - **Logistic regression, not naive Bayes.** Both are linear over the same features, but naive
//!   Bayes counts every n-gram as independent evidence, so one frequent word (物业) outvotes the
//!   topic (违建) and its probabilities are far too confident to set a review threshold on. A
//!   discriminatively trained model weighs n-grams by how much they tell the classes apart, and a
//!   temperature fitted on held-out data makes its probabilities honest (calibrated).
//! - **Taxonomy keywords as features.** Each sub-item's keywords (from the taxonomy file) fire a
//!   feature of that sub-item, so a district's vocabulary reaches the model even for phrasings
//!   the training set never saw.
//!
//! Training is deterministic (a fixed shuffling seed), so the same data gives the same model and
//! the same version.

use std::{collections::HashMap, sync::Arc};

use serde::{Deserialize, Serialize};

use super::keywords::{SEPARATOR, normalize};

/// The n-grams of a normalised text: characters, pairs and triples within each clause (never
/// across punctuation), with the clause's start and end marked so that short texts have
/// features too.
pub fn ngrams(normalized: &str) -> Vec<String> {
    let mut out = Vec::new();
    for clause in normalized.split(SEPARATOR).filter(|c| !c.is_empty()) {
        let chars: Vec<char> = std::iter::once('^').chain(clause.chars()).chain(std::iter::once('$')).collect();
        for n in 1..=3 {
            for w in chars.windows(n) {
                if n == 1 && (w[0] == '^' || w[0] == '$') {
                    continue;
                }
                out.push(w.iter().collect());
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// A linear classifier over named features: `labels.len()` weights per feature, a bias per
/// label, and the temperature its scores are divided by before the softmax.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    pub labels: Vec<String>,
    /// Feature name → its row in `weights`; shared by the models counted over the same rows
    /// ([`LinearModel::naive_bayes`]), not copied.
    pub features: Arc<HashMap<String, u32>>,
    /// Row-major: feature × label.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub temperature: f32,
}

/// What a stored model says besides its weights.
#[derive(Serialize, Deserialize)]
struct Header {
    labels: Vec<String>,
    bias: Vec<f32>,
    temperature: f32,
    /// A weight is its stored byte (a signed step) times `scale`.
    scale: f32,
    /// The feature names, in the order of the rows of weights; empty when they are another
    /// model's.
    features: Vec<String>,
    /// How many rows of weights follow.
    rows: usize,
}

/// Appends `value` as its JSON length (8 bytes, little-endian) and the JSON: the framing of every
/// header in a model file.
pub(super) fn put_json<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    let json = serde_json::to_vec(value).expect("a header serialises");
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
}

/// Reads what [`put_json`] wrote; returns the value and the bytes after it.
pub(super) fn take_json<'a, T: serde::de::DeserializeOwned>(bytes: &'a [u8], what: &str) -> Result<(T, &'a [u8]), String> {
    let short = || "the model file ends too early".to_string();
    let len = u64::from_le_bytes(bytes.get(..8).ok_or_else(short)?.try_into().map_err(|_| short())?) as usize;
    let json = bytes.get(8..8usize.saturating_add(len)).ok_or_else(short)?;
    let value = serde_json::from_slice(json).map_err(|e| format!("{what}: {e}"))?;
    Ok((value, &bytes[8 + len..]))
}

impl LinearModel {
    /// The model as bytes: a JSON header (labels, bias, temperature, the features in row order)
    /// and the weights quantised to one signed byte each — a tenth of the text they would take,
    /// and no measurable loss (`jiesu-classifier evaluate` reads the stored model back).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes(true)
    }

    /// The model as bytes without its feature names, for a model whose rows are another's
    /// ([`LinearModel::naive_bayes`]): read back with [`from_bytes`](Self::from_bytes) and
    /// [`share_features`](Self::share_features).
    pub fn to_bytes_without_features(&self) -> Vec<u8> {
        self.bytes(false)
    }

    /// Takes `other`'s feature rows, for a model stored without its own.
    pub fn share_features(&mut self, other: &LinearModel) -> Result<(), String> {
        if self.weights.len() != other.features.len() * self.labels.len() {
            return Err("the model's weights do not match the rows it shares".into());
        }
        self.features = Arc::clone(&other.features);
        Ok(())
    }

    fn bytes(&self, with_features: bool) -> Vec<u8> {
        let max = self.weights.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        let mut rows: Vec<(&String, &u32)> = self.features.iter().collect();
        rows.sort_by_key(|(_, r)| **r);
        let header = Header {
            labels: self.labels.clone(),
            bias: self.bias.clone(),
            temperature: self.temperature,
            scale,
            rows: self.weights.len() / self.labels.len().max(1),
            features: if with_features { rows.iter().map(|(n, _)| (*n).clone()).collect() } else { Vec::new() },
        };
        let mut out = Vec::with_capacity(self.weights.len() + 1024);
        put_json(&mut out, &header);
        out.extend(self.weights.iter().map(|w| ((w / scale).round().clamp(-127.0, 127.0) as i8) as u8));
        out
    }

    /// Reads what [`to_bytes`](Self::to_bytes) wrote; returns the model and the bytes after it.
    pub fn from_bytes(bytes: &[u8]) -> Result<(LinearModel, &[u8]), String> {
        let (header, rest): (Header, _) = take_json(bytes, "the model header")?;
        let n = header.labels.len();
        if !header.features.is_empty() && header.features.len() != header.rows {
            return Err("the model's features do not match its weights".into());
        }
        let count = header.rows.checked_mul(n).ok_or("the model's size is impossible")?;
        let raw = rest.get(..count).ok_or("the model file ends too early")?;
        if header.bias.len() != n {
            return Err("the model's bias does not match its labels".into());
        }
        let weights = raw.iter().map(|b| f32::from(*b as i8) * header.scale).collect();
        let features = Arc::new(header.features.into_iter().enumerate().map(|(i, f)| (f, i as u32)).collect());
        let model = LinearModel { labels: header.labels, features, weights, bias: header.bias, temperature: header.temperature };
        Ok((model, &rest[count..]))
    }
}

/// How a [`LinearModel`] is trained.
#[derive(Debug, Clone, Copy)]
pub struct Training {
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 regularisation per update.
    pub l2: f32,
    /// Features seen fewer times than this are left out (noise, and a smaller model).
    pub min_count: u32,
    pub seed: u64,
}

impl Default for Training {
    fn default() -> Self {
        Training { epochs: 60, learning_rate: 0.5, l2: 1e-4, min_count: 1, seed: 0x5eed_1234 }
    }
}

/// The features of one text, as model rows, with equal weights summing to one in square (so a
/// long letter does not shout louder than a short call).
fn rows(model_features: &HashMap<String, u32>, names: &[String]) -> Vec<(u32, f32)> {
    let ids: Vec<u32> = names.iter().filter_map(|n| model_features.get(n).copied()).collect();
    let x = if ids.is_empty() { 0.0 } else { 1.0 / (ids.len() as f32).sqrt() };
    ids.into_iter().map(|i| (i, x)).collect()
}

fn softmax(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    for s in scores.iter_mut() {
        *s /= sum;
    }
}

/// A small deterministic generator for the training order.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

impl LinearModel {
    /// Trains on `examples`, whose features `featurize` gives.
    pub fn train(labels: Vec<String>, examples: &[(Vec<String>, usize)], training: Training) -> LinearModel {
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for (names, _) in examples {
            for n in names {
                *counts.entry(n.as_str()).or_default() += 1;
            }
        }
        let mut kept: Vec<&str> = counts.iter().filter(|(_, c)| **c >= training.min_count).map(|(n, _)| *n).collect();
        kept.sort_unstable();
        let features: Arc<HashMap<String, u32>> = Arc::new(kept.iter().enumerate().map(|(i, n)| (n.to_string(), i as u32)).collect());
        let n_labels = labels.len();
        let mut model =
            LinearModel { labels, weights: vec![0.0; features.len() * n_labels], bias: vec![0.0; n_labels], features, temperature: 1.0 };
        let encoded: Vec<(Vec<(u32, f32)>, usize)> = examples.iter().map(|(names, y)| (rows(&model.features, names), *y)).collect();
        // AdaGrad: each weight's step shrinks with the gradients it has seen, so rare n-grams
        // (typos, slang) still learn while frequent ones settle.
        let mut g2 = vec![1e-6f32; model.weights.len()];
        let mut g2_bias = vec![1e-6f32; n_labels];
        let mut order: Vec<usize> = (0..encoded.len()).collect();
        let mut rng = XorShift(training.seed | 1);
        let mut p = vec![0.0f32; n_labels];
        for _ in 0..training.epochs {
            rng.shuffle(&mut order);
            for &i in &order {
                let (x, y) = &encoded[i];
                model.scores_into(x, &mut p);
                softmax(&mut p);
                for l in 0..n_labels {
                    let g = p[l] - if l == *y { 1.0 } else { 0.0 };
                    g2_bias[l] += g * g;
                    model.bias[l] -= training.learning_rate * g / g2_bias[l].sqrt();
                    for &(f, v) in x {
                        let k = f as usize * n_labels + l;
                        let grad = g * v + training.l2 * model.weights[k];
                        g2[k] += grad * grad;
                        model.weights[k] -= training.learning_rate * grad / g2[k].sqrt();
                    }
                }
            }
        }
        model
    }

    /// A multinomial naive Bayes model over the same features, as a linear model: each weight
    /// the log of the feature's smoothed share of its label's features, each bias the log prior.
    ///
    /// It counts over the rows of `over` (the logistic regression trained on the same examples),
    /// so that the two share their features: stored once, looked up once per text.
    pub fn naive_bayes(over: &LinearModel, examples: &[(Vec<String>, usize)], alpha: f32) -> LinearModel {
        let (labels, features) = (over.labels.clone(), Arc::clone(&over.features));
        let k = labels.len();
        let mut counts = vec![0.0f32; features.len() * k];
        let mut totals = vec![0.0f32; k];
        let mut docs = vec![0.0f32; k];
        for (names, y) in examples {
            docs[*y] += 1.0;
            for f in names.iter().filter_map(|n| features.get(n)) {
                counts[*f as usize * k + y] += 1.0;
                totals[*y] += 1.0;
            }
        }
        let v = features.len() as f32;
        let mut weights: Vec<f32> = counts.iter().enumerate().map(|(i, c)| ((c + alpha) / (totals[i % k] + alpha * v)).ln()).collect();
        // What a feature adds to every label alike changes no probability: centred, the weights
        // keep their differences in a range a byte can hold.
        for row in weights.chunks_mut(k) {
            let mean = row.iter().sum::<f32>() / k as f32;
            row.iter_mut().for_each(|w| *w -= mean);
        }
        let n = examples.len() as f32;
        let bias = docs.iter().map(|d| ((d + 1.0) / (n + k as f32)).ln()).collect();
        LinearModel { labels, features, weights, bias, temperature: 1.0 }
    }

    fn scores_into(&self, x: &[(u32, f32)], out: &mut [f32]) {
        let n = self.labels.len();
        out.copy_from_slice(&self.bias);
        for &(f, v) in x {
            let row = &self.weights[f as usize * n..(f as usize + 1) * n];
            for (o, w) in out.iter_mut().zip(row) {
                *o += w * v;
            }
        }
    }

    /// The probability of each label for a text with these features, at the model's
    /// temperature.
    pub fn probabilities(&self, names: &[String]) -> Vec<f32> {
        self.probabilities_of(&self.encode(names))
    }

    /// A text's features as this model's rows and values, for [`probabilities_of`](Self::probabilities_of).
    pub fn encode(&self, names: &[String]) -> Vec<(u32, f32)> {
        rows(&self.features, names)
    }

    /// [`probabilities`](Self::probabilities) of a text already encoded (by this model, or by the
    /// model whose rows it shares).
    pub fn probabilities_of(&self, x: &[(u32, f32)]) -> Vec<f32> {
        let mut p = vec![0.0; self.labels.len()];
        self.scores_into(x, &mut p);
        let t = self.temperature.max(1e-3);
        for s in p.iter_mut() {
            *s /= t;
        }
        softmax(&mut p);
        p
    }

    /// The features of a text that pushed it most towards `label`: the model's reason.
    pub fn reasons(&self, names: &[String], label: usize, n: usize) -> Vec<(String, f32)> {
        let k = self.labels.len();
        let mut contributions: Vec<(String, f32)> = names
            .iter()
            .filter_map(|name| self.features.get(name).map(|f| (name.clone(), self.weights[*f as usize * k + label])))
            .filter(|(_, w)| *w > 0.0)
            .collect();
        contributions.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        contributions.truncate(n);
        contributions
    }

    /// Chooses the temperature that makes the probabilities on held-out `examples` most honest
    /// (the lowest negative log-likelihood over a grid).
    pub fn calibrate(&mut self, examples: &[(Vec<String>, usize)]) {
        if examples.is_empty() {
            return;
        }
        let raw: Vec<(Vec<f32>, usize)> = examples
            .iter()
            .map(|(names, y)| {
                let x = rows(&self.features, names);
                let mut s = vec![0.0; self.labels.len()];
                self.scores_into(&x, &mut s);
                (s, *y)
            })
            .collect();
        let nll = |t: f32| -> f32 {
            raw.iter()
                .map(|(s, y)| {
                    let mut p: Vec<f32> = s.iter().map(|v| v / t).collect();
                    softmax(&mut p);
                    -p[*y].max(1e-7).ln()
                })
                .sum()
        };
        let grid = (1..=60).map(|i| i as f32 * 0.1);
        self.temperature = grid.map(|t| (t, nll(t))).min_by(|a, b| a.1.total_cmp(&b.1)).map_or(1.0, |(t, _)| t);
    }
}

/// The normalised text and its n-grams, the features every model of the classifier shares.
pub fn text_features(text: &str) -> (String, Vec<String>) {
    let normalized = normalize(text);
    let grams = ngrams(&normalized);
    (normalized, grams)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngrams_stay_within_clauses() {
        let (_, g) = text_features("不停，电话");
        assert!(g.contains(&"不停".to_string()) && g.contains(&"电话".to_string()));
        assert!(!g.iter().any(|x| x.contains("停电")), "no n-gram across the comma: {g:?}");
        assert!(g.contains(&"^不".to_string()) && g.contains(&"话$".to_string()));
    }

    #[test]
    fn a_model_learns_and_is_deterministic() {
        let data = [
            ("楼下垃圾堆满了没人清", 0),
            ("垃圾桶臭得不行", 0),
            ("小区门口乱停车堵路", 1),
            ("车停在人行道上", 1),
            ("又有人乱停车", 1),
            ("垃圾没人收", 0),
        ];
        let examples: Vec<(Vec<String>, usize)> = data.iter().map(|(t, y)| (text_features(t).1, *y)).collect();
        let labels = vec!["rubbish".to_string(), "parking".to_string()];
        let a = LinearModel::train(labels.clone(), &examples, Training::default());
        let b = LinearModel::train(labels, &examples, Training::default());
        assert_eq!(a, b, "the same data gives the same model");
        let bytes = a.to_bytes();
        let (read, rest) = LinearModel::from_bytes(&bytes).unwrap();
        assert!(rest.is_empty());
        assert_eq!((read.labels.clone(), read.features.len()), (a.labels.clone(), a.features.len()));
        let p = read.probabilities(&text_features("门口垃圾没人管").1);
        assert!(p[0] > 0.8, "the stored model decides as the trained one: {p:?}");
        let p = a.probabilities(&text_features("门口垃圾没人管").1);
        assert!(p[0] > 0.8, "{p:?}");
        let p = a.probabilities(&text_features("有辆车停在路口").1);
        assert!(p[1] > 0.8, "{p:?}");
        let reasons = a.reasons(&text_features("垃圾").1, 0, 3);
        assert!(reasons.iter().any(|(f, _)| f.contains("垃")), "{reasons:?}");

        // Naive Bayes over the same rows: stored without them, read back sharing them.
        let nb = LinearModel::naive_bayes(&a, &examples, 1.0);
        let x = a.encode(&text_features("门口垃圾没人管").1);
        assert!(nb.probabilities_of(&x)[0] > 0.5, "{:?}", nb.probabilities_of(&x));
        let bytes = nb.to_bytes_without_features();
        let (mut read, rest) = LinearModel::from_bytes(&bytes).unwrap();
        assert!(rest.is_empty() && read.features.is_empty());
        read.share_features(&a).unwrap();
        let (p, q) = (nb.probabilities_of(&x), read.probabilities_of(&x));
        assert!((p[0] - q[0]).abs() < 0.02, "the stored model decides as the trained one: {p:?} {q:?}");
        let other = LinearModel::train(vec!["x".into(), "y".into()], &examples[..2], Training::default());
        assert!(read.share_features(&other).is_err(), "rows of another size are refused");
    }
}
