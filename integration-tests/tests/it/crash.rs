//! Crash tests: the real binaries as processes, killed with SIGKILL at awkward moments, and a
//! NATS server that goes away and comes back. Nothing accepted may be lost or handled twice.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use jiesu_kit::{
    Subjects,
    testing::{NatsServer, StoredMessage, demo_config, eventually, free_port, grpc_channel, read_stream, unique_name},
};
use jiesu_proto::v1::{
    CaseReceived, CaseRef, CaseStatus, Citizen, Location, Submission, SubmitRequest, case_ref::Ref,
    dispatch_service_client::DispatchServiceClient, intake_service_client::IntakeServiceClient,
};
use prost::Message;

const SERVICES: [(&str, &str); 6] = [
    ("intake", "intake"),
    ("classification", "classification"),
    ("dispatch", "dispatch"),
    ("sla_timer", "sla-timer"),
    ("notification", "notification"),
    ("revisit", "revisit"),
];

/// The six binaries, built if needed, from this workspace's target directory.
fn binaries() -> Result<PathBuf> {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--bins"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .status()
        .context("running cargo build for the service binaries")?;
    ensure!(status.success(), "cargo build --bins failed");
    // The test binary lives in target/<profile>/deps; the service binaries one level up.
    let exe = std::env::current_exe()?;
    Ok(exe.parent().and_then(Path::parent).context("target directory")?.to_path_buf())
}

struct Process {
    child: Option<Child>,
    bin: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Process {
    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.bin)
            .arg("--config")
            .arg(demo_config())
            .envs(self.env.iter().cloned())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL: no clean shutdown, no draining.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Cluster {
    nats: NatsServer,
    subjects: Subjects,
    procs: BTreeMap<&'static str, Process>,
    grpc: BTreeMap<&'static str, SocketAddr>,
    admin: BTreeMap<&'static str, SocketAddr>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Result<Self> {
        let target = binaries()?;
        let nats = NatsServer::start();
        let dir = tempfile::Builder::new().prefix("jiesu-crash-").tempdir()?;
        let root = unique_name("c");
        let mut grpc = BTreeMap::new();
        let mut admin = BTreeMap::new();
        for (svc, _) in SERVICES {
            grpc.insert(svc, SocketAddr::from(([127, 0, 0, 1], free_port())));
            admin.insert(svc, SocketAddr::from(([127, 0, 0, 1], free_port())));
        }
        let mut procs = BTreeMap::new();
        for (svc, bin) in SERVICES {
            let key = svc.to_ascii_uppercase();
            let env = vec![
                ("JIESU__NATS__URL".to_string(), nats.url()),
                ("JIESU__NATS__SUBJECT_ROOT".to_string(), root.clone()),
                ("JIESU__TELEMETRY__LOG_FILTER".to_string(), "info".to_string()),
                (format!("JIESU__{key}__DATABASE_URL"), format!("sqlite://{}", dir.path().join(format!("{svc}.db")).display())),
                (format!("JIESU__{key}__GRPC_ADDR"), grpc[svc].to_string()),
                (format!("JIESU__{key}__ADMIN_ADDR"), admin[svc].to_string()),
                (format!("JIESU__{key}__CONSUMER__BACKOFF"), r#"["200ms", "500ms", "1s", "1s", "1s"]"#.to_string()),
                ("JIESU__NOTIFICATION__INTAKE_URL".to_string(), format!("http://{}", grpc["intake"])),
            ];
            let mut p = Process {
                child: None,
                bin: target.join(format!("jiesu-{bin}")),
                env,
                log: dir.path().join(format!("{svc}.log")),
            };
            p.spawn()?;
            procs.insert(svc, p);
        }
        Ok(Self { nats, subjects: Subjects::new(root), procs, grpc, admin, _dir: dir })
    }

    async fn ready(&self, svc: &str) -> Result<()> {
        let addr = self.admin[svc];
        eventually(&format!("{svc} to be ready"), Duration::from_secs(30), || async move {
            http_get(addr, "/readyz").await.filter(|(code, _)| *code == 200).map(|_| ())
        })
        .await
        .with_context(|| self.log_tail(svc))
    }

    fn log_tail(&self, svc: &str) -> String {
        let text = std::fs::read_to_string(&self.procs[svc].log).unwrap_or_default();
        let lines: Vec<_> = text.lines().rev().take(15).collect();
        format!("{svc} log ends with:\n{}", lines.into_iter().rev().collect::<Vec<_>>().join("\n"))
    }

    async fn restart(&mut self, svc: &'static str) -> Result<()> {
        let p = self.procs.get_mut(svc).expect("known service");
        p.kill();
        p.spawn()?;
        self.ready(svc).await
    }

    async fn intake(&self) -> IntakeServiceClient<tonic::transport::Channel> {
        IntakeServiceClient::new(grpc_channel(self.grpc["intake"]).await)
    }

    async fn dispatch(&self) -> DispatchServiceClient<tonic::transport::Channel> {
        DispatchServiceClient::new(grpc_channel(self.grpc["dispatch"]).await)
    }

    async fn events(&self) -> Result<Vec<StoredMessage>> {
        let js = async_nats::jetstream::new(async_nats::connect(self.nats.url()).await?);
        read_stream(&js, &self.subjects.events_stream(), None).await.map_err(anyhow::Error::from_boxed)
    }

    async fn dispatched(&self, case_id: &str) -> Result<()> {
        let dispatch = self.dispatch().await;
        eventually(&format!("case {case_id} to be dispatched"), Duration::from_secs(30), || {
            let mut dispatch = dispatch.clone();
            async move {
                let v = dispatch
                    .get_case(CaseRef { r#ref: Some(Ref::CaseId(case_id.to_string())) })
                    .await
                    .ok()?
                    .into_inner();
                (v.status() == CaseStatus::Dispatched).then_some(())
            }
        })
        .await?;
        Ok(())
    }
}

async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes()).await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, out))
}

