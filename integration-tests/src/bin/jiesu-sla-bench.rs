//! `jiesu-sla-bench` — the SLA timer at city scale: a million armed clocks, a steady stream of them
//! falling due, and a restart in the middle of it all.
//!
//! Starts a real nats-server and the SLA timer in this process on SQLite or PostgreSQL, fills the
//! `clocks` table with `--clocks` armed clocks (most due days from now, `--overdue` already past
//! their deadline, and `--rate` × `--seconds` falling due one after another at `--rate` per
//! second), then starts the timer and measures
//!
//! - restart to first firing: from the start of the service to the first `sla.breached` received;
//! - firing lateness: for each scheduled clock, the receipt of its `sla.breached` on NATS minus its
//!   deadline (p50, p99, max) — what a supervisor would see, publish and delivery included;
//! - throughput: scheduled firings per second while they fall due;
//! - memory: the process's resident memory over the run less before the timer started, per armed
//!   clock (the timer keeps a bounded window in memory, not the table), and the table's size on
//!   disk per clock.
//!
//! ```text
//! cargo run --release -p jiesu-integration-tests --bin jiesu-sla-bench -- --clocks 1000000 --rate 2000 --seconds 60
//! cargo run --release -p jiesu-integration-tests --bin jiesu-sla-bench -- --backend postgres
//! ```

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use futures::StreamExt;
use jiesu_integration_tests::{Backend, District};
use jiesu_proto::{Named, v1 as ev};
use prost::Message;

struct Args {
    clocks: u64,
    rate: u64,
    seconds: u64,
    overdue: u64,
    backend: Backend,
}

fn args() -> Result<Args> {
    let mut a = Args { clocks: 1_000_000, rate: 2_000, seconds: 60, overdue: 1_000, backend: Backend::Sqlite };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--clocks" => a.clocks = value()?.parse()?,
            "--rate" => a.rate = value()?.parse()?,
            "--seconds" => a.seconds = value()?.parse()?,
            "--overdue" => a.overdue = value()?.parse()?,
            "--backend" => {
                a.backend = match value()?.as_str() {
                    "sqlite" => Backend::Sqlite,
                    "postgres" => Backend::Postgres,
                    other => bail!("--backend is sqlite or postgres, not {other}"),
                }
            }
            "--help" | "-h" => {
                println!("jiesu-sla-bench [--clocks N] [--rate R] [--seconds S] [--overdue O] [--backend sqlite|postgres]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}; see --help"),
        }
    }
    if a.rate == 0 || a.rate * a.seconds + a.overdue > a.clocks {
        bail!("--rate × --seconds + --overdue must be at most --clocks, and --rate more than 0");
    }
    Ok(a)
}

/// The process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// One clock row as the timer stores it; `state` is "armed" or "warned" (one firing left).
fn row(i: u64, state: &str, deadline: i64, now: i64) -> String {
    let case_id = format!("0190bench-{i:012}-7000-8000-{:012}", i * 7919 % 1_000_000_007);
    let unit = ["st-dongmen", "st-xinan", "dept-water", "dept-housing"][(i % 4) as usize];
    let started = now - 3_600_000;
    let warn_at = if state == "warned" { started } else { deadline - 600_000 };
    let next = if state == "warned" { deadline } else { warn_at };
    format!(
        "('{case_id}:resolve', '{case_id}', 'BN{i:08}', 'resolve', 1, 1, '{state}', {started}, {warn_at}, {deadline}, NULL, \
         '{unit}', 'normal', {next}, 'bench', {now}, '', NULL, NULL)"
    )
}

const COLUMNS: &str = "clock_id, case_id, case_no, milestone, version, round, state, started_at, warn_at, deadline, stopped_at, \
    unit_id, urgency, next_fire_at, armed_by, updated_at, part, paused_at, escalate_at";

/// Inserts rows `from..to` made by `make`, in batches, in transactions.
async fn insert(url: &str, from: u64, to: u64, make: impl Fn(u64) -> String) -> Result<()> {
    const BATCH: u64 = 500;
    let mut statements = Vec::new();
    let mut i = from;
    while i < to {
        let end = (i + BATCH).min(to);
        let values: Vec<String> = (i..end).map(&make).collect();
        statements.push(format!("INSERT INTO clocks ({COLUMNS}) VALUES {}", values.join(",")));
        i = end;
    }
    for chunk in statements.chunks(100) {
        let sql = format!("BEGIN; {}; COMMIT;", chunk.join(";"));
        if url.starts_with("sqlite") {
            let pool = sqlx::SqlitePool::connect(url).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await?;
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(url).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await?;
            pool.close().await;
        }
    }
    Ok(())
}

