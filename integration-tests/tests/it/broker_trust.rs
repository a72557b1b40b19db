//! NATS with least privilege (issue 6): every door an attacker on the network found open on the
//! broker, each shown closed by the server itself — not by a service choosing to ignore what it
//! was sent. The users and permissions are the ones `jiesuctl nats config` generates.

use std::time::Duration;

use anyhow::{Result, ensure};
use async_nats::jetstream;
use futures::StreamExt;
use jiesu_kit::access;
use jiesu_proto::v1::{CaseClassified, CaseClosed, CaseReceived, EventMeta, RevisitRecorded};
use jiesu_testkit::{TestBed, demo_config, publish_event_refused};

/// A bed with the district's streams and consumers provisioned, and no service running: what
/// the broker allows does not depend on them.
async fn broker() -> TestBed {
    let bed = TestBed::new(demo_config(), &[]);
    bed.provision().await;
    bed
}

async fn js_as(bed: &TestBed, user: &str) -> jetstream::Context {
    let client = bed.nats.connect_as(user).await.unwrap_or_else(|e| panic!("{user} connects: {e}"));
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(2));
    js
}

async fn stored(bed: &TestBed, stream: &str) -> u64 {
    bed.jetstream().await.unwrap().get_stream(stream).await.unwrap().info().await.unwrap().state.messages
}