fn submission(channel_ref: &str) -> Submission {
    Submission {
        channel: "hotline".into(),
        channel_ref: channel_ref.into(),
        citizen: Some(Citizen { name: "周先生".into(), phone: "13600136000".into(), anonymous: false }),
        title: "楼上噪音扰民".into(),
        description: "楼上装修每天早上七点就开始电钻施工，噪音太大。".into(),
        location: Some(Location { street: "st-xinan".into(), ..Default::default() }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_services_and_a_lost_broker_lose_nothing_and_repeat_nothing() -> Result<()> {
    let mut c = Cluster::start()?;
    for (svc, _) in SERVICES {
        c.ready(svc).await?;
    }

    // 1. Dispatch is killed: the classified case waits in the stream and is dispatched once
    //    when dispatch is back.
    c.procs.get_mut("dispatch").unwrap().kill();
    let one = c.intake().await.submit(SubmitRequest { submission: Some(submission("crash-1")) }).await?.into_inner();
    eventually("case 1 to be classified", Duration::from_secs(20), || async {
        c.events().await.ok()?.iter().any(|e| e.case_id == one.case_id && e.subject.ends_with("case.classified")).then_some(())
    })
    .await?;
    c.restart("dispatch").await?;
    c.dispatched(&one.case_id).await?;

    // 2. Intake is killed: a channel's submission published meanwhile is kept by JetStream and
    //    registered once intake is back.
    c.procs.get_mut("intake").unwrap().kill();
    let client = async_nats::connect(c.nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "application/json");
    let body = serde_json::json!({
        "channel_ref": "crash-2",
        "citizen": {"phone": "13600136001"},
        "title": "路面塌陷",
        "description": "新安街道路口路面塌陷，车辆经过很危险。",
        "location": {"street": "st-xinan"}
    });
    js.publish_with_headers(c.subjects.intake("hotline"), headers, serde_json::to_vec(&body)?.into()).await?.await?;
    c.restart("intake").await?;
    let two = eventually("case 2 to be received", Duration::from_secs(20), || async {
        c.events().await.ok()?.into_iter().find_map(|e| {
            e.subject
                .ends_with("case.received")
                .then(|| CaseReceived::decode(e.payload.as_ref()).ok())
                .flatten()
                .filter(|r| r.channel_ref == "crash-2")
                .map(|r| r.meta.unwrap_or_default().case_id)
        })
    })
    .await?;
    c.dispatched(&two).await?;

    // 3. NATS goes away: intake still accepts over gRPC (the event waits in its outbox) and
    //    the relay publishes it when NATS is back.
    c.nats.kill();
    let three = c.intake().await.submit(SubmitRequest { submission: Some(submission("crash-3")) }).await?.into_inner();
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.nats.restart();
    c.dispatched(&three.case_id).await?;

    // Every case's events exactly once, whatever was killed.
    let events = c.events().await?;
    for case_id in [&one.case_id, &two, &three.case_id] {
        for ty in ["case.received", "case.classified", "case.dispatched"] {
            let n = events.iter().filter(|e| &e.case_id == case_id && e.subject.ends_with(ty)).count();
            if n != 1 {
                bail!("case {case_id}: {n} × {ty}\n{}", c.log_tail("dispatch"));
            }
        }
    }
    Ok(())
}
