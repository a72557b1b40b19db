//! The kit's consumer against a real nats-server and a real SQLite database: exactly-once
//! effects under redelivery and re-sends, retries with back-off, dead letters that do not block
//! the messages behind them, replay, and the outbox relay.

use jiesu_proto::{Named, v1 as ev};
use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use jiesu_kit::{
    CaseIds, DistrictConfig, Handler, HandlerError, Host, Inbound, Incoming, Subjects, Work, db::Migrations, with_pool, with_tx,
};
use jiesu_testkit::{NatsServer, unique_name};

/// Raw test messages on `<root>.event.test.in`.
struct Raw(Incoming);

impl Inbound for Raw {
    const KINDS: &'static [&'static str] = &["test.in"];

    fn source(subjects: &Subjects) -> (String, Vec<String>) {
        (subjects.events_stream(), vec![subjects.event("test.in")])
    }

    fn decode(msg: &Incoming) -> Result<Self, HandlerError> {
        Ok(Raw(msg.clone()))
    }
}

struct Echo {
    /// Set when the cause of "broken" has been fixed, so its dead letter can be replayed.
    fixed: std::sync::atomic::AtomicBool,
}

impl Handler for Echo {
    type Message = Raw;

    async fn handle(&self, work: &mut Work<'_>, Raw(msg): Raw) -> Result<(), HandlerError> {
        let body = String::from_utf8_lossy(&msg.payload).to_string();
        if body == "poison" {
            return Err(HandlerError::reject("poison can never be handled"));
        }
        if body == "flaky" && msg.delivered < 2 {
            return Err(HandlerError::retry("not yet"));
        }
        if body == "broken" && !self.fixed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(HandlerError::retry("always failing"));
        }
        with_tx!(work.tx, conn => sqlx::query("INSERT INTO seen (id, body) VALUES ($1, $2)")
            .bind(&msg.message_id).bind(&body).execute(conn).await.map(|r| r.rows_affected()))?;
        let event = jiesu_proto::v1::CaseClosed { meta: None, round: 1, ..Default::default() };
        work.emit(CaseIds { case_id: "case-1", case_no: "DM1" }, event);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_retries_and_dead_letters() {
    let nats = NatsServer::start_without_auth();
    let dir = tempfile::tempdir().unwrap();
    let root = unique_name("k");
    let mut cfg = DistrictConfig::parse("[test]\n", dir.path()).unwrap();
    cfg.set("nats.url", nats.url());
    cfg.set("nats.subject_root", root.clone());
    cfg.set("test.database_url", format!("sqlite://{}", dir.path().join("t.db").display()));
    // The consumer's mechanics, not who may call: no tokens, plain text on loopback.
    cfg.set("auth.required", false);
    cfg.set("tls.plaintext", true);
    cfg.set("test.consumer.max_deliver", 3);
    cfg.set("test.consumer.backoff", vec!["100ms", "100ms", "100ms"]);
    let svc = cfg.service::<serde::de::IgnoredAny>("test").unwrap();
    let migrations =
        Migrations { sqlite: sqlx::migrate!("tests/migrations/sqlite"), postgres: sqlx::migrate!("tests/migrations/postgres") };
    let mut host = Host::start(&svc, &migrations, Arc::new(jiesu_kit::SystemClock)).await.unwrap();
    let subjects = host.broker.subjects.clone();
    let db = host.db.clone();
    let echo = Arc::new(Echo { fixed: false.into() });

    let client = nats.operator().await;
    let js = async_nats::jetstream::new(client);
    let send = |id: &str, body: &str| {
        let js = js.clone();
        let subject = subjects.event("test.in");
        let (id, body) = (id.to_string(), body.to_string());
        async move {
            let mut h = async_nats::HeaderMap::new();
            h.insert("Nats-Msg-Id", id.as_str());
            js.publish_with_headers(subject, h, body.into()).await.unwrap().await.unwrap();
        }
    };
    send("m1", "one").await;
    send("m2", "poison").await;
    send("m3", "flaky").await;
    send("m4", "broken").await;
    send("m5", "five").await;
    send("m1", "one again (JetStream drops this re-send)").await;
    // Consuming starts with all of them waiting, so they are handled as one batch in one
    // transaction: the failing ones must be rolled back alone.
    host.consume(echo.clone());
    let broker = host.broker.clone();
    let health = tonic_health::server::health_reporter().1;
    let running = host.serve(health).unwrap();

    let seen = |db: jiesu_kit::Db| async move {
        with_pool!(&db, pool => sqlx::query_scalar::<_, String>("SELECT body FROM seen ORDER BY body").fetch_all(pool).await).unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let letters = jiesu_kit::consumer::dead_letters(&db, true).await.unwrap();
        if seen(db.clone()).await.len() == 3 && letters.len() == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "messages were not all handled in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The poison and the always-failing message did not block m5 behind them.
    assert_eq!(seen(db.clone()).await, vec!["five", "flaky", "one"]);
    let letters = jiesu_kit::consumer::dead_letters(&db, true).await.unwrap();
    let mut errors: Vec<_> = letters.iter().map(|l| (l.message_id.clone(), l.deliveries, l.error.clone())).collect();
    errors.sort();
    assert_eq!(errors[0].0, "m2");
    assert_eq!(errors[0].1, 1, "a rejected message is dead-lettered at once");
    assert_eq!(errors[1].0, "m4");
    assert_eq!(errors[1].1, 3, "a failing message is retried max_deliver times");
    assert!(errors[1].2.contains("always failing"));

    // Each handled message's event was published exactly once.
    let stream = js.get_stream(subjects.events_stream()).await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            filter_subject: subjects.event(ev::CaseClosed::TYPE),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut echoed = Vec::new();
    let mut batch = consumer.fetch().max_messages(10).expires(Duration::from_secs(1)).messages().await.unwrap();
    while let Some(Ok(m)) = batch.next().await {
        echoed.push(m.headers.as_ref().unwrap().get("Nats-Msg-Id").unwrap().to_string());
        let _ = m.ack().await;
    }
    echoed.sort();
    echoed.dedup();
    assert_eq!(echoed.len(), 3, "one event for each of m1, m3 and m5: {echoed:?}");

    // Once the cause is fixed, the dead letter is replayed through the admin port, once.
    echo.fixed.store(true, std::sync::atomic::Ordering::SeqCst);
    let m4 = letters.iter().find(|l| l.message_id == "m4").unwrap().id.clone();
    let (code, body) = post(running.admin_addr, &format!("/dead-letters/{m4}/replay"));
    assert_eq!(code, 200, "{body}");
    let (code, body) = post(running.admin_addr, &format!("/dead-letters/{m4}/replay"));
    assert_eq!(code, 422, "a second replay is refused: {body}");
    assert!(body.contains("already replayed"), "{body}");
    assert_eq!(seen(db.clone()).await, vec!["broken", "five", "flaky", "one"]);
    let open = jiesu_kit::consumer::dead_letters(&db, false).await.unwrap();
    assert_eq!(open.len(), 1, "only the poison message is left open");

    // Published rows leave the outbox after a week; nothing unpublished ever does.
    let week_later = jiesu_kit::ManualClock::new(chrono::Utc::now() + chrono::Duration::days(8));
    let relay = jiesu_kit::outbox::Relay {
        db: db.clone(),
        broker,
        clock: Arc::new(week_later),
        wake: Default::default(),
        metrics: jiesu_kit::metrics::Metrics::new("test"),
        readiness: Default::default(),
    };
    jiesu_testkit::eventually("the replayed echo to be published", Duration::from_secs(10), || async {
        (jiesu_kit::outbox::backlog(&db).await.ok()? == 0).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(relay.purge().await.unwrap(), 4, "the four published echoes are purged");
    assert_eq!(relay.purge().await.unwrap(), 0);
    // Once no stream can hold the messages any more, their inbox entries go too.
    let later = chrono::Utc::now() + chrono::Duration::days(2);
    let kept = jiesu_kit::consumer::inbox::purge(&db, "test", Duration::from_secs(3 * 86_400), later).await.unwrap();
    assert_eq!(kept, 0, "entries younger than the retention stay");
    let purged = jiesu_kit::consumer::inbox::purge(&db, "test", Duration::from_secs(86_400), later).await.unwrap();
    assert_eq!(purged, 4, "m1, m3, m4 and m5 leave the inbox");
    running.shutdown().await;
}

fn post(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, out)
}