fn meta(case_id: &str) -> Option<EventMeta> {
    Some(EventMeta { event_id: format!("forged-{case_id}"), case_id: case_id.into(), case_no: "DM0001".into(), ..Default::default() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_connection_is_refused() -> Result<()> {
    let bed = broker().await;
    let err = async_nats::connect(bed.nats.url()).await.expect_err("an anonymous client connects");
    ensure!(matches!(err.kind(), async_nats::ConnectErrorKind::AuthorizationViolation), "{err}");
    // A key the server does not know is refused the same way.
    let stranger = tempfile::tempdir()?;
    access::ensure_seeds(stranger.path(), ["dispatch"])?;
    let err = jiesu_testkit::connect_as(&bed.nats.url(), stranger.path(), "dispatch").await.expect_err("an unknown key connects");
    ensure!(matches!(err.kind(), async_nats::ConnectErrorKind::AuthorizationViolation), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_cannot_publish_events() -> Result<()> {
    let bed = broker().await;
    let events = bed.subjects.events_stream();
    let hotline = js_as(&bed, &access::channel_user("hotline")).await;
    // The forged answer that closed a case, and the phantom case that armed clocks.
    ensure!(
        publish_event_refused(&hotline, &bed.subjects, &RevisitRecorded { meta: meta("c1"), ..Default::default() }).await,
        "a channel published revisit.recorded"
    );
    ensure!(
        publish_event_refused(&hotline, &bed.subjects, &CaseClassified { meta: meta("c2"), ..Default::default() }).await,
        "a channel published case.classified"
    );
    ensure!(stored(&bed, &events).await == 0, "a forged event reached the events stream");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_publishes_only_its_own_events() -> Result<()> {
    let bed = broker().await;
    let events = bed.subjects.events_stream();
    let classification = js_as(&bed, "classification").await;
    ensure!(
        publish_event_refused(&classification, &bed.subjects, &CaseClosed { meta: meta("c3"), ..Default::default() }).await,
        "classification published dispatch's case.closed"
    );
    let dispatch = js_as(&bed, "dispatch").await;
    // The forged case.received that put an attacker's words in a citizen's text message.
    ensure!(
        publish_event_refused(&dispatch, &bed.subjects, &CaseReceived { meta: meta("c4"), ..Default::default() }).await,
        "dispatch published intake's case.received"
    );
    ensure!(stored(&bed, &events).await == 0, "a forged event reached the events stream");
    // Its own event goes through: the permissions are not simply closed.
    ensure!(
        !publish_event_refused(&classification, &bed.subjects, &CaseClassified { meta: meta("c5"), ..Default::default() }).await,
        "classification may not publish its own case.classified"
    );
    ensure!(stored(&bed, &events).await == 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_operator_manages_streams_and_consumers() -> Result<()> {
    let bed = broker().await;
    let submissions = bed.subjects.submissions_stream();
    for user in ["dispatch", "intake", &access::channel_user("hotline")] {
        let js = js_as(&bed, user).await;
        ensure!(js.delete_stream(&submissions).await.is_err(), "{user} deleted the submissions stream");
        ensure!(js.delete_stream(bed.subjects.events_stream()).await.is_err(), "{user} deleted the events stream");
    }
    // Nobody but intake reads raw submissions (names and phones): a service may not make itself
    // a consumer of them, nor take intake's.
    let notification = js_as(&bed, "notification").await;
    let consumer = access::consumer_config("snoop", vec![bed.subjects.intake_all()], &Default::default());
    ensure!(notification.create_consumer_on_stream(consumer, &submissions).await.is_err(), "notification made a consumer of submissions");
    ensure!(
        notification.get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>("intake", &submissions).await.is_err(),
        "notification bound to intake's consumer"
    );
    // Both streams are still there, with the operator's settings.
    let operator = bed.jetstream().await?;
    operator.get_stream(&submissions).await?;
    operator.get_stream(bed.subjects.events_stream()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_submits_and_hears_only_on_its_own_subjects() -> Result<()> {
    let bed = broker().await;
    let hotline = js_as(&bed, &access::channel_user("hotline")).await;
    // Another channel's subject is refused; its own is stored.
    let other = hotline.publish(bed.subjects.intake("secretary_mailbox"), "{}".into()).await?.await;
    ensure!(other.is_err(), "hotline submitted as the secretary mailbox");
    hotline.publish(bed.subjects.intake("hotline"), "{}".into()).await?.await?;
    // Another channel's answers never reach it; its own do.
    let hotline_client = bed.nats.connect_as(&access::channel_user("hotline")).await?;
    let mut snooping = hotline_client.subscribe(bed.subjects.accepted("secretary_mailbox")).await?;
    let mut own = hotline_client.subscribe(bed.subjects.accepted("hotline")).await?;
    hotline_client.flush().await?;
    let operator = bed.nats.operator().await;
    operator.publish(bed.subjects.accepted("secretary_mailbox"), "answer".into()).await?;
    operator.publish(bed.subjects.accepted("hotline"), "answer".into()).await?;
    operator.flush().await?;
    ensure!(tokio::time::timeout(Duration::from_secs(5), own.next()).await?.is_some(), "hotline missed its own answer");
    let snooped = tokio::time::timeout(Duration::from_secs(1), snooping.next()).await;
    ensure!(!matches!(snooped, Ok(Some(_))), "hotline read the secretary mailbox's answer");
    // Its durable answers consumer is its own to read.
    let answers = hotline
        .get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(
            access::answers_durable("hotline"),
            bed.subjects.submissions_stream(),
        )
        .await;
    ensure!(answers.is_ok(), "hotline cannot read its answers consumer: {:?}", answers.err());
    Ok(())
}

/// Each service's `consumes!` reads exactly what the access table provisions for it: a service
/// that consumed an event the table does not list would wait for it forever.
#[test]
fn the_access_table_matches_what_each_service_consumes() {
    use jiesu_kit::Inbound;
    let table = |durable: &str| {
        access::SERVICES
            .iter()
            .flat_map(|s| s.consumers)
            .find(|d| d.name == durable)
            .unwrap_or_else(|| panic!("no durable {durable}"))
            .reads
    };
    let events = |kinds: &'static [&'static str]| access::Reads::Events(kinds);
    assert_eq!(table("classification"), events(jiesu_classification::consume::Consumed::KINDS));
    assert_eq!(table("dispatch"), events(jiesu_dispatch::consume::Consumed::KINDS));
    assert_eq!(table("sla_timer"), events(jiesu_sla_timer::consume::Consumed::KINDS));
    assert_eq!(table("notification"), events(jiesu_notification::consume::Consumed::KINDS));
    assert_eq!(table("revisit"), events(jiesu_revisit::consume::Consumed::KINDS));
    assert_eq!(table(jiesu_intake::PROGRESS_CONSUMER), events(jiesu_intake::consume::ProgressEvents::KINDS));
    assert_eq!(table(jiesu_intake::SERVICE), access::Reads::Submissions);
}
