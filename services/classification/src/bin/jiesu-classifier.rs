//! `jiesu-classifier` — trains the classifier's model file, and evaluates it on a held-out split.
//!
//! ```text
//! jiesu-classifier train    [--data services/classification/data/cases] [--also FILE]… [--taxonomy FILE] [--out FILE]
//! jiesu-classifier evaluate [--data services/classification/data/cases] [--taxonomy FILE] [--fold 0…3|all] [--errors]
//! jiesu-classifier export-corrections --database URL [--out FILE]
//! jiesu-classifier classify < texts.txt     # one request per line: the built-in model's decision
//! ```
//!
//! `export-corrections` writes the decisions the centre's reviewers made (人工复核: confirmed or
//! reclassified) from the classification service's database as labelled requests, one JSON
//! object per line; `train --also FILE` learns from them beside the project's data set.
//!
//! `evaluate` trains on three quarters of every sub-item's requests (the calibration taken from
//! those) and prints, on the quarter held out (`--fold`: which quarter, the fourth by default):
//! accuracy and macro-F1 over categories and over sub-items, precision, recall and F1 of each,
//! urgency accuracy, emergency recall and precision with every emergency missed and every false
//! alarm, the request type's accuracy, the most frequent confusions, what the review queue holds,
//! the same figures of the keyword classifier it replaces, and the median time per
//! classification. `--fold all` holds out each quarter in turn and prints the headline figures
//! of each and their mean: one quarter's figures move by a point or two with what it happens to
//! hold, so a change to the model is judged on all four.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result, bail};
use jiesu_classification::domain::{ClassifierModel, Decision, Labelled, ReviewRules, Taxonomy};

struct Args {
    command: String,
    data: PathBuf,
    taxonomy: Option<PathBuf>,
    out: Option<PathBuf>,
    also: Vec<PathBuf>,
    database: Option<String>,
    /// The quarter held out; `None`: each in turn (`--fold all`).
    fold: Option<usize>,
    /// `evaluate --errors`: print every held-out request whose category was missed.
    errors: bool,
}

fn args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let command = it.next().unwrap_or_else(|| "--help".into());
    let mut a = Args {
        command,
        data: PathBuf::from("services/classification/data/cases"),
        taxonomy: None,
        out: None,
        also: Vec::new(),
        database: None,
        fold: Some(3),
        errors: false,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => a.data = value()?.into(),
            "--taxonomy" => a.taxonomy = Some(value()?.into()),
            "--out" => a.out = Some(value()?.into()),
            "--also" => a.also.push(value()?.into()),
            "--database" => a.database = Some(value()?),
            "--errors" => a.errors = true,
            "--fold" => {
                let v = value()?;
                a.fold = match v.as_str() {
                    "all" => None,
                    _ => Some(v.parse().ok().filter(|f| *f < 4).context("--fold is a quarter of the data: 0, 1, 2, 3 or all")?),
                };
            }
            other => bail!("unknown argument {other}; see --help"),
        }
    }
    Ok(a)
}

/// The labelled requests of one `.jsonl` file.
fn load_file(f: &Path) -> Result<Vec<Labelled>> {
    let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        rows.push(serde_json::from_str(line).with_context(|| format!("{}:{}", f.display(), i + 1))?);
    }
    Ok(rows)
}

/// Every `*.jsonl` file of `dir`, in name order, each line one labelled request.
fn load(dir: &Path) -> Result<Vec<(String, Vec<Labelled>)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let rows = load_file(&f)?;
        out.push((f.file_name().unwrap_or_default().to_string_lossy().into_owned(), rows));
    }
    if out.is_empty() {
        bail!("no .jsonl files in {}", dir.display());
    }
    Ok(out)
}

fn taxonomy(path: Option<&Path>) -> Result<Taxonomy> {
    Ok(match path {
        Some(p) => Taxonomy::parse(&std::fs::read_to_string(p)?)?,
        None => Taxonomy::default_taxonomy(),
    })
}

