//! The scenario's `fetch` step end to end over POP3: Bob's laptop
//! downloads what Alice sent, deleting it from the server unless the step
//! says `keep`; with `keep`, a second fetch downloads nothing new.

use crate::pop3_common;

use mailflow::trace::{Kind, Protocol};
use pop3_common::*;

fn fetch_step(at: &str, keep: bool) -> String {
    format!(r#"{{ "at": "{at}", "fetch": {{ "client": "bob-laptop", "keep": {keep} }} }}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_downloads_and_deletes() {
    let world = start(scenario(&format!("[{}, {}]", send_step("0s", "Lunch?"), fetch_step("1m", false))), None).await;
    world.run_to_end().await;
    let got = world.net.devices.messages("bob-laptop");
    assert_eq!(got.len(), 1, "the laptop downloaded one message");
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.starts_with("Return-Path: <alice@school.test>\r\n") && text.contains("Subject: Lunch?\r\n"), "{text}");
    assert!(text.contains("\r\n..two dots\r\n"), "byte-stuffing was undone exactly once: {text}");
    assert!(world.hosts[MX].store.inbox(BOB).is_empty(), "POP3 without keep deletes from the server");
    let events = world.trace.since(0);
    assert!(events.iter().any(|e| e.protocol == Protocol::Pop3 && e.summary == "bob-laptop asks: how many messages, how big?"));
    assert!(events.iter().any(|e| e.summary.contains("the device now holds the only copy")));
    assert!(events.iter().all(|e| !matches!(&e.kind, Kind::Failure { .. })), "no failures");
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_leaves_mail_and_a_second_fetch_downloads_nothing_new() {
    let steps = [send_step("0s", "Lunch?"), fetch_step("1m", true), fetch_step("2m", true), send_step("3m", "Dinner?"), fetch_step("4m", true)];
    let world = start(scenario(&format!("[{}]", steps.join(", "))), None).await;
    world.run_to_end().await;
    let got = world.net.devices.messages("bob-laptop");
    let inbox = world.hosts[MX].store.inbox(BOB);
    assert_eq!(inbox.len(), 2, "keep leaves both messages on the server");
    assert_eq!(got.len(), 2, "three fetches, but each message downloaded once");
    for (device, server) in got.iter().zip(&inbox) {
        assert_eq!(**device, *server.raw, "the device has exactly the server's bytes");
    }
    let events = world.trace.since(0);
    assert!(events.iter().any(|e| e.summary.contains("bob-laptop has no new mail")), "the second fetch found nothing new");
    let retrs = events.iter().filter(|e| e.protocol == Protocol::Pop3 && e.summary.starts_with("bob-laptop asks for message")).count();
    assert_eq!(retrs, 2);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_without_keep_after_one_with_keep_deletes_but_does_not_download_again() {
    let steps = [send_step("0s", "Lunch?"), fetch_step("1m", true), fetch_step("2m", false)];
    let world = start(scenario(&format!("[{}]", steps.join(", "))), None).await;
    world.run_to_end().await;
    assert_eq!(world.net.devices.messages("bob-laptop").len(), 1);
    assert!(world.hosts[MX].store.inbox(BOB).is_empty());
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_from_a_host_that_is_down_is_reported() {
    let steps = [r#"{ "at": "0s", "down": "mx1.example.org" }"#.to_string(), fetch_step("1m", false)];
    let world = start(scenario(&format!("[{}]", steps.join(", "))), None).await;
    world.run_to_end().await;
    let failed = world.trace.since(0).iter().any(|e| e.protocol == Protocol::Pop3 && e.from == "bob-laptop" && matches!(&e.kind, Kind::ConnectFailed { .. }));
    assert!(failed, "the failed connection is in the trace");
    assert!(world.net.devices.messages("bob-laptop").is_empty());
    world.shutdown().await;
}
