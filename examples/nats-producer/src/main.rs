//! `jiesu-example-producer` — submits one request read as JSON from stdin on a channel and prints
//! intake's answer.
//!
//! ```text
//! echo '{"channel_ref": "wx-1", "citizen": {"phone": "13800138000"}, "description": "路灯不亮"}' |
//!   jiesu-example-producer --url nats://127.0.0.1:4333 --seed data/nats-keys/channel-wechat.nk --channel wechat
//! ```

use std::{io::Read, process::ExitCode, time::Duration};

use jiesu_example_producer::{Answer, connect, submit};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut url, mut seed, mut channel, mut root) =
        ("nats://127.0.0.1:4333".to_string(), String::new(), String::new(), "jiesu".to_string());
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--url" => url = value,
            "--seed" => seed = value,
            "--channel" => channel = value,
            "--root" => root = value,
            other => {
                eprintln!("unknown argument {other}; usage: --url URL --seed FILE --channel ID [--root jiesu] < submission.json");
                return ExitCode::from(2);
            }
        }
    }
    let mut input = String::new();
    let submission: serde_json::Value = match std::io::stdin().read_to_string(&mut input).map(|_| serde_json::from_str(&input)) {
        Ok(Ok(v)) => v,
        _ => {
            eprintln!("stdin must hold the submission as one JSON object");
            return ExitCode::from(2);
        }
    };
    let seed = match std::fs::read_to_string(&seed) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot read the channel's key {seed:?}: {e}");
            return ExitCode::from(2);
        }
    };
    let result = async {
        let client = connect(&url, &seed, &channel).await?;
        submit(&client, &root, &channel, &submission, Duration::from_secs(30)).await
    };
    match result.await {
        Ok(Answer::Accepted { case_no, query_code, duplicate }) => {
            println!("accepted: case {case_no}, query code {query_code}{}", if duplicate { " (sent before)" } else { "" });
            ExitCode::SUCCESS
        }
        Ok(Answer::Rejected(reasons)) => {
            for (field, reason, zh) in reasons {
                println!("rejected: {field}: {reason} ({zh})");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