/// Each label seen in `pairs` (truth, predicted) with its precision, recall and F1.
fn per_label(pairs: &[(String, String)]) -> Vec<(String, f64, f64, f64)> {
    let mut labels: Vec<&String> = pairs.iter().map(|(t, _)| t).collect();
    labels.sort();
    labels.dedup();
    labels
        .into_iter()
        .map(|l| {
            let tp = pairs.iter().filter(|(t, p)| t == l && p == l).count() as f64;
            let fp = pairs.iter().filter(|(t, p)| t != l && p == l).count() as f64;
            let fn_ = pairs.iter().filter(|(t, p)| t == l && p != l).count() as f64;
            let ratio = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
            (l.clone(), ratio(tp, tp + fp), ratio(tp, tp + fn_), ratio(2.0 * tp, 2.0 * tp + fp + fn_))
        })
        .collect()
}

/// Macro-F1 over the labels seen in `pairs` (truth, predicted).
fn macro_f1(pairs: &[(String, String)]) -> f64 {
    let labels = per_label(pairs);
    labels.iter().map(|(_, _, _, f1)| f1).sum::<f64>() / labels.len().max(1) as f64
}

fn accuracy(pairs: &[(String, String)]) -> f64 {
    pairs.iter().filter(|(t, p)| t == p).count() as f64 / pairs.len().max(1) as f64
}

struct Figures {
    /// Whether to print each category's and sub-item's figures.
    detailed: bool,
    sub_item: Vec<(String, String)>,
    urgency: Vec<(String, String)>,
    request_type: Vec<(String, String)>,
}

/// Of one urgency in (truth, decided) pairs: how many there were, how many were called so, and
/// how many of those rightly.
fn urgency_counts(pairs: &[(String, String)], urgency: &str) -> (usize, usize, usize) {
    let truth = pairs.iter().filter(|(t, _)| t == urgency).count();
    let called = pairs.iter().filter(|(_, p)| p == urgency).count();
    let right = pairs.iter().filter(|(t, p)| t == urgency && p == urgency).count();
    (truth, called, right)
}

impl Figures {
    fn new(detailed: bool) -> Figures {
        Figures { detailed, sub_item: Vec::new(), urgency: Vec::new(), request_type: Vec::new() }
    }

    /// What the classifier decided of one labelled request.
    fn record(&mut self, truth: &Labelled, d: &Decision) {
        self.sub_item.push((truth.sub_item.clone(), d.candidates[0].sub_item.clone()));
        self.urgency.push((truth.urgency.clone(), d.urgency.key().to_string()));
        self.request_type.push((truth.request_type.clone(), d.request_type.clone()));
    }

    /// The (truth, chosen) pairs of the sub-items' categories.
    fn categories(&self) -> Vec<(String, String)> {
        self.sub_item.iter().map(|(t, p)| (t[..2].to_string(), p.get(..2).unwrap_or("").to_string())).collect()
    }

    /// The headline figures, in per cent: category, sub-item and urgency accuracy, emergency
    /// recall and precision, request type accuracy.
    fn headline(&self) -> [f64; 6] {
        let (truth, called, right) = urgency_counts(&self.urgency, "emergency");
        let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
        [
            100.0 * accuracy(&self.categories()),
            100.0 * accuracy(&self.sub_item),
            100.0 * accuracy(&self.urgency),
            pct(right, truth),
            pct(right, called),
            100.0 * accuracy(&self.request_type),
        ]
    }