/// The `clocks` table's size on disk, indexes included.
async fn table_bytes(url: &str) -> Result<u64> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        let wal = std::fs::metadata(format!("{path}-wal")).map_or(0, |m| m.len());
        return Ok(std::fs::metadata(path)?.len() + wal);
    }
    let pool = sqlx::PgPool::connect(url).await?;
    let (n,): (i64,) = sqlx::query_as("SELECT pg_total_relation_size('clocks')").fetch_one(&pool).await?;
    pool.close().await;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let a = args()?;
    let scheduled = a.rate * a.seconds;
    println!(
        "jiesu-sla-bench: {} clocks on {:?}; {} overdue at start, {} falling due at {}/s for {} s",
        a.clocks, a.backend, a.overdue, scheduled, a.rate, a.seconds
    );

    // The district, to create the timer's database and schema, then stopped to fill it.
    let mut d = District::start_with(a.backend, Arc::new(jiesu_kit::SystemClock), &["sla_timer"], |c| {
        c.set("telemetry.log_filter", "warn");
    })
    .await?;
    d.stop_service("sla_timer").await;
    let url = d.config.service::<jiesu_sla_timer::Settings>("sla_timer")?.common.database_url;

    let filled = Instant::now();
    let now = Utc::now().timestamp_millis();
    let far = a.clocks - scheduled - a.overdue;
    // Far ones: due over the next 30 days, never within the run.
    insert(&url, 0, far, |i| row(i, "armed", now + 86_400_000 + (i as i64 * 2_592_000_000 / far.max(1) as i64), now)).await?;
    insert(&url, far, far + a.overdue, |i| row(i, "warned", now - 3_600_000 + (i - far) as i64, now)).await?;
    // The scheduled ones: one every 1/rate s, from a lead time after the timer starts.
    let lead_ms: i64 = 15_000;
    let first_due = Utc::now().timestamp_millis() + lead_ms;
    let step = 1_000_000 / a.rate as i64; // µs between two deadlines
    let base = far + a.overdue;
    insert(&url, base, base + scheduled, move |i| row(i, "warned", first_due + ((i - base) as i64 * step) / 1000, now)).await?;
    let bytes_on_disk = table_bytes(&url).await?;
    println!(
        "filled in {:.1} s; the table and its indexes: {:.0} MB, {} bytes per clock",
        filled.elapsed().as_secs_f64(),
        bytes_on_disk as f64 / 1e6,
        bytes_on_disk / a.clocks
    );

    // Listen before starting: every breach, with when it arrived.
    let client = d.nats.operator().await;
    let mut breaches = client.subscribe(d.subjects.event(ev::SlaBreached::TYPE)).await?;
    let first = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(i64, String, i64)>();
    let listener = {
        let first = first.clone();
        tokio::spawn(async move {
            while let Some(msg) = breaches.next().await {
                let at = Utc::now().timestamp_millis();
                first.compare_exchange(0, started.elapsed().as_micros() as u64, Ordering::SeqCst, Ordering::SeqCst).ok();
                if let Ok(b) = ev::SlaBreached::decode(msg.payload) {
                    let deadline = b.deadline.map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000);
                    let _ = tx.send((at, b.clock_id, deadline));
                }
            }
        })
    };

    // Memory, sampled while the timer runs.
    let baseline = rss();
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    d.start_service("sla_timer").await?;
    let ready = started.elapsed();

    let mut seen = HashSet::new();
    let mut lateness = Vec::with_capacity(scheduled as usize);
    let (mut first_at, mut last_at) = (i64::MAX, 0);
    let give_up = Instant::now() + Duration::from_millis((lead_ms + 1000 * a.seconds as i64 + 120_000) as u64);
    while (seen.len() as u64) < scheduled + a.overdue && Instant::now() < give_up {
        let Ok(Some((at, clock_id, deadline))) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await else { continue };
        if !seen.insert(clock_id) {
            bail!("a clock fired twice");
        }
        if deadline >= first_due {
            lateness.push(at - deadline);
            first_at = first_at.min(at);
            last_at = last_at.max(at);
        }
    }
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    listener.abort();
    let fired_scheduled = lateness.len() as u64;
    lateness.sort_unstable();
    let to_first = Duration::from_micros(first.load(Ordering::SeqCst));
    let rss_growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);

    println!("service start (migrations, NATS, consumers): {:.2} s", ready.as_secs_f64());
    println!("restart to first firing: {:.2} s", to_first.as_secs_f64());
    println!("scheduled firings received: {fired_scheduled} of {scheduled} (all {} received: {})", scheduled + a.overdue, seen.len());
    if fired_scheduled > 1 {
        let span = (last_at - first_at).max(1) as f64 / 1000.0;
        println!("throughput while falling due: {:.0} firings/s", fired_scheduled as f64 / span);
    }
    println!(
        "firing lateness: p50 {} ms, p99 {} ms, max {} ms",
        percentile(&lateness, 0.5),
        percentile(&lateness, 0.99),
        lateness.last().copied().unwrap_or(0)
    );
    println!(
        "memory: {:.1} MB resident before the timer, +{:.1} MB at most while it ran: {:.1} bytes per armed clock",
        baseline as f64 / 1e6,
        rss_growth as f64 / 1e6,
        rss_growth as f64 / a.clocks as f64
    );
    d.shutdown().await;
    Ok(())
}
