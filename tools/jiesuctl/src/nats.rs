//! `jiesuctl nats …`: the district's NATS users, the server configuration generated from the
//! district file, and the streams and consumers only the operator may create.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use jiesu_kit::{
    DistrictConfig, Subjects,
    access::{self, ClusterLayout, ServerLayout, TlsFiles},
    config::NatsSettings,
};

// Parsed once per run: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum NatsCommand {
    /// Makes an nkey seed for every NATS user of the district that has none yet: `operator`,
    /// each service, and `channel-<id>` for each intake channel. Each file (`<user>.nk`, mode
    /// 0600) goes to the machine of that user alone; the server's configuration holds only the
    /// public keys.
    Keys {
        /// Where the seeds are (default: `nats.keys_dir`, else `keys/nats`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Writes the nats-server configuration of the district: its users and their permissions
    /// (least privilege, from the district file), JetStream, and optionally a cluster and TLS.
    Config {
        /// Where the seeds are (default: `nats.keys_dir`, else `keys/nats`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Client listener.
        #[arg(long, default_value = "127.0.0.1:4222")]
        listen: String,
        /// JetStream's store directory.
        #[arg(long, default_value = "data/nats")]
        store_dir: PathBuf,
        /// This node's name (required in a cluster).
        #[arg(long)]
        server_name: Option<String>,
        /// The cluster's name; with it, --cluster-listen and --route.
        #[arg(long)]
        cluster_name: Option<String>,
        /// This node's route listener, e.g. 0.0.0.0:6222.
        #[arg(long, default_value = "0.0.0.0:6222")]
        cluster_listen: String,
        /// Every node's route URL (nats://n1:6222); repeat.
        #[arg(long = "route")]
        routes: Vec<String>,
        /// The password the nodes' routes share.
        #[arg(long, env = "JIESU_NATS_ROUTE_PASSWORD", hide_env_values = true)]
        route_password: Option<String>,
        /// The server's certificate (PEM), for TLS on every port.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The server certificate's private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// The CA clients' and nodes' certificates are signed by.
        #[arg(long)]
        tls_ca: Option<PathBuf>,
        /// Demand a certificate from every client (mutual TLS); needs --tls-ca.
        #[arg(long, requires = "tls_ca")]
        verify_clients: bool,
        /// Write here instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Creates or updates, as the operator, both streams and every durable consumer the
    /// district file implies. Run it before the services start and after each change of the
    /// file's `[nats]`, `consumer` or channel settings.
    Provision,
}

pub async fn run(config: Option<&DistrictConfig>, path: &Path, command: NatsCommand) -> Result<()> {
    let config = config.with_context(|| format!("no district file at {}: give --config", path.display()))?;
    let nats: NatsSettings = config.part("nats")?;
    let subjects = Subjects::new(&nats.subject_root);
    let keys_dir = |dir: Option<PathBuf>| dir.or_else(|| nats.keys_dir.clone()).unwrap_or_else(|| PathBuf::from("keys/nats"));
    let users = access::district_users(&subjects, &config.channel_ids()?);
    match command {
        NatsCommand::Keys { dir } => {
            let dir = keys_dir(dir);
            let made = access::ensure_seeds(&dir, users.iter().map(|u| u.name.as_str()))?;
            for user in &users {
                let note = if made.contains(&user.name) { "new" } else { "kept" };
                let public = access::public_key(&access::read_seed(&dir, &user.name)?)?;
                println!("{:<28} {public}  ({note})", user.name);
            }
            println!("seeds in {}: give each to its user only (nats.keys_dir of the services)", dir.display());
            Ok(())
        }
        NatsCommand::Config {
            dir,
            listen,
            store_dir,
            server_name,
            cluster_name,
            cluster_listen,
            routes,
            route_password,
            tls_cert,
            tls_key,
            tls_ca,
            verify_clients,
            out,
        } => {
            let dir = keys_dir(dir);
            let mut keys = BTreeMap::new();
            for user in &users {
                let seed = access::read_seed(&dir, &user.name).context("run `jiesuctl nats keys` first")?;
                keys.insert(user.name.clone(), access::public_key(&seed)?);
            }
            let cluster = match cluster_name {
                None => None,
                Some(name) => {
                    if routes.is_empty() {
                        bail!("a cluster needs its nodes' routes: --route nats://<node>:6222 for each");
                    }
                    if server_name.is_none() {
                        bail!("a node of a cluster needs its own --server-name");
                    }
                    let password = route_password
                        .context("a cluster's routes need a shared password: --route-password or JIESU_NATS_ROUTE_PASSWORD")?;
                    Some(ClusterLayout { name, listen: cluster_listen, routes, user: "route".into(), password })
                }
            };
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key, ca: tls_ca, verify_clients }),
                _ => None,
            };
            if tls.is_none() && !is_loopback(&listen) {
                bail!(
                    "{listen} is not a loopback address: give --tls-cert and --tls-key, so that keys and personal data never cross the network in clear"
                );
            }
            let layout = ServerLayout { listen, server_name, store_dir, cluster, tls };
            let text = access::render_server_config(&layout, &users, &keys)?;
            match out {
                None => print!("{text}"),
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
                    println!("wrote {} ({} users); start the server with: nats-server -c {}", path.display(), users.len(), path.display());
                }
            }
            Ok(())
        }
        NatsCommand::Provision => {
            let dir = keys_dir(None);
            let client = connect(&nats, &dir, access::OPERATOR).await?;
            let done = access::provision(&async_nats::jetstream::new(client), config).await?;
            println!("streams: {}", done.streams.join(", "));
            println!("consumers: {}", done.consumers.join(", "));
            Ok(())
        }
    }
}

/// Connects to the district's NATS as `user`, with its seed from `dir` (if the file is there:
/// a server without authentication needs none), its own inbox prefix and the district's TLS.
pub async fn connect(nats: &NatsSettings, dir: &Path, user: &str) -> Result<async_nats::Client> {
    let settings = NatsSettings { keys_dir: access::seed_path(dir, user).exists().then(|| dir.to_path_buf()), ..nats.clone() };
    let options = jiesu_kit::messaging::connect_options(&settings, user)?;
    options.connect(jiesu_kit::messaging::server_addrs(&settings)?).await.with_context(|| {
        format!("cannot connect to NATS at {} as {user} (its key: {})", nats.servers(), access::seed_path(dir, user).display())
    })
}

fn is_loopback(listen: &str) -> bool {
    let host = listen.rsplit_once(':').map_or(listen, |(h, _)| h).trim_matches(['[', ']']);
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_listeners() {
        assert!(super::is_loopback("127.0.0.1:4222"));
        assert!(super::is_loopback("[::1]:4222"));
        assert!(super::is_loopback("localhost:4222"));
        assert!(!super::is_loopback("0.0.0.0:4222"));
        assert!(!super::is_loopback("10.1.2.3:4222"));
    }
}