    fn print(&self, name: &str) {
        let cat = self.categories();
        let (emergency_truth, flagged, caught) = urgency_counts(&self.urgency, "emergency");
        println!("{name}:");
        println!("  category  accuracy {:5.1} %   macro-F1 {:5.1} %", 100.0 * accuracy(&cat), 100.0 * macro_f1(&cat));
        println!("  sub-item  accuracy {:5.1} %   macro-F1 {:5.1} %", 100.0 * accuracy(&self.sub_item), 100.0 * macro_f1(&self.sub_item));
        println!("  urgency   accuracy {:5.1} %", 100.0 * accuracy(&self.urgency));
        println!(
            "  emergency recall {:5.1} % ({caught} of {emergency_truth})   precision {:5.1} % ({caught} of {flagged})",
            100.0 * caught as f64 / emergency_truth.max(1) as f64,
            100.0 * caught as f64 / flagged.max(1) as f64
        );
        let (complex_truth, called_complex, complex_right) = urgency_counts(&self.urgency, "complex");
        println!(
            "  complex   recall {:5.1} % ({complex_right} of {complex_truth})   precision {:5.1} % ({complex_right} of {called_complex})",
            100.0 * complex_right as f64 / complex_truth.max(1) as f64,
            100.0 * complex_right as f64 / called_complex.max(1) as f64
        );
        if !self.request_type.is_empty() {
            println!("  request type accuracy {:5.1} %", 100.0 * accuracy(&self.request_type));
        }
        let mut confusions: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (t, p) in self.sub_item.iter().filter(|(t, p)| t != p) {
            *confusions.entry((t.clone(), p.clone())).or_default() += 1;
        }
        let mut confusions: Vec<_> = confusions.into_iter().collect();
        confusions.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let top: Vec<String> = confusions.iter().take(8).map(|((t, p), n)| format!("{t}→{p} ×{n}")).collect();
        println!("  most confused (truth→chosen): {}", if top.is_empty() { "none".into() } else { top.join(", ") });
        if self.detailed {
            for (what, pairs) in [("category", &cat), ("sub-item", &self.sub_item)] {
                println!("  per {what} (precision / recall / F1):");
                for (label, p, r, f1) in per_label(pairs) {
                    println!("    {label:<6} {:5.1} % {:5.1} % {:5.1} %", 100.0 * p, 100.0 * r, 100.0 * f1);
                }
            }
        }
    }
}

/// Which of `files`' requests train, calibrate and are held out when quarter `fold` is held out:
/// every fourth request of each file from the `fold`-th, so that every sub-item is held out
/// alike; the calibration is every fifth of the rest.
fn split(files: &[(String, Vec<Labelled>)], fold: usize) -> [Vec<Labelled>; 3] {
    let (mut train, mut calibration, mut held_out) = (Vec::new(), Vec::new(), Vec::new());
    for (_, rows) in files {
        for (i, r) in rows.iter().enumerate() {
            match i % 4 {
                k if k == fold => held_out.push(r.clone()),
                _ if i % 5 == 4 => calibration.push(r.clone()),
                _ => train.push(r.clone()),
            }
        }
    }
    [train, calibration, held_out]
}

/// A model trained on `train` and `calibration`, as stored: written to bytes and read back,
/// quantised weights and all, so that what is evaluated is what a service would load.
fn trained_as_stored(taxonomy: &Taxonomy, train: &[Labelled], calibration: &[Labelled]) -> Result<ClassifierModel> {
    let model = ClassifierModel::train(taxonomy, train, calibration)?;
    ClassifierModel::from_bytes(&model.to_bytes()).map_err(anyhow::Error::msg)
}

/// The headline figures ([`Figures::headline`]) with quarter `fold` held out.
fn summary(taxonomy: &Taxonomy, files: &[(String, Vec<Labelled>)], fold: usize) -> Result<[f64; 6]> {
    let [train, calibration, held_out] = split(files, fold);
    let model = trained_as_stored(taxonomy, &train, &calibration)?;
    let mut figures = Figures::new(false);
    for r in &held_out {
        figures.record(r, &model.classify(taxonomy, &r.text));
    }
    Ok(figures.headline())
}

