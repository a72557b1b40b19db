//! A district of real processes: the six service binaries, started with `--config` and
//! `JIESU__…` overrides, killed with SIGKILL when a test wants a crash.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use jiesu_kit::Subjects;
use jiesu_proto::v1::{
    AcceptRequest, AnswerAssistRequest, CaseRef, CaseStatus, ContactRequest, RecordRequest, ResolveRequest, Satisfaction, case_ref::Ref,
    dispatch_service_client::DispatchServiceClient, intake_service_client::IntakeServiceClient,
    revisit_service_client::RevisitServiceClient,
};
use jiesu_testkit::{NatsServer, StoredMessage, demo_config, eventually, free_port, grpc_channel, http_get, read_stream};

/// (config section, binary suffix) of the six services.
pub const BINARIES: [(&str, &str); 6] = [
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

/// One service process.
pub struct Process {
    child: Option<Child>,
    bin: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Process {
    pub fn spawn(&mut self) -> Result<()> {
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
    pub fn kill(&mut self) {
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

/// NATS and the six service processes.
pub struct Cluster {
    pub nats: NatsServer,
    pub subjects: Subjects,
    pub procs: BTreeMap<&'static str, Process>,
    pub grpc: BTreeMap<&'static str, SocketAddr>,
    pub admin: BTreeMap<&'static str, SocketAddr>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts NATS, provisions its streams and consumers as the operator, and starts the six
    /// binaries, each connecting as its own NATS user; `extra_env` goes to every service process.
    pub async fn start(extra_env: &[(&str, &str)]) -> Result<Self> {
        let target = binaries()?;
        let nats = NatsServer::start();
        let dir = tempfile::Builder::new().prefix("jiesu-crash-").tempdir()?;
        let root = nats.root().to_string();
        let mut config = jiesu_kit::DistrictConfig::load(demo_config())?;
        config.set("nats.url", nats.url());
        config.set("nats.subject_root", root.clone());
        config.set("nats.keys_dir", nats.keys_dir().display().to_string());
        jiesu_testkit::provision(&config).await;
        let mut grpc = BTreeMap::new();
        let mut admin = BTreeMap::new();
        for (svc, _) in BINARIES {
            grpc.insert(svc, SocketAddr::from(([127, 0, 0, 1], free_port())));
            admin.insert(svc, SocketAddr::from(([127, 0, 0, 1], free_port())));
        }
        let mut procs = BTreeMap::new();
        for (svc, bin) in BINARIES {
            let key = svc.to_ascii_uppercase();
            let mut env = vec![
                ("JIESU__NATS__URL".to_string(), nats.url()),
                ("JIESU__NATS__SUBJECT_ROOT".to_string(), root.clone()),
                ("JIESU__NATS__KEYS_DIR".to_string(), nats.keys_dir().display().to_string()),
                ("JIESU__TELEMETRY__LOG_FILTER".to_string(), "info".to_string()),
                // These tests are about crashes, traces and logs; who may call is tested elsewhere.
                ("JIESU__AUTH__REQUIRED".to_string(), "false".to_string()),
                ("JIESU__TLS__PLAINTEXT".to_string(), "true".to_string()),
                (format!("JIESU__{key}__DATABASE_URL"), format!("sqlite://{}", dir.path().join(format!("{svc}.db")).display())),
                (format!("JIESU__{key}__GRPC_ADDR"), grpc[svc].to_string()),
                (format!("JIESU__{key}__ADMIN_ADDR"), admin[svc].to_string()),
                (format!("JIESU__{key}__CONSUMER__BACKOFF"), r#"["200ms", "500ms", "1s", "1s", "1s"]"#.to_string()),
                ("JIESU__NOTIFICATION__INTAKE_URL".to_string(), format!("http://{}", grpc["intake"])),
            ];
            env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            let mut p = Process { child: None, bin: target.join(format!("jiesu-{bin}")), env, log: dir.path().join(format!("{svc}.log")) };
            p.spawn()?;
            procs.insert(svc, p);
        }
        Ok(Self { nats, subjects: Subjects::new(root), procs, grpc, admin, _dir: dir })
    }

    pub async fn ready(&self, svc: &str) -> Result<()> {
        let addr = self.admin[svc];
        eventually(&format!("{svc} to be ready"), Duration::from_secs(30), || async move {
            http_get(addr, "/readyz").await.filter(|(code, _)| *code == 200).map(|_| ())
        })
        .await
        .with_context(|| self.log_tail(svc))
    }

    /// Everything a service has logged so far.
    pub fn log(&self, svc: &str) -> String {
        std::fs::read_to_string(&self.procs[svc].log).unwrap_or_default()
    }

    pub fn log_tail(&self, svc: &str) -> String {
        let text = std::fs::read_to_string(&self.procs[svc].log).unwrap_or_default();
        let lines: Vec<_> = text.lines().rev().take(15).collect();
        format!("{svc} log ends with:\n{}", lines.into_iter().rev().collect::<Vec<_>>().join("\n"))
    }

    pub async fn restart(&mut self, svc: &'static str) -> Result<()> {
        let p = self.procs.get_mut(svc).expect("known service");
        p.kill();
        p.spawn()?;
        self.ready(svc).await
    }

    pub async fn intake(&self) -> IntakeServiceClient<tonic::transport::Channel> {
        IntakeServiceClient::new(grpc_channel(self.grpc["intake"]).await)
    }

    pub async fn dispatch(&self) -> DispatchServiceClient<tonic::transport::Channel> {
        DispatchServiceClient::new(grpc_channel(self.grpc["dispatch"]).await)
    }

    pub async fn events(&self) -> Result<Vec<StoredMessage>> {
        let js = async_nats::jetstream::new(self.nats.operator().await);
        read_stream(&js, &self.subjects.events_stream(), None).await.map_err(anyhow::Error::from_boxed)
    }

    /// Takes a dispatched case through the rest of the loop, each step a separate call as the
    /// people would make it: its unit accepts, contacts the citizen, its assisting units answer
    /// their parts and it resolves, the revisit agent records a satisfied
    /// citizen; waits until dispatch has closed it.
    pub async fn walk_to_closed(&self, case_id: &str) -> Result<()> {
        let by_id = || Some(CaseRef { r#ref: Some(Ref::CaseId(case_id.to_string())) });
        let mut dispatch = self.dispatch().await;
        let view = dispatch.get_case(by_id().expect("a reference")).await?.into_inner();
        let owner = view.unit_id;
        dispatch.accept(AcceptRequest { case: by_id(), unit_id: owner.clone(), accepted_by: "王五".into() }).await?;
        let contact = ContactRequest { case: by_id(), unit_id: owner.clone(), contacted_by: "王五".into(), note: String::new() };
        dispatch.contact(contact).await?;
        // Each assisting unit answers its part of the joint case (多方联动) before the lead resolves.
        for part in view.parts {
            let answer =
                AnswerAssistRequest {
                    case: by_id(), answer: "已配合处理。".into(), unit_id: part.unit_id, answered_by: "赵六".into()
                };
            dispatch.answer_assist(answer).await?;
        }
        let resolve =
            ResolveRequest { case: by_id(), unit_id: owner, resolved_by: "王五".into(), reply: "已处理。".into(), letter: None };
        dispatch.resolve(resolve).await?;
        let revisit = RevisitServiceClient::new(grpc_channel(self.grpc["revisit"]).await);
        let record = RecordRequest {
            case: by_id(),
            satisfaction: Satisfaction::Satisfied as i32,
            solved: true,
            comment: String::new(),
            recorded_by: "回访员小陈".into(),
        };
        eventually("revisit to know the resolved case", Duration::from_secs(30), || {
            let (mut revisit, record) = (revisit.clone(), record.clone());
            async move { revisit.record(record).await.ok().map(|_| ()) }
        })
        .await?;
        eventually("the case to be closed", Duration::from_secs(30), || {
            let mut dispatch = dispatch.clone();
            let r = by_id().expect("a reference");
            async move { (dispatch.get_case(r).await.ok()?.into_inner().status() == CaseStatus::Closed).then_some(()) }
        })
        .await?;
        Ok(())
    }

    pub async fn dispatched(&self, case_id: &str) -> Result<()> {
        let dispatch = self.dispatch().await;
        eventually(&format!("case {case_id} to be dispatched"), Duration::from_secs(30), || {
            let mut dispatch = dispatch.clone();
            async move {
                let v = dispatch.get_case(CaseRef { r#ref: Some(Ref::CaseId(case_id.to_string())) }).await.ok()?.into_inner();
                (v.status() == CaseStatus::Dispatched).then_some(())
            }
        })
        .await?;
        Ok(())
    }
}
