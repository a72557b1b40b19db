//! `jiesuctl` — the command line of a Jiesu district: submit cases, follow them, act on them.
//!
//! It finds the services' gRPC addresses and the NATS server in, first, its flags or their
//! environment variables (`--dispatch-addr` / `JIESU_DISPATCH_ADDR`, `--nats-url` /
//! `JIESU_NATS_URL`, …), then the district file the services run with (`--config`, default
//! `deploy/districts/demo/jiesu.toml`) — so it works beside a deployed district without a copy
//! of its file.

mod act;
mod nats;
mod tls;

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use jiesu_kit::{DistrictConfig, Subjects, messaging::header, time::from_proto};
use jiesu_proto::v1::{
    self as pb, AcceptRequest, CaseRef, Citizen, Location, RecordRequest, ResolveRequest, Submission, SubmitRequest, case_ref::Ref,
    classification_service_client::ClassificationServiceClient, dispatch_service_client::DispatchServiceClient,
    intake_service_client::IntakeServiceClient, notification_service_client::NotificationServiceClient,
    revisit_service_client::RevisitServiceClient, sla_service_client::SlaServiceClient,
};
use jiesu_reference::{Urgency, case_status_zh, clock_state_zh, milestone_zh};
use tonic::transport::Channel;

#[derive(Parser)]
#[command(name = "jiesuctl", version, about = "Command line of a Jiesu district (接诉即办)")]
struct Cli {
    /// The district file the services run with.
    #[arg(long, short, global = true, env = "JIESU_CONFIG", default_value = jiesu_kit::cli::DEFAULT_CONFIG)]
    config: PathBuf,
    #[command(flatten)]
    endpoints: Endpoints,
    /// The bearer token to call the services with.
    #[arg(long, global = true, env = "JIESU_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file holding the bearer token (instead of --token / JIESU_TOKEN).
    #[arg(long, global = true, env = "JIESU_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Where the services are, when not (only) in the district file.
#[derive(clap::Args, Default)]
struct Endpoints {
    /// intake's gRPC address (host:port).
    #[arg(long, global = true, env = "JIESU_INTAKE_ADDR")]
    intake_addr: Option<String>,
    /// classification's gRPC address.
    #[arg(long, global = true, env = "JIESU_CLASSIFICATION_ADDR")]
    classification_addr: Option<String>,
    /// dispatch's gRPC address.
    #[arg(long, global = true, env = "JIESU_DISPATCH_ADDR")]
    dispatch_addr: Option<String>,
    /// the SLA timer's gRPC address.
    #[arg(long, global = true, env = "JIESU_SLA_TIMER_ADDR")]
    sla_timer_addr: Option<String>,
    /// notification's gRPC address.
    #[arg(long, global = true, env = "JIESU_NOTIFICATION_ADDR")]
    notification_addr: Option<String>,
    /// revisit's gRPC address.
    #[arg(long, global = true, env = "JIESU_REVISIT_ADDR")]
    revisit_addr: Option<String>,
    /// NATS servers, comma-separated (for `submit --via nats`).
    #[arg(long, global = true, env = "JIESU_NATS_URL")]
    nats_url: Option<String>,
    /// The district's subject root (`nats.subject_root`).
    #[arg(long, global = true, env = "JIESU_SUBJECT_ROOT")]
    subject_root: Option<String>,
    /// The directory of NATS keys (`nats.keys_dir`): `submit --via nats` connects as
    /// `channel-<channel>` with `<dir>/channel-<channel>.nk`.
    #[arg(long, global = true, env = "JIESU_NATS_KEYS_DIR")]
    nats_keys_dir: Option<PathBuf>,
}

impl Endpoints {
    fn grpc(&self, service: &str) -> Option<&str> {
        match service {
            "intake" => self.intake_addr.as_deref(),
            "classification" => self.classification_addr.as_deref(),
            "dispatch" => self.dispatch_addr.as_deref(),
            "sla_timer" => self.sla_timer_addr.as_deref(),
            "notification" => self.notification_addr.as_deref(),
            "revisit" => self.revisit_addr.as_deref(),
            _ => None,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Submit a citizen's request (登记诉求) through gRPC or as a channel producer over NATS.
    Submit(SubmitArgs),
    /// The classification review queue (待人工复核): list, confirm, reclassify.
    Review {
        #[command(subcommand)]
        command: ReviewCommand,
    },
    /// The district's signing keys (签名密钥).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Tokens for people and tools (访问令牌).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The district's NATS: users and keys, the server's configuration, streams and consumers.
    Nats {
        #[command(subcommand)]
        command: nats::NatsCommand,
    },
    /// The district's certificates: its CA, and one for each service, NATS and jiesuctl.
    Tls {
        #[command(subcommand)]
        command: tls::TlsCommand,
    },
    /// Where a case would be dispatched, and the rule that decides (派单预演); nothing is dispatched.
    Route {
        /// The sub-item ("01.03") or category ("01").
        #[arg(long)]
        sub_item: String,
        #[arg(long, default_value = "")]
        street: String,
        #[arg(long, default_value = "")]
        community: String,
        /// The moment to route at ("2027-01-01 09:00"): responsibility rules have effective dates.
        #[arg(long)]
        at: Option<String>,
    },
    /// What a time limit comes to (时限预演): its deadline and yellow point on the district's
    /// working-day calendar, as the clocks would compute them; nothing is armed.
    Deadline {
        /// "10m", "72h", "4d" (elapsed), "3wd" (working days), "8wh" (working hours).
        limit: String,
        /// When it starts, in district time: "2026-12-20 09:00"; now when absent.
        #[arg(long)]
        from: Option<String>,
        /// Count working hours on this unit's business hours.
        #[arg(long, default_value = "")]
        unit: String,
    },
    /// On-time figures (按时率) per milestone and unit over a period, and what is yellow and red now.
    Figures {
        /// The period's first day or moment, district time: "2026-12-01" or "2026-12-01 09:00".
        #[arg(long)]
        from: String,
        /// Its end (exclusive); now when absent.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value = "")]
        unit: String,
    },
    /// Time limits at risk now (预警/超时): yellow or red clocks, the nearest deadline first.
    AtRisk {
        #[arg(long, default_value = "")]
        unit: String,
        /// yellow or red; both when absent.
        #[arg(long, default_value = "")]
        colour: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Look at cases.
    Case {
        #[command(subcommand)]
        command: CaseCommand,
    },
    /// A unit signs for a case (签收). With a token, the unit and the person are the token's.
    Accept {
        case: String,
        /// Only without a token: the unit signing.
        #[arg(long, default_value = "")]
        unit: String,
        /// Only without a token: the person signing.
        #[arg(long = "by", default_value = "")]
        by: String,
    },
    /// A unit reports that it reached the citizen (联系).
    Contact {
        case: String,
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long = "by", default_value = "")]
        by: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// A unit closes its handling with its reply to the citizen (办结); the reply is the written
    /// response's handling unless `reply` gave the whole response first.
    Resolve {
        case: String,
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long = "by", default_value = "")]
        by: String,
        #[arg(long, default_value = "")]
        reply: String,
    },
    #[command(flatten)]
    Workflow(act::WorkflowCommand),
    /// Record the citizen's answer at the revisit (回访登记).
    Revisit {
        case: String,
        #[arg(long, value_enum)]
        satisfaction: SatisfactionArg,
        /// Whether the citizen says the problem is solved.
        #[arg(long, action = clap::ArgAction::Set)]
        solved: bool,
        #[arg(long = "by")]
        by: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Makes a new Ed25519 key: writes `<dir>/<kid>.key.pem` (private, mode 0600) and adds its
    /// public half to `<dir>/jwks.json`, the key set `[auth] keys` points to. Rotation: generate
    /// the new key, let the services reload, sign with it; remove the old one from jwks.json
    /// once its last token has expired.
    Generate {
        /// The key id every token signed with it names (`kid`).
        #[arg(long)]
        kid: String,
        #[arg(long, default_value = "keys")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Signs a token with the district's key (`[auth] signing_key`, or `--key`) and prints it.
    Issue {
        /// The user's id (`sub`).
        #[arg(long)]
        user: String,
        /// The name shown in records.
        #[arg(long)]
        name: String,
        /// A role (centre_agent, centre_supervisor, unit_handler, unit_head, leader,
        /// revisit_agent, auditor, administrator, channel_integrator); repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The unit a unit handler or head acts for.
        #[arg(long)]
        unit: Option<String>,
        /// How long it is valid: 30m, 8h, 7d.
        #[arg(long, default_value = "8h")]
        ttl: String,
        /// The private key (PKCS#8 PEM) to sign with, instead of `[auth] signing_key`.
        #[arg(long)]
        key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ReviewCommand {
    /// The cases waiting for a person (待人工复核), the longest waiting first.
    List {
        #[arg(long, default_value = "")]
        street: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Releases a waiting case with the classifier's guess (确认).
    Confirm {
        case: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Releases a waiting case with your classification (改判), kept for the next training run.
    Reclassify {
        case: String,
        /// The sub-item ("01.03").
        #[arg(long)]
        sub_item: String,
        /// emergency, normal or complex; the classifier's when left out.
        #[arg(long)]
        urgency: Option<String>,
        /// consultation, help, complaint, report or suggestion; the classifier's when left out.
        #[arg(long, default_value = "")]
        request_type: String,
        #[arg(long, default_value = "")]
        note: String,
    },
}

#[derive(Subcommand)]
enum CaseCommand {
    /// A case's state and its timeline, gathered from every service.
    Show { case: String },
    /// Cases as dispatch sees them: a unit's (owned or assisted), or a desk's queue.
    List {
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        filter: act::ListFilter,
    },
    /// How many cases each unit holds in each status, and the flags (a dashboard's figures).
    Count {
        #[arg(long, default_value = "")]
        unit: String,
    },
}

#[derive(clap::Args)]
struct SubmitArgs {
    #[arg(long, default_value = "hotline")]
    channel: String,
    /// The channel's own id for this request (re-sending it returns the same case).
    #[arg(long = "ref")]
    channel_ref: String,
    #[arg(long, default_value = "")]
    name: String,
    #[arg(long, default_value = "")]
    phone: String,
    #[arg(long, default_value = "")]
    title: String,
    #[arg(long)]
    description: String,
    /// Street id of the place (e.g. st-dongmen).
    #[arg(long, default_value = "")]
    street: String,
    #[arg(long, default_value = "")]
    community: String,
    /// Grid code (网格编码): required on patrol channels.
    #[arg(long, default_value = "")]
    grid: String,
    #[arg(long, default_value = "")]
    address: String,
    /// The walk-in session (接访场次) an entry belongs to: required on walk-in channels.
    #[arg(long, default_value = "")]
    session: String,
    /// grpc: intake's Submit; nats: publish JSON on jiesu.intake.<channel> like a channel producer.
    #[arg(long, value_enum, default_value_t = Via::Grpc)]
    via: Via,
}

#[derive(Clone, Copy, ValueEnum)]
enum Via {
    Grpc,
    Nats,
}

#[derive(Clone, Copy, ValueEnum)]
enum SatisfactionArg {
    /// 满意
    Satisfied,
    /// 基本满意
    Basically,
    /// 不满意
    Dissatisfied,
}

/// Where the district's services are: the flags first, then the district file.
struct District {
    endpoints: Endpoints,
    /// `authorization` metadata for every call, when there is a token.
    authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    /// The district file, when there is one.
    config: Option<DistrictConfig>,
    path: PathBuf,
    timezone: chrono_tz::Tz,
}

impl District {
    fn load(path: &PathBuf, endpoints: Endpoints, token: Option<String>) -> Result<Self> {
        let config =
            if path.exists() { Some(DistrictConfig::load(path).with_context(|| format!("reading {}", path.display()))?) } else { None };
        let timezone = match &config {
            Some(c) => c.service::<serde::de::IgnoredAny>("intake")?.timezone(),
            None => chrono_tz::Asia::Shanghai,
        };
        let authorization = match token {
            None => None,
            Some(t) => Some(format!("Bearer {}", t.trim()).parse().context("the token is not printable ASCII")?),
        };
        Ok(Self { endpoints, authorization, config, path: path.clone(), timezone })
    }

    fn service(&self, service: &'static str) -> Result<jiesu_kit::ServiceConfig<serde::de::IgnoredAny>> {
        let config = self.config.as_ref().ok_or_else(|| {
            let flag = service.replace('_', "-");
            anyhow!(
                "no district file at {} to find {service} in: give --{flag}-addr (or JIESU_{}_ADDR), or --config",
                self.path.display(),
                service.to_ascii_uppercase()
            )
        })?;
        Ok(config.service::<serde::de::IgnoredAny>(service)?)
    }

    async fn channel(&self, service: &'static str) -> Result<Authorized> {
        let addr = match self.endpoints.grpc(service) {
            Some(a) => a.to_string(),
            None => self.service(service)?.common.grpc_addr.to_string(),
        };
        // With the district's certificates (`[tls] dir`), over TLS, showing jiesuctl's own
        // certificate where there is one; in plain text only to a district without them.
        let settings: jiesu_kit::tls::TlsSettings = match &self.config {
            Some(c) => c.part("tls")?,
            None => Default::default(),
        };
        let tls = jiesu_kit::tls::client_config(&settings, "jiesuctl")?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = if addr.contains("://") { addr } else { format!("{scheme}://{addr}") };
        let channel = jiesu_kit::tls::endpoint_with(tls, &url)?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .connect()
            .await
            .with_context(|| format!("cannot reach the {service} service at {url} (is it running?)"))?;
        Ok(tonic::service::interceptor::InterceptedService::new(channel, Bearer(self.authorization.clone())))
    }

    /// The NATS settings: the district file's, with the flags over them.
    fn nats(&self) -> Result<jiesu_kit::config::NatsSettings> {
        let mut nats: jiesu_kit::config::NatsSettings = match &self.config {
            Some(c) => c.part("nats")?,
            None => Default::default(),
        };
        if let Some(u) = &self.endpoints.nats_url {
            nats.url = u.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        }
        if let Some(r) = &self.endpoints.subject_root {
            nats.subject_root = r.clone();
        }
        if let Some(dir) = &self.endpoints.nats_keys_dir {
            nats.keys_dir = Some(dir.clone());
        }
        Ok(nats)
    }

    fn local(&self, t: Option<&prost_types::Timestamp>) -> String {
        t.and_then(from_proto)
            .map(|t| t.with_timezone(&self.timezone).format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".into())
    }
}

/// A channel that sends the caller's token with every call.
type Authorized = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

#[derive(Clone)]
struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

fn case_ref(text: &str) -> CaseRef {
    // Case ids are UUIDs; anything else is a public case number.
    let r = if uuid::Uuid::parse_str(text).is_ok() { Ref::CaseId(text.into()) } else { Ref::CaseNo(text.into()) };
    CaseRef { r#ref: Some(r) }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jiesuctl: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let token = match (&cli.token, &cli.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(path)) => Some(std::fs::read_to_string(path).with_context(|| format!("reading the token file {}", path.display()))?),
        (None, None) => None,
    };
    let d = District::load(&cli.config, cli.endpoints, token)?;
    match cli.command {
        Command::Keys { command: KeysCommand::Generate { kid, dir } } => generate_key(&kid, &dir),
        Command::Token { command: TokenCommand::Issue { user, name, roles, unit, ttl, key } } => {
            issue_token(&d, &user, &name, &roles, unit.as_deref(), &ttl, key.as_deref())
        }
        Command::Submit(args) => submit(&d, args).await,
        Command::Nats { command } => nats::run(d.config.as_ref(), &d.path, command).await,
        Command::Tls { command } => tls::run(d.config.as_ref(), &d.path, command),
        Command::Case { command: CaseCommand::Show { case } } => show(&d, &case).await,
        Command::Review { command } => review(&d, command).await,
        Command::Case { command: CaseCommand::List { unit, limit, filter } } => list(&d, filter.request(unit, limit)).await,
        Command::Case { command: CaseCommand::Count { unit } } => act::count(&d, unit).await,
        Command::Workflow(command) => act::run(&d, command).await,
        Command::AtRisk { unit, colour, limit } => {
            let mut c = SlaServiceClient::new(d.channel("sla_timer").await?);
            let r = c.list_at_risk(pb::ListAtRiskRequest { unit_id: unit, colour, limit }).await.map_err(status)?.into_inner();
            for k in &r.clocks {
                println!(
                    "  {}  {:<8} {:<24} {:<8} 截止 {}",
                    k.case_no,
                    if k.milestone_name.is_empty() { milestone_zh(&k.milestone) } else { &k.milestone_name },
                    if k.unit_id.is_empty() { "（未派单）" } else { &k.unit_id },
                    clock_state_zh(&k.state),
                    d.local(k.deadline.as_ref())
                );
            }
            if r.clocks.is_empty() {
                println!("（没有预警或超时的时限）");
            }
            Ok(())
        }
        Command::Figures { from, to, unit } => {
            let from = Some(act::moment_from(&d, "from", &from)?);
            let to = to.map(|t| act::moment_from(&d, "to", &t)).transpose()?;
            let mut c = SlaServiceClient::new(d.channel("sla_timer").await?);
            let r = c.on_time_figures(pb::OnTimeFiguresRequest { from, to, unit_id: unit }).await.map_err(status)?.into_inner();
            println!(
                "  {:<24} {:<8} {:>6} {:>6} {:>8} {:>6} {:>6} {:>6}",
                "单位", "环节", "按时", "逾期", "按时率", "延期", "黄灯", "红灯"
            );
            for f in &r.figures {
                println!(
                    "  {:<24} {:<8} {:>6} {:>6} {:>7.1}% {:>6} {:>6} {:>6}",
                    if f.unit_id.is_empty() { "（未派单）" } else { &f.unit_id },
                    milestone_zh(&f.milestone),
                    f.met_on_time,
                    f.met_late,
                    f.on_time_rate * 100.0,
                    f.extended,
                    f.open_yellow,
                    f.open_red
                );
            }
            if r.figures.is_empty() {
                println!("（这段时间没有时限记录）");
            }
            Ok(())
        }
        Command::Deadline { limit, from, unit } => {
            let start = from.map(|t| act::moment_from(&d, "from", &t)).transpose()?;
            let mut c = SlaServiceClient::new(d.channel("sla_timer").await?);
            let r = c
                .preview_deadline(pb::PreviewDeadlineRequest { start, limit, unit_id: unit, warn_at: 0.0 })
                .await
                .map_err(status)?
                .into_inner();
            println!("时限     {}{}", r.limit, if r.hours.is_empty() { String::new() } else { format!("，按{}计", r.hours) });
            println!("截止     {}", r.local_deadline);
            println!("预警(黄) {}", r.local_warn_at);
            if !r.uncovered_years.is_empty() {
                let years: Vec<String> = r.uncovered_years.iter().map(i32::to_string).collect();
                println!("注意     工作日历缺少{}年的法定节假日安排，这些年份按周一至周五计算", years.join("、"));
            }
            Ok(())
        }
        Command::Route { sub_item, street, community, at } => {
            let mut c = DispatchServiceClient::new(d.channel("dispatch").await?);
            let at = at.map(|t| act::moment(&d, "at", &t)).transpose()?;
            let r = c.preview_route(pb::PreviewRouteRequest { sub_item, street, community, at }).await.map_err(status)?.into_inner();
            println!("主办单位 {}（{}）", r.lead_unit_name, r.lead_unit_id);
            if !r.assisting_unit_ids.is_empty() {
                println!("协办单位 {}", r.assisting_unit_ids.join("、"));
            }
            if r.fallback {
                println!("依据     无匹配规则：转中心人工派单");
            } else {
                println!("依据     {}", r.rule);
            }
            Ok(())
        }
        Command::Accept { case, unit, by } => {
            let mut c = DispatchServiceClient::new(d.channel("dispatch").await?);
            let v =
                c.accept(AcceptRequest { case: Some(case_ref(&case)), unit_id: unit, accepted_by: by }).await.map_err(status)?.into_inner();
            act::print_case(&d, "已签收", &v);
            Ok(())
        }
        Command::Contact { case, unit, by, note } => {
            let mut c = DispatchServiceClient::new(d.channel("dispatch").await?);
            let v = c
                .contact(pb::ContactRequest { case: Some(case_ref(&case)), unit_id: unit, contacted_by: by, note })
                .await
                .map_err(status)?
                .into_inner();
            act::print_case(&d, "已登记联系市民", &v);
            Ok(())
        }
        Command::Resolve { case, unit, by, reply } => {
            let mut c = DispatchServiceClient::new(d.channel("dispatch").await?);
            let v = c
                .resolve(ResolveRequest { case: Some(case_ref(&case)), unit_id: unit, resolved_by: by, reply, letter: None })
                .await
                .map_err(status)?
                .into_inner();
            act::print_case(&d, "已办结", &v);
            Ok(())
        }
        Command::Revisit { case, satisfaction, solved, by, comment } => {
            let mut c = RevisitServiceClient::new(d.channel("revisit").await?);
            let satisfaction = match satisfaction {
                SatisfactionArg::Satisfied => pb::Satisfaction::Satisfied,
                SatisfactionArg::Basically => pb::Satisfaction::BasicallySatisfied,
                SatisfactionArg::Dissatisfied => pb::Satisfaction::Dissatisfied,
            };
            let v = c
                .record(RecordRequest { case: Some(case_ref(&case)), satisfaction: satisfaction as i32, solved, comment, recorded_by: by })
                .await
                .map_err(status)?
                .into_inner();
            let outcome = if v.reopened { "，已重新交办" } else { "" };
            println!("{} 回访已登记（第{}轮）{outcome}", v.case_no, v.round);
            Ok(())
        }
    }
}

fn status(s: tonic::Status) -> anyhow::Error {
    use tonic_types::StatusExt;
    let mut text = format!("{:?}: {}", s.code(), s.message());
    if let Some(zh) = s.get_details_localized_message() {
        text.push_str(&format!("\n  {}", zh.message));
    }
    match s.code() {
        tonic::Code::Unauthenticated => text.push_str(
            "\n  未通过身份验证：请用 JIESU_TOKEN 或 --token-file 提供有效令牌（jiesuctl token issue …，或向身份认证平台申请）；令牌过期需重新签发",
        ),
        tonic::Code::PermissionDenied => text.push_str("\n  无权执行此操作：令牌的角色或所属单位不允许"),
        tonic::Code::Unknown | tonic::Code::Unavailable if s.message().contains("transport error") => text.push_str(
            "\n  the connection failed: is the service running, and does the district use TLS? Then jiesuctl needs the district's CA \
             ([tls] dir, or JIESU__TLS__DIR; the demo: `source data/demo.env`), and with mutual TLS its own certificate <dir>/jiesuctl.pem",
        ),
        _ => {}
    }
    anyhow!(text)
}

async fn submit(d: &District, a: SubmitArgs) -> Result<()> {
    let submission = Submission {
        channel: a.channel.clone(),
        channel_ref: a.channel_ref.clone(),
        citizen: Some(Citizen { name: a.name.clone(), phone: a.phone.clone(), anonymous: false }),
        title: a.title.clone(),
        description: a.description.clone(),
        location: Some(Location {
            street: a.street.clone(),
            community: a.community.clone(),
            grid: a.grid.clone(),
            address: a.address.clone(),
            ..Default::default()
        }),
        session: a.session.clone(),
        ..Default::default()
    };
    match a.via {
        Via::Grpc => {
            let mut c = IntakeServiceClient::new(d.channel("intake").await?);
            let r = c.submit(SubmitRequest { submission: Some(submission) }).await.map_err(status)?.into_inner();
            let again = if r.duplicate { "（重复提交，返回原受理编号）" } else { "" };
            println!(
                "已受理 受理编号 {} {again}\ncase_id {}\n查询码 {}（凭受理编号和查询码查询办理进度）",
                r.case_no, r.case_id, r.query_code
            );
        }
        Via::Nats => {
            let settings = d.nats()?;
            let subjects = Subjects::new(&settings.subject_root);
            // A channel's producer connects as itself and may publish only to its own subject.
            let keys = settings.keys_dir.clone().unwrap_or_else(|| PathBuf::from("keys/nats"));
            let client = nats::connect(&settings, &keys, &jiesu_kit::access::channel_user(&a.channel)).await?;
            let js = async_nats::jetstream::new(client.clone());
            let body = serde_json::json!({
                "channel_ref": a.channel_ref,
                "citizen": {"name": a.name, "phone": a.phone},
                "title": a.title,
                "description": a.description,
                "location": {"street": a.street, "community": a.community, "grid": a.grid, "address": a.address},
                "session": a.session,
            });
            // A producer hears back on its own channel: jiesu.intake.accepted.<channel> with the
            // case number, or jiesu.intake.rejected.<channel> with every reason (docs/channels.md).
            let mut rejections = client.subscribe(subjects.rejected(&a.channel)).await?;
            let mut accepted = client.subscribe(subjects.accepted(&a.channel)).await?;
            let body = serde_json::to_vec(&body)?;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, jiesu_kit::messaging::JSON);
            headers.insert(header::MSG_ID, message_id(&a.channel, &a.channel_ref, &body).as_str());
            let ack = js
                .publish_with_headers(subjects.intake(&a.channel), headers, body.into())
                .await?
                .await
                .context("the submissions stream did not acknowledge (is intake's stream set up?)")?;
            println!("已投递至 {}（流序号 {}）", subjects.intake(&a.channel), ack.sequence);
            use futures::StreamExt;
            let answer = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    tokio::select! {
                        Some(m) = accepted.next() => {
                            let r: serde_json::Value = serde_json::from_slice(&m.payload)?;
                            if r["channel_ref"] == a.channel_ref.as_str() {
                                let again = if r["duplicate"] == true { "（重复提交，返回原受理编号）" } else { "" };
                                println!(
                                    "已受理 受理编号 {} {again}\ncase_id {}\n查询码 {}（凭受理编号和查询码查询办理进度）",
                                    printable(&r["case_no"]),
                                    printable(&r["case_id"]),
                                    printable(&r["query_code"])
                                );
                                return Ok(());
                            }
                        }
                        Some(m) = rejections.next() => {
                            let r: serde_json::Value = serde_json::from_slice(&m.payload)?;
                            if r["channel_ref"] == a.channel_ref.as_str() {
                                let reasons: Vec<String> = r["violations"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .map(|v| format!("  {}: {}（{}）", printable(&v["field"]), printable(&v["reason"]), printable(&v["reason_zh"])))
                                    .collect();
                                bail!("submission rejected:\n{}", reasons.join("\n"));
                            }
                        }
                        else => bail!("the NATS connection closed"),
                    }
                }
            })
            .await;
            match answer {
                Ok(result) => result?,
                Err(_) => {
                    println!(
                        "（5秒内未收到受理回执：可能是在去重时间窗口（默认10分钟）内重复投递了同样的内容，或受理服务未运行；用 jiesuctl case list 查看）"
                    )
                }
            }
        }
    }
    Ok(())
}

async fn show(d: &District, case: &str) -> Result<()> {
    let r = case_ref(case);
    let sub = IntakeServiceClient::new(d.channel("intake").await?)
        .get_submission(r.clone())
        .await
        .map_err(status)
        .context("intake does not know this case")?
        .into_inner();
    // Everything after intake is looked up by the internal id.
    let r = CaseRef { r#ref: Some(Ref::CaseId(sub.case_id.clone())) };
    let mut timeline: Vec<pb::TimelineEntry> = sub.timeline.clone();
    let mut lines: BTreeMap<&str, String> = BTreeMap::new();

    match ClassificationServiceClient::new(d.channel("classification").await?).get_classification(r.clone()).await {
        Ok(c) => {
            let c = c.into_inner();
            let review = match c.review.as_str() {
                "waiting" => "，待人工复核",
                "confirmed" => "，经人工确认",
                "reclassified" => "，经人工改判",
                _ => "",
            };
            lines.insert(
                "2 分类",
                format!("{} / {}（{}{review}）", c.category_name, c.sub_item_name, Urgency::from_proto(c.urgency()).name_zh()),
            );
            if c.repeat_count > 1 {
                lines.insert("21 重复诉求", format!("第{}次反映，首次为{}", c.repeat_count, c.repeat_of_case_no));
            }
            timeline.extend(c.timeline);
        }
        Err(e) if e.code() == tonic::Code::NotFound => {
            lines.insert("2 分类", "待分类".into());
        }
        Err(e) => return Err(status(e)),
    }
    match DispatchServiceClient::new(d.channel("dispatch").await?).get_case(r.clone()).await {
        Ok(c) => {
            let c = c.into_inner();
            lines.insert("1 状态", case_status_zh(c.status()).to_string());
            let owner = if c.manual_queue { "中心待人工派单".to_string() } else { format!("{} {}", c.unit_name, c.unit_id) };
            lines.insert("3 承办单位", owner);
            lines.insert("4 办理轮次", c.round.to_string());
            lines.insert("41 办结时限", d.local(c.deadline.as_ref()));
            for p in &c.parts {
                let state = if p.answered {
                    "已答复"
                } else if p.accepted {
                    "已签收"
                } else {
                    "待签收"
                };
                lines.insert(
                    "42 协办",
                    format!(
                        "{}{}（{}）{state}",
                        lines.get("42 协办").map(|l| format!("{l}；")).unwrap_or_default(),
                        p.unit_name,
                        p.unit_id
                    ),
                );
            }
            if !c.leader_id.is_empty() {
                lines.insert("43 包案领导", c.leader_id.clone());
            }
            if c.supervised {
                lines.insert("44 督办", c.supervision_notes.join("；"));
            }
            timeline.extend(c.timeline);
        }
        Err(e) if e.code() == tonic::Code::NotFound => {
            lines.insert("1 状态", "已受理，待派单".into());
        }
        Err(e) => return Err(status(e)),
    }
    if let Ok(c) = SlaServiceClient::new(d.channel("sla_timer").await?).list_clocks(r.clone()).await {
        let c = c.into_inner();
        let running: Vec<String> = c
            .clocks
            .iter()
            .filter(|k| k.state != "stopped")
            .map(|k| {
                let name = if k.part.is_empty() {
                    milestone_zh(&k.milestone).to_string()
                } else {
                    format!("{}·{}", milestone_zh(&k.milestone), k.part)
                };
                let state = if k.paused_at.is_some() { clock_state_zh("paused") } else { clock_state_zh(&k.state) };
                let round = if k.round > 1 { format!("，第{}轮", k.round) } else { String::new() };
                format!("{name}（{state}{round}） 截止{}", d.local(k.deadline.as_ref()))
            })
            .collect();
        lines.insert("5 时限", if running.is_empty() { "无进行中的时限".into() } else { running.join("；") });
        timeline.extend(c.timeline);
    }
    if let Ok(n) = NotificationServiceClient::new(d.channel("notification").await?).list_deliveries(r.clone()).await {
        timeline.extend(n.into_inner().timeline);
    }
    if let Ok(v) = RevisitServiceClient::new(d.channel("revisit").await?).list_revisits(r.clone()).await {
        timeline.extend(v.into_inner().timeline);
    }

    println!("受理编号 {}   case_id {}", sub.case_no, sub.case_id);
    println!("渠道     {}（{}）", sub.channel, sub.channel_ref);
    println!("标题     {}", sub.title);
    println!("内容     {}", sub.description);
    println!("联系电话 {}", if sub.masked_phone.is_empty() { "-" } else { &sub.masked_phone });
    for (k, v) in &lines {
        let label = k.split_once(' ').map(|(_, l)| l).unwrap_or(k);
        println!("{label:<8} {v}");
    }
    timeline.sort_by_key(|e| e.at.as_ref().map(|t| (t.seconds, t.nanos)));
    println!("\n时间线");
    for e in &timeline {
        println!("  {}  {:<14} {}", d.local(e.at.as_ref()), e.service, e.detail);
    }
    Ok(())
}

/// `jiesuctl review …`: the centre's review queue.
async fn review(d: &District, command: ReviewCommand) -> Result<()> {
    let mut c = ClassificationServiceClient::new(d.channel("classification").await?);
    let decided = match command {
        ReviewCommand::List { street, limit } => {
            let r = c.list_pending_reviews(pb::ListPendingReviewsRequest { street, limit }).await.map_err(status)?.into_inner();
            println!("待人工复核 {} 件", r.total);
            for p in &r.reviews {
                let v = p.classification.clone().unwrap_or_default();
                let guesses: Vec<String> =
                    v.candidates.iter().map(|g| format!("{} {}（{:.0}%）", g.sub_item, g.sub_item_name, g.probability * 100.0)).collect();
                let why = match p.why.as_str() {
                    "close_candidates" => "两个小项难以区分",
                    "unrecognised" => "未能识别",
                    _ => "置信度低",
                };
                println!("\n{}  等待自 {}  {why}", p.case_no, d.local(p.waiting_since.as_ref()));
                println!("  {}  {}", p.title, p.description.replace('\n', " "));
                println!("  候选：{}", guesses.join("；"));
            }
            return Ok(());
        }
        ReviewCommand::Confirm { case, note } => {
            c.confirm_classification(pb::ConfirmClassificationRequest { case: Some(case_ref(&case)), note }).await
        }
        ReviewCommand::Reclassify { case, sub_item, urgency, request_type, note } => {
            let urgency = match urgency.as_deref() {
                None => pb::Urgency::Unspecified,
                Some(u) => u
                    .parse::<Urgency>()
                    .map(Urgency::to_proto)
                    .map_err(|_| anyhow::anyhow!("urgency {u:?}: emergency, normal or complex"))?,
            };
            c.reclassify(pb::ReclassifyRequest { case: Some(case_ref(&case)), sub_item, urgency: urgency as i32, request_type, note }).await
        }
    }
    .map_err(status)?
    .into_inner();
    println!(
        "已放行：{} / {}（{}），转派单",
        decided.category_name,
        decided.sub_item_name,
        Urgency::from_proto(decided.urgency()).name_zh()
    );
    Ok(())
}

async fn list(d: &District, request: pb::ListCasesRequest) -> Result<()> {
    let mut c = DispatchServiceClient::new(d.channel("dispatch").await?);
    let cases = c.list_cases(request).await.map_err(status)?.into_inner().cases;
    for c in &cases {
        let mut flags = Vec::new();
        if c.manual_queue {
            flags.push("待人工派单".to_string());
        }
        if c.pending_return.is_some() {
            flags.push("退回待审".into());
        }
        if c.pending_extension.is_some() {
            flags.push("延期待批".into());
        }
        if !c.leader_id.is_empty() {
            flags.push(format!("包案:{}", c.leader_id));
        }
        if c.supervised {
            flags.push("督办".into());
        }
        if c.overdue {
            flags.push("超期".into());
        }
        match c.colour.as_str() {
            "yellow" => flags.push("黄灯".into()),
            "red" => flags.push("红灯".into()),
            _ => {}
        }
        println!(
            "{}  {:<6} {:<10} {:<6} 时限 {}  {} {}",
            c.case_no,
            case_status_zh(c.status()),
            if c.unit_name.is_empty() { "-" } else { &c.unit_name },
            c.sub_item,
            d.local(c.deadline.as_ref()),
            if c.title.is_empty() { "（无标题）" } else { &c.title },
            flags.join(" ")
        );
    }
    if cases.is_empty() {
        println!("（没有案件）");
    }
    Ok(())
}

fn generate_key(kid: &str, dir: &std::path::Path) -> Result<()> {
    if kid.is_empty() || !kid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("--kid must be letters, digits, - or _");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let private = dir.join(format!("{kid}.key.pem"));
    if private.exists() {
        bail!("{} exists: a key id names one key for good; choose another --kid", private.display());
    }
    let (pem, jwk) = jiesu_kit::auth::generate_key(kid)?;
    jiesu_kit::config::write_private(&private, &pem)?;
    let set_path = dir.join("jwks.json");
    let mut set: serde_json::Value = match std::fs::read_to_string(&set_path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{} is not a JWKS file", set_path.display()))?,
        Err(_) => serde_json::json!({"keys": []}),
    };
    set["keys"].as_array_mut().context("jwks.json has no \"keys\" list")?.push(jwk);
    std::fs::write(&set_path, serde_json::to_string_pretty(&set)? + "\n")?;
    println!("已生成密钥 {kid}\n  私钥 {}（妥善保管，仅签发令牌的机器需要）\n  公钥已加入 {}", private.display(), set_path.display());
    Ok(())
}

fn issue_token(
    d: &District,
    user: &str,
    name: &str,
    roles: &[String],
    unit: Option<&str>,
    ttl: &str,
    key: Option<&std::path::Path>,
) -> Result<()> {
    let roles = roles
        .iter()
        .map(|r| jiesu_kit::auth::Role::from_key(r).ok_or_else(|| anyhow!("{r:?} is not a role; see jiesuctl token issue --help")))
        .collect::<Result<Vec<_>>>()?;
    if let Some(role) = roles.iter().find(|r| r.needs_unit())
        && unit.is_none()
    {
        bail!("role {role} acts for a unit: give --unit");
    }
    let ttl = jiesu_kit::time::parse_duration(ttl).map_err(|e| anyhow!("--ttl: {e}"))?;
    let auth = match &d.config {
        Some(c) => c.service::<serde::de::IgnoredAny>("intake")?.auth,
        None => jiesu_kit::auth::AuthSettings::default(),
    };
    let base = d.config.as_ref().map(|c| c.base_dir().to_path_buf()).unwrap_or_default();
    let signer = match key {
        Some(path) => jiesu_kit::auth::Signer::from_file(path, &auth.issuer, &auth.audience)?,
        None => jiesu_kit::auth::Signer::from_settings(&auth, &base)?
            .ok_or_else(|| anyhow!("no signing key: set [auth] signing_key in the district file, or give --key"))?,
    };
    println!("{}", signer.issue_now(user, name, &roles, unit, ttl)?);
    Ok(())
}

/// The documented `Nats-Msg-Id` of a submission: `<channel>:<channel_ref>:<the first 16 hex
/// digits of the body's SHA-256>`. A corrected re-send has another id, so JetStream's duplicate
/// window never swallows it.
fn message_id(channel: &str, channel_ref: &str, body: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(body);
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{channel}:{channel_ref}:{hex}")
}

/// A JSON string value as text with control characters escaped, for the terminal.
fn printable(v: &serde_json::Value) -> String {
    v.as_str()
        .unwrap_or_default()
        .chars()
        .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
        .collect()
}