/// Everything `evaluate` prints with quarter `fold` held out.
fn evaluate(taxonomy: &Taxonomy, files: &[(String, Vec<Labelled>)], fold: usize, errors: bool) -> Result<()> {
    let [train, calibration, held_out] = split(files, fold);
    let model = trained_as_stored(taxonomy, &train, &calibration)?;
    println!(
        "trained on {} requests (temperatures fitted on {} of them first), evaluated on {} held out; model {}",
        train.len() + calibration.len(),
        calibration.len(),
        held_out.len(),
        model.version
    );
    let rules = ReviewRules::default();
    let (mut held, mut held_right, mut sent_right) = (0usize, 0usize, 0usize);
    let (mut missed, mut false_alarms) = (Vec::new(), Vec::new());
    let mut times = Vec::with_capacity(held_out.len());
    let mut new = Figures::new(true);
    let mut old = Figures::new(false);
    for r in &held_out {
        let start = Instant::now();
        let d = model.classify(taxonomy, &r.text);
        times.push(start.elapsed().as_nanos());
        let right = d.candidates[0].sub_item == r.sub_item;
        match rules.doubt(d.urgency, d.candidates[0].probability, d.candidates.get(1).map(|c| c.probability), false) {
            Some(_) => {
                held += 1;
                held_right += usize::from(right);
            }
            None => sent_right += usize::from(right),
        }
        if errors && r.sub_item[..2] != d.candidates[0].sub_item[..2] {
            let second = d.candidates.get(1).map_or("-", |c| c.sub_item.as_str());
            println!(
                "  wrong: {} → {} {:.2} (then {second}) | {}",
                r.sub_item, d.candidates[0].sub_item, d.candidates[0].probability, r.text
            );
        }
        new.record(r, &d);
        match (r.urgency == "emergency", d.urgency.key() == "emergency") {
            (true, false) => missed.push(r.text.clone()),
            (false, true) => false_alarms.push(r.text.clone()),
            _ => {}
        }
        let k = taxonomy.classify("", &r.text);
        old.sub_item.push((r.sub_item.clone(), k.sub_item));
        old.urgency.push((r.urgency.clone(), k.urgency.key().to_string()));
    }
    new.print("the trained classifier");
    for m in &missed {
        println!("  emergency missed: {m}");
    }
    for f in &false_alarms {
        println!("  false alarm: {f}");
    }
    let sent = held_out.len() - held;
    println!(
        "  review queue (min_confidence {}, min_margin {}): holds {held} of {} ({:.1} %; sub-item right in {:.1} % of those), \
         sends on the rest with the sub-item right in {:.1} %",
        rules.min_confidence,
        rules.min_margin,
        held_out.len(),
        100.0 * held as f64 / held_out.len().max(1) as f64,
        100.0 * held_right as f64 / held.max(1) as f64,
        100.0 * sent_right as f64 / sent.max(1) as f64
    );
    old.print("the keyword classifier it replaces");
    times.sort_unstable();
    let median = times.get(times.len() / 2).copied().unwrap_or(0);
    println!("median time per classification: {:.1} µs (build with --release for the real figure)", median as f64 / 1000.0);
    Ok(())
}

