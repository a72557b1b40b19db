//! The worked producers of `examples/` against a real intake and nats-server: the Rust one, and
//! the Python one with the generic `nats-py` client (installed into `.local/python` by
//! `scripts/test.sh`). Each connects as its channel's own user, as an integrator would.

use std::{path::PathBuf, time::Duration};

use jiesu_example_producer::{Answer, connect, submit};
use jiesu_testkit::Harness;
use serde_json::json;

const CHANNEL: &str = "secretary_mailbox";

fn seed(h: &Harness) -> (PathBuf, String) {
    let path = h.bed.nats.keys_dir().join(format!("channel-{CHANNEL}.nk"));
    let seed = std::fs::read_to_string(&path).expect("the channel's key");
    (path, seed)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worked_producers_submit_and_read_their_answers() {
    let h = Harness::start("intake", |c, k| async move { jiesu_intake::start(&c, k).await }).await;
    let root = h.bed.subjects.root().to_string();
    let (seed_path, seed) = seed(&h);
    let client = connect(&h.bed.nats.url(), &seed, CHANNEL).await.expect("the channel's user connects");
    let wait = Duration::from_secs(20);

    let letter = json!({"channel_ref": "ex-1", "citizen": {"phone": "13800138000"}, "description": "小区门口私装地锁"});
    let Answer::Accepted { case_no, query_code, duplicate } = submit(&client, &root, CHANNEL, &letter, wait).await.unwrap() else {
        panic!("accepted")
    };
    assert!(case_no.starts_with("DM") && query_code.len() == 8 && !duplicate);
    // A corrected body under the same reference: the same case, said so.
    let corrected = json!({"channel_ref": "ex-1", "citizen": {"phone": "13800138000"}, "description": "小区东门私装地锁"});
    let again = submit(&client, &root, CHANNEL, &corrected, wait).await.unwrap();
    assert_eq!(again, Answer::Accepted { case_no: case_no.clone(), query_code, duplicate: true });
    let bad = json!({"channel_ref": "ex-2", "citizen": {"phone": "+1 415 555 0100"}, "descripton": "typo"});
    let Answer::Rejected(reasons) = submit(&client, &root, CHANNEL, &bad, wait).await.unwrap() else { panic!("rejected") };
    let fields: Vec<&str> = reasons.iter().map(|(f, _, _)| f.as_str()).collect();
    assert!(fields.contains(&"descripton") && fields.contains(&"citizen.phone") && fields.contains(&"description"), "{reasons:?}");
    // Another channel's subject is not this user's to publish on.
    let js = async_nats::jetstream::new(client.clone());
    let foreign = js.publish(format!("{root}.intake.hotline"), "{}".into()).await;
    let refused = match foreign {
        Err(_) => true,
        Ok(ack) => ack.await.is_err(),
    };
    assert!(refused, "a producer publishes only on its own channel");

    let root_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python_path = std::env::var("JIESU_TEST_PYTHONPATH").map(PathBuf::from).unwrap_or_else(|_| root_dir.join("../../.local/python"));
    let mut python = tokio::process::Command::new("python3")
        .arg(root_dir.join("../python/producer.py"))
        .env("PYTHONPATH", &python_path)
        .env("JIESU_NATS_URL", h.bed.nats.url())
        .env("JIESU_ROOT", &root)
        .env("JIESU_CHANNEL", CHANNEL)
        .env("JIESU_SEED", &seed_path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = python.stdin.take().unwrap();
        let body = json!({"channel_ref": "py-1", "citizen": {"name": "李先生", "phone": "13900139000"}, "description": "楼道灯坏了"});
        stdin.write_all(body.to_string().as_bytes()).await.unwrap();
    }
    let out = python.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("accepted DM"),
        "the Python producer (scripts/test.sh installs nats-py into {}):\n{stdout}\n{}",
        python_path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(stdout.split_whitespace().nth(1), Some(case_no.as_str()));
}
