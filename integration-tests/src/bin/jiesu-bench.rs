//! `jiesu-bench` — how fast a district takes cases in and gets them to their units.
//!
//! Starts a whole district in this process (real nats-server, the six services, SQLite files or
//! PostgreSQL databases), submits N cases with C in flight — over gRPC, or as a channel
//! producer publishing JSON on JetStream — and measures, per run, the time from each submission
//! to its `case.dispatched` event, and the end-to-end throughput. Prints every run and the
//! medians. Run it in release mode:
//!
//! ```text
//! cargo run --release -p jiesu-integration-tests --bin jiesu-bench -- --cases 500 --runs 3 --via nats
//! ```

use jiesu_proto::{Named, v1 as ev};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use jiesu_integration_tests::{Backend, District};
use jiesu_proto::v1::{CaseDispatched, CaseReceived, Citizen, Location, Submission, SubmitRequest};
use prost::Message;

struct Args {
    cases: usize,
    runs: usize,
    concurrency: usize,
    backend: Backend,
    via_nats: bool,
}

fn args() -> Result<Args> {
    let mut a = Args { cases: 300, runs: 3, concurrency: 32, backend: Backend::Sqlite, via_nats: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--cases" => a.cases = value()?.parse()?,
            "--runs" => a.runs = value()?.parse()?,
            "--concurrency" => a.concurrency = value()?.parse()?,
            "--backend" => {
                a.backend = match value()?.as_str() {
                    "sqlite" => Backend::Sqlite,
                    "postgres" => Backend::Postgres,
                    other => bail!("--backend is sqlite or postgres, not {other}"),
                }
            }
            "--via" => {
                a.via_nats = match value()?.as_str() {
                    "grpc" => false,
                    "nats" => true,
                    other => bail!("--via is grpc or nats, not {other}"),
                }
            }
            "--help" | "-h" => {
                println!("jiesu-bench [--cases N] [--runs R] [--concurrency C] [--backend sqlite|postgres] [--via grpc|nats]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

const TEXTS: [(&str, &str); 6] = [
    ("小区门口私装地锁", "小区门口有人私装地锁，占用公共车位。"),
    ("拖欠工资", "公司拖欠三个月工资不发。"),
    ("夜间施工噪音", "工地夜间施工噪音太大，晚上十一点还在打桩。"),
    ("井盖缺失", "路口井盖丢失，存在安全隐患。"),
    ("物业不作为", "物业不管电梯坏了一周没人修。"),
    ("停水", "我们小区从早上开始停水，一直没有通知。"),
];

fn submission(run: usize, i: usize) -> Submission {
    let (title, description) = TEXTS[i % TEXTS.len()];
    Submission {
        channel: "hotline".into(),
        channel_ref: format!("bench-{run}-{i}"),
        citizen: Some(Citizen { name: "市民".into(), phone: format!("138{:08}", i), anonymous: false }),
        title: title.into(),
        description: description.into(),
        location: Some(Location { street: if i.is_multiple_of(2) { "st-dongmen" } else { "st-xinan" }.into(), ..Default::default() }),
        ..Default::default()
    }
}

struct RunResult {
    seconds: f64,
    p50: f64,
    p95: f64,
    p99: f64,
}

async fn one_run(a: &Args, run: usize) -> Result<RunResult> {
    let d = District::start(a.backend).await?;
    let client = d.nats.operator().await;
    // Core subscriptions see what JetStream stores: when each case was received and dispatched.
    let mut received = client.subscribe(d.subjects.event(ev::CaseReceived::TYPE)).await?;
    let mut dispatched = client.subscribe(d.subjects.event(ev::CaseDispatched::TYPE)).await?;
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let ref_of_case: Arc<Mutex<HashMap<String, String>>> = Default::default();
    {
        let ref_of_case = ref_of_case.clone();
        tokio::spawn(async move {
            while let Some(m) = received.next().await {
                if let Ok(r) = CaseReceived::decode(m.payload.as_ref()) {
                    ref_of_case.lock().unwrap().insert(r.meta.unwrap_or_default().case_id, r.channel_ref);
                }
            }
        });
    }
    let done = tokio::spawn({
        let (sent_at, ref_of_case, n) = (sent_at.clone(), ref_of_case.clone(), a.cases);
        async move {
            let mut latencies = Vec::with_capacity(n);
            let mut pending = Vec::new();
            while latencies.len() < n {
                let Some(m) = dispatched.next().await else { break };
                let at = Instant::now();
                if let Ok(e) = CaseDispatched::decode(m.payload.as_ref()) {
                    pending.push((e.meta.unwrap_or_default().case_id, at));
                }
                // case.received may arrive a moment after; resolve what can be resolved.
                pending.retain(|(case_id, at)| {
                    let r = ref_of_case.lock().unwrap().get(case_id).cloned();
                    match r.and_then(|r| sent_at.lock().unwrap().get(&r).copied()) {
                        Some(t0) => {
                            latencies.push(at.duration_since(t0).as_secs_f64());
                            false
                        }
                        None => true,
                    }
                });
            }
            latencies
        }
    });

    let start = Instant::now();
    let js = async_nats::jetstream::new(client.clone());
    let intake = d.intake().await;
    futures::stream::iter(0..a.cases)
        .for_each_concurrent(a.concurrency, |i| {
            let (js, mut intake, sent_at) = (js.clone(), intake.clone(), sent_at.clone());
            let subject = d.subjects.intake("hotline");
            let via_nats = a.via_nats;
            async move {
                let s = submission(run, i);
                sent_at.lock().unwrap().insert(s.channel_ref.clone(), Instant::now());
                if via_nats {
                    let mut h = async_nats::HeaderMap::new();
                    h.insert("Nats-Msg-Id", s.channel_ref.as_str());
                    let ack = js.publish_with_headers(subject, h, s.encode_to_vec().into()).await.expect("publish");
                    ack.await.expect("stream ack");
                } else {
                    intake.submit(SubmitRequest { submission: Some(s) }).await.expect("submit");
                }
            }
        })
        .await;
    let submitted = start.elapsed().as_secs_f64();
    let mut latencies =
        tokio::time::timeout(Duration::from_secs(300), done).await.context("not every case was dispatched within 300 s")??;
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "run {run}: {} cases submitted in {submitted:.2} s, all dispatched in {seconds:.2} s = {:.0} cases/s; submit→dispatched p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms",
        a.cases,
        a.cases as f64 / seconds,
        pct(0.50) * 1e3,
        pct(0.95) * 1e3,
        pct(0.99) * 1e3
    );
    let result = RunResult { seconds, p50: pct(0.50), p95: pct(0.95), p99: pct(0.99) };
    d.shutdown().await;
    Ok(result)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    println!(
        "jiesu-bench: {} cases × {} runs, {} in flight, via {}, on {:?}{}",
        a.cases,
        a.runs,
        a.concurrency,
        if a.via_nats { "NATS (protobuf)" } else { "gRPC" },
        a.backend,
        if cfg!(debug_assertions) { " — DEBUG BUILD: figures are not representative, use --release" } else { "" }
    );
    let mut results = Vec::new();
    for run in 0..a.runs {
        results.push(one_run(&a, run).await?);
    }
    let throughput = median(results.iter().map(|r| a.cases as f64 / r.seconds).collect());
    println!(
        "median of {} runs: {throughput:.0} cases/s end to end; submit→dispatched p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms",
        a.runs,
        median(results.iter().map(|r| r.p50).collect()) * 1e3,
        median(results.iter().map(|r| r.p95).collect()) * 1e3,
        median(results.iter().map(|r| r.p99).collect()) * 1e3,
    );
    Ok(())
}