fn main() -> Result<()> {
    let a = args()?;
    let taxonomy = taxonomy(a.taxonomy.as_deref())?;
    match a.command.as_str() {
        "train" => {
            let mut files = load(&a.data)?;
            for f in &a.also {
                files.push((f.display().to_string(), load_file(f)?));
            }
            // Calibration on every fifth request of each file; then the final model keeps the
            // temperature and learns from all.
            let (mut fit, mut calibration) = (Vec::new(), Vec::new());
            for (_, rows) in &files {
                for (i, r) in rows.iter().enumerate() {
                    if i % 5 == 4 { calibration.push(r.clone()) } else { fit.push(r.clone()) }
                }
            }
            let model = ClassifierModel::train(&taxonomy, &fit, &calibration)?;
            let out = a.out.unwrap_or_else(|| PathBuf::from("services/classification/model/classifier.bin"));
            std::fs::write(&out, model.to_bytes()).with_context(|| format!("writing {}", out.display()))?;
            println!("model {} trained on {} requests, written to {}", model.version, model.trained_on, out.display());
        }
        "evaluate" => {
            let files = load(&a.data)?;
            match a.fold {
                Some(fold) => evaluate(&taxonomy, &files, fold, a.errors)?,
                None => {
                    println!("fold  category  sub-item  urgency  emergency recall / precision  request type");
                    // The folds are independent: trained side by side, one thread each.
                    let folds: Vec<Result<[f64; 6]>> = std::thread::scope(|scope| {
                        let (taxonomy, files) = (&taxonomy, &files);
                        let running: Vec<_> = (0..4).map(|fold| scope.spawn(move || summary(taxonomy, files, fold))).collect();
                        running.into_iter().map(|r| r.join().expect("a fold's training does not panic")).collect()
                    });
                    let mut sum = [0.0f64; 6];
                    for (fold, s) in folds.into_iter().enumerate() {
                        let s = s?;
                        println!(
                            "{fold:>4}  {:7.1} %  {:6.1} %  {:5.1} %  {:7.1} % / {:5.1} %           {:5.1} %",
                            s[0], s[1], s[2], s[3], s[4], s[5]
                        );
                        for (t, v) in sum.iter_mut().zip(s) {
                            *t += v / 4.0;
                        }
                    }
                    println!(
                        "mean  {:7.1} %  {:6.1} %  {:5.1} %  {:7.1} % / {:5.1} %           {:5.1} %",
                        sum[0], sum[1], sum[2], sum[3], sum[4], sum[5]
                    );
                }
            }
        }
        "emergencies" => {
            // The emergency rule alone on every labelled request: what it misses and what it
            // raises wrongly, to improve the rule or the labels.
            let files = load(&a.data)?;
            let (mut missed, mut wrong, mut total, mut caught) = (Vec::new(), Vec::new(), 0, 0);
            for r in files.iter().flat_map(|(_, rows)| rows) {
                let said = jiesu_classification::domain::emergency_rule(&taxonomy, &r.text);
                match (r.urgency == "emergency", said) {
                    (true, Some(_)) => {
                        total += 1;
                        caught += 1;
                    }
                    (true, None) => {
                        total += 1;
                        missed.push(r.text.clone());
                    }
                    (false, Some(words)) => wrong.push(format!("{} [{}]", r.text, words.join(", "))),
                    (false, None) => {}
                }
            }
            println!("the rule catches {caught} of {total} labelled emergencies, and raises {} false alarms", wrong.len());
            for m in &missed {
                println!("  missed: {m}");
            }
            for w in &wrong {
                println!("  false alarm: {w}");
            }
        }
        "classify" => {
            // One text per line on stdin: what the built-in model decides, and whether the case
            // would wait for review under the default rules.
            let model = ClassifierModel::from_bytes(jiesu_classification::DEFAULT_MODEL).map_err(anyhow::Error::msg)?;
            let rules = ReviewRules::default();
            for line in std::io::stdin().lines() {
                let text = line?;
                if text.trim().is_empty() {
                    continue;
                }
                let d = model.classify(&taxonomy, &text);
                let best = &d.candidates[0];
                let second = d.candidates.get(1);
                let doubt = rules.doubt(d.urgency, best.probability, second.map(|c| c.probability), false);
                println!(
                    "{} {:.2} | {} {:.2} | {} {} | {} | {text}",
                    best.sub_item,
                    best.probability,
                    second.map_or("-", |c| c.sub_item.as_str()),
                    second.map_or(0.0, |c| c.probability),
                    d.urgency.key(),
                    d.request_type,
                    doubt.map_or("goes on", |d| d.key()),
                );
            }
        }
        "export-corrections" => {
            let url = a.database.context("export-corrections needs --database URL (the classification service's database)")?;
            let rows = tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
                let db = jiesu_kit::Db::connect(&url, 1, &jiesu_kit::migrations!()).await?;
                let rows = jiesu_classification::store::corrections_since(&db, 0).await?;
                db.close().await;
                anyhow::Ok(rows)
            })?;
            let mut out = String::new();
            for c in &rows {
                let labelled = Labelled {
                    text: c.text.clone(),
                    sub_item: c.sub_item.clone(),
                    urgency: c.urgency.clone(),
                    request_type: c.request_type.clone(),
                    channel: c.channel.clone(),
                };
                out.push_str(&serde_json::to_string(&labelled)?);
                out.push('\n');
            }
            match &a.out {
                Some(path) => std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?,
                None => print!("{out}"),
            }
            let corrected = rows.iter().filter(|c| c.corrected).count();
            eprintln!("{} decisions exported ({corrected} corrected, {} confirmed)", rows.len(), rows.len() - corrected);
        }
        _ => {
            println!(
                "jiesu-classifier train|evaluate|emergencies|classify|export-corrections [--data DIR] [--also FILE] [--taxonomy FILE] [--out FILE] [--database URL]"
            );
        }
    }
    Ok(())
}
