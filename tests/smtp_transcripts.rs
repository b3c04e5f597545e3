//! The SMTP transcripts (`tests/transcripts/smtp/*.txt`) are replayed into
//! the session in unit tests; here the same files run over a real socket
//! against a served world, so the I/O layer keeps the same contract.
//! Transcripts that need what a host cannot be configured for here
//! (`! tls`: a TLS handshake in the middle; `! max_errors`) stay unit-test
//! only; the others run on a host with TLS off, as they were written
//! (no STARTTLS in the EHLO reply). SMTP over TLS is `tls_smtp.rs`.

use std::time::Duration;

use crate::imap_common;

use imap_common::*;
use mailflow::scenario::{Scenario, Service};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn world_for(settings: &[(&str, &str)]) -> Scenario {
    let mut host = serde_json::json!({ "services": ["smtp", "submission"], "domains": ["example.org"], "tls": { "policy": "off" } });
    for (key, value) in settings {
        host[*key] = serde_json::json!(value.parse::<usize>().expect("a number"));
    }
    let text = serde_json::json!({
        "title": "transcripts",
        "domains": { "example.org": {}, "school.test": {} },
        "hosts": { "mail.example.org": host },
        "users": {
            "bob@example.org": { "password": "builder" },
            "alice@school.test": { "password": "wonderland", "home": "mail.example.org" }
        }
    });
    Scenario::parse("transcripts.json", &text.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

async fn replay(name: &str, text: &str) -> Result<(), String> {
    let mut settings = Vec::new();
    let mut service = Service::Smtp;
    for directive in text.lines().filter_map(|l| l.strip_prefix("! ")) {
        match directive.split_once(' ').unwrap_or((directive, "")) {
            ("role", "submission") => service = Service::Submission,
            ("role", _) => service = Service::Smtp,
            ("max_recipients", v) => settings.push(("max_recipients", v)),
            ("max_message_size", v) => settings.push(("max_message_size", v)),
            _ => return Ok(()), // see the module docs
        }
    }
    let world = start(world_for(&settings)).await;
    let host = world.node("mail.example.org").expect("the host");
    let stream = TcpStream::connect((host.address, world.port(service))).await.map_err(|e| e.to_string())?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    for (n, line) in text.lines().enumerate() {
        let context = |msg: String| format!("{name}:{}: {msg}", n + 1);
        if let Some(client) = line.strip_prefix("C:") {
            let client = client.strip_prefix(' ').unwrap_or(client);
            writer.write_all(format!("{client}\r\n").as_bytes()).await.map_err(|e| context(e.to_string()))?;
        } else if let Some(expected) = line.strip_prefix("S:").map(str::trim_start) {
            let mut got = String::new();
            let read = tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut got)).await;
            let got = match read {
                Ok(Ok(_)) => got.trim_end().to_string(),
                other => return Err(context(format!("expected {expected:?}, got {other:?}"))),
            };
            if !got.starts_with(expected) {
                return Err(context(format!("expected {expected:?}, server sent {got:?}")));
            }
        }
    }
    world.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_transcripts_hold_over_a_real_socket() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts/smtp");
    let mut paths: Vec<_> = std::fs::read_dir(&dir).expect("transcripts").flatten().map(|e| e.path()).collect();
    paths.sort();
    let mut failures = Vec::new();
    let mut replayed = 0;
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("readable");
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if text.lines().any(|l| l.starts_with("! tls") || l.starts_with("! max_errors")) {
            continue;
        }
        replayed += 1;
        if let Err(e) = replay(&name, &text).await {
            failures.push(e);
        }
    }
    assert!(replayed >= 10, "only {replayed} transcripts replayed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
