//! `jiesuctl tls …`: a small CA for a district without a PKI of its own, and the certificates
//! of its services, its NATS server and its people's tools (docs/operations.md, "TLS").

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use jiesu_kit::{DistrictConfig, tls};

/// Who gets a certificate besides the services: the NATS server, `jiesuctl` (the people's
/// and operators' tool, for districts with mutual TLS), the citizens' web front (`jiesu-web`) and the
/// staff's desk (`jiesu-console`).
const OTHER_HOLDERS: [&str; 4] = ["nats", "jiesuctl", "web", "console"];

#[derive(Subcommand)]
pub enum TlsCommand {
    /// Makes the district's CA (`<dir>/ca.pem`, and `<dir>/ca.key.pem` mode 0600 — keep it off
    /// the servers) unless there is one.
    Ca {
        /// Where the certificates are (default: `[tls] dir`, else `keys/tls`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Issues (or renews) `<dir>/<name>.pem` and `<dir>/<name>.key.pem`, signed by the CA, valid
    /// as server and as client for each --host.
    Cert {
        /// The holder: a service's name (`dispatch`), `nats`, `jiesuctl`, …
        #[arg(long)]
        name: String,
        /// A DNS name or IP address the holder is reached at; repeat.
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The CA (if missing) and a certificate for every holder of the district that has none:
    /// the six services, `nats` and `jiesuctl`, each for every --host.
    District {
        /// Hosts every certificate is valid for (default: 127.0.0.1 and localhost).
        #[arg(long = "host")]
        hosts: Vec<String>,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub fn run(config: Option<&DistrictConfig>, path: &Path, command: TlsCommand) -> Result<()> {
    let config = config.with_context(|| format!("no district file at {}: give --config", path.display()))?;
    let settings: tls::TlsSettings = config.part("tls")?;
    let district: jiesu_kit::config::District = config.part("district")?;
    // The CA's name comes from the district: every certificate names it as issuer.
    let ca_name = format!("Jiesu CA {}", district.code);
    let dir_of = |dir: Option<PathBuf>| dir.or_else(|| settings.dir.clone()).unwrap_or_else(|| PathBuf::from("keys/tls"));
    match command {
        TlsCommand::Ca { dir } => {
            let dir = dir_of(dir);
            let made = tls::ensure_ca(&dir, &ca_name)?;
            println!("{} {}", if made { "made" } else { "kept" }, dir.join(tls::CA).display());
        }
        TlsCommand::Cert { name, hosts, dir } => {
            let dir = dir_of(dir);
            tls::issue_cert(&dir, &ca_name, &name, &hosts)?;
            println!("issued {} for {}", tls::cert_paths(&dir, &name).0.display(), hosts.join(", "));
        }
        TlsCommand::District { hosts, dir } => {
            let dir = dir_of(dir);
            let hosts = if hosts.is_empty() { vec!["127.0.0.1".to_string(), "localhost".to_string()] } else { hosts };
            tls::ensure_ca(&dir, &ca_name)?;
            let services = jiesu_kit::access::SERVICES.iter().map(|s| s.service);
            for name in services.chain(OTHER_HOLDERS) {
                let (cert, _) = tls::cert_paths(&dir, name);
                if cert.exists() {
                    println!("kept   {}", cert.display());
                    continue;
                }
                tls::issue_cert(&dir, &ca_name, name, &hosts)?;
                println!("issued {} for {}", cert.display(), hosts.join(", "));
            }
        }
    }
    Ok(())
}
