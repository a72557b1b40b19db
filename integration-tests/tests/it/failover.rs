//! NATS fail-over from the first second (defect 20): the six services on a fresh three-node
//! JetStream cluster, named by a list of URLs. They wait out the cluster's leader election
//! instead of exiting, and a service restarted while the first node on its list is down starts
//! on another and keeps cases moving.

use jiesu_proto::{Named, v1 as ev};
use std::{sync::Arc, time::Duration};

use anyhow::{Context, Result, ensure};
use jiesu_integration_tests::{Backend, District, SERVICES};
use jiesu_proto::v1::{CaseRef, CaseStatus, Citizen, Submission, SubmitRequest, case_ref::Ref};
use jiesu_testkit::{NatsCluster, eventually, read_stream};

const WAIT: Duration = Duration::from_secs(30);

/// A caller of their own for each call: the same words from the same caller on the same channel
/// would be one call logged twice, merged by classification (重复提交).
fn caller(channel_ref: &str) -> String {
    format!("139{:08}", channel_ref.bytes().map(u32::from).sum::<u32>())
}

fn submission(channel_ref: &str) -> Submission {
    Submission {
        channel: "hotline".into(),
        channel_ref: channel_ref.into(),
        citizen: Some(Citizen { name: "钱先生".into(), phone: caller(channel_ref), anonymous: false }),
        title: "路灯不亮".into(),
        description: "小区门口路灯坏了一周了，晚上很黑。".into(),
        ..Default::default()
    }
}

async fn until_dispatched(d: &District, case_id: &str) -> Result<()> {
    let dispatch = d.dispatch().await;
    eventually(&format!("case {case_id} to be dispatched"), WAIT, || {
        let r = CaseRef { r#ref: Some(Ref::CaseId(case_id.into())) };
        let mut dispatch = dispatch.clone();
        async move { dispatch.get_case(r).await.ok().filter(|c| c.get_ref().status() == CaseStatus::Dispatched).map(|_| ()) }
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_start_on_a_fresh_cluster_and_survive_the_loss_of_a_node() -> Result<()> {
    let mut cluster = NatsCluster::start();
    let urls = cluster.urls();
    // Started at once on a cluster still electing its leader: every one of them comes up.
    let mut d = District::start_with(Backend::Sqlite, Arc::new(jiesu_kit::SystemClock), &SERVICES, |c| {
        c.set("nats.url", urls.clone());
        c.set("nats.subject_root", cluster.root());
        c.set("nats.keys_dir", cluster.keys_dir().display().to_string());
        c.set("nats.replicas", 3);
    })
    .await
    .context("the six services start on a fresh three-node cluster")?;
    let first = d.intake().await.submit(SubmitRequest { submission: Some(submission("fo-1")) }).await?.into_inner();
    until_dispatched(&d, &first.case_id).await?;

    // The first node on every service's list goes down; dispatch is restarted meanwhile and
    // starts on the others.
    cluster.nodes[0].kill();
    d.stop_service("dispatch").await;
    tokio::time::timeout(WAIT, d.start_service("dispatch")).await.context("dispatch starts with the first node down")??;
    let second = eventually("intake to take a submission again", WAIT, || async {
        let mut intake = d.intake().await;
        intake.submit(SubmitRequest { submission: Some(submission("fo-2")) }).await.ok().map(|r| r.into_inner())
    })
    .await?;
    until_dispatched(&d, &second.case_id).await?;
    let js = async_nats::jetstream::new(cluster.nodes[1].operator().await);
    let dispatched = d.subjects.event(ev::CaseDispatched::TYPE);
    let received = eventually("both cases in the stream", WAIT, || async {
        let n = read_stream(&js, &d.subjects.events_stream(), Some(&dispatched)).await.ok()?.len();
        (n >= 2).then_some(n)
    })
    .await?;
    ensure!(received == 2, "{received} case.dispatched for two cases");
    d.shutdown().await;
    Ok(())
}
