//! The edge of every service binary: find the configuration, start a runtime, run, report.

use std::{future::Future, path::PathBuf, process::ExitCode};

use crate::DistrictConfig;

/// Where the district configuration is read from when no `--config` is given.
pub const DEFAULT_CONFIG: &str = "deploy/districts/demo/jiesu.toml";

/// `jiesu-<service> [--config PATH]` (or `JIESU_CONFIG=PATH`), `--version`, `--help`: loads the district file and runs
/// the service until Ctrl-C or SIGTERM.
pub fn main<F, Fut, E>(service: &'static str, run: F) -> ExitCode
where
    F: FnOnce(DistrictConfig) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut args = std::env::args().skip(1);
    let mut path = std::env::var("JIESU_CONFIG").map(PathBuf::from).unwrap_or_else(|_| DEFAULT_CONFIG.into());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" | "-c" => match args.next() {
                Some(p) => path = p.into(),
                None => return usage(service, "--config needs a path"),
            },
            "--version" | "-V" => {
                println!("jiesu-{service} {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                println!(
                    "jiesu-{service} [--config PATH] [--version]\n\nRuns the {service} service of a Jiesu district.\nPATH defaults to $JIESU_CONFIG, else {DEFAULT_CONFIG}.\nAny key can be overridden with JIESU__SECTION__KEY=value."
                );
                return ExitCode::SUCCESS;
            }
            other => return usage(service, &format!("unknown argument {other:?}")),
        }
    }
    let config = match DistrictConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jiesu-{service}: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("jiesu-{service}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let result = run(config).await;
        crate::telemetry::shutdown();
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jiesu-{service}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(service: &str, problem: &str) -> ExitCode {
    eprintln!("jiesu-{service}: {problem}\nusage: jiesu-{service} [--config PATH]");
    ExitCode::from(2)
}
