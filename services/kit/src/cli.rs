//! The edge of every service binary: find the configuration, start a runtime, run, report.

use std::{future::Future, path::PathBuf, process::ExitCode, sync::Arc};

use crate::{DistrictConfig, Running, SystemClock, clock::SharedClock};

/// Where the district configuration is read from when no `--config` is given.
pub const DEFAULT_CONFIG: &str = "deploy/districts/demo/jiesu.toml";

/// `jiesu-<service> [--config PATH]` (or `JIESU_CONFIG=PATH`), `--version`, `--help`: loads the
/// district file, starts the service with `start` on the system clock and runs it until Ctrl-C
/// or SIGTERM. A service's `main.rs` is this one call.
pub fn main<F, Fut, R, E>(service: &'static str, start: F) -> ExitCode
where
    F: FnOnce(DistrictConfig, SharedClock) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    R: Serving,
    E: std::fmt::Display,
{
    let bin = crate::telemetry::service_name(service);
    let mut args = std::env::args().skip(1);
    let mut path = std::env::var("JIESU_CONFIG").map(PathBuf::from).unwrap_or_else(|_| DEFAULT_CONFIG.into());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" | "-c" => match args.next() {
                Some(p) => path = p.into(),
                None => return usage(&bin, "--config needs a path"),
            },
            "--version" | "-V" => {
                println!("{bin} {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                println!(
                    "{bin} [--config PATH] [--version]\n\nRuns the {service} service of a Jiesu district.\nPATH defaults to $JIESU_CONFIG, else {DEFAULT_CONFIG}.\nAny key can be overridden with JIESU__SECTION__KEY=value."
                );
                return ExitCode::SUCCESS;
            }
            other => return usage(&bin, &format!("unknown argument {other:?}")),
        }
    }
    let config = match DistrictConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{bin}: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{bin}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let result = match start(config, Arc::new(SystemClock)).await {
            Ok(running) => running.until_stopped().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        crate::telemetry::shutdown();
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{bin}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A started process that runs until Ctrl-C, SIGTERM or a failure: a service's [`Running`], or
/// the citizens' web front.
pub trait Serving {
    fn until_stopped(self) -> impl Future<Output = Result<(), crate::Error>>;
}

impl Serving for Running {
    fn until_stopped(self) -> impl Future<Output = Result<(), crate::Error>> {
        Running::until_stopped(self)
    }
}

fn usage(bin: &str, problem: &str) -> ExitCode {
    eprintln!("{bin}: {problem}\nusage: {bin} [--config PATH] [--version]");
    ExitCode::from(2)
}
