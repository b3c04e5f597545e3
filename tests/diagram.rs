//! Handouts: `mailflow diagram` on a trace the real binary recorded, and
//! the page's download of one message's diagram (`/api/messages/{id}/diagram.svg`).
//! That the SVG and the Mermaid text really render is checked in Chromium
//! by `tests/browser/diagram.test.mjs`.

use crate::common::{Net, TempDir, run_mailflow};
use crate::web_support::{get, start, until_finished};

use axum::http::StatusCode;
use mailflow::conductor::Pace;

/// Runs the demo scenario with `--record` on a fresh loopback block; the trace's path.
fn record(dir: &TempDir) -> String {
    let trace = dir.join("trace.jsonl").display().to_string();
    for _ in 0..5 {
        let subnet = Net::random().to_string();
        let output = run_mailflow(&["run", "scenarios/alice-writes-to-bob.json", "--fast", "--quiet", "--subnet", &subnet, "--record", &trace], b"");
        if !output.stderr.contains("cannot listen for DNS") {
            output.expect_success(true);
            return trace;
        }
    }
    panic!("no free loopback block to record a trace");
}

/// The Message-ID of the first message in a recorded trace.
fn first_message(trace: &str) -> String {
    let text = std::fs::read_to_string(trace).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|e| e["message"]["id"].as_str().map(str::to_string))
        .expect("the trace names a message")
}

// The whole story, and one message's hops, as SVG on A4 pages and as Mermaid.
#[test]
fn diagram_of_a_recorded_trace() {
    let dir = TempDir::new("diagram");
    let trace = record(&dir);
    let svg = run_mailflow(&["diagram", &trace, "--format", "svg"], b"").expect_success(true).stdout;
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"210mm\""), "{}", &svg[..svg.len().min(300)]);
    let pages = svg.matches("<g class=\"page\"").count();
    assert!(pages >= 2, "the demo's long story continues on more pages: {pages}");
    assert!(svg.contains(&format!("height=\"{}mm\"", 297 * pages)));
    for name in ["alice-laptop", "smtp.school.test", "dns", "mx1.example.org", "bob-phone"] {
        assert!(svg.contains(&format!(">{name}</text>")), "participant {name}");
    }
    for hop in
        ["MX example.org?", "MAIL FROM:&lt;alice@school.test&gt;", "message (DATA): 348 bytes", "queued as SMTP-1", "SPF:", "encrypted from here: TLSv1.3"]
    {
        assert!(svg.contains(hop), "{hop}");
    }
    assert!(!svg.contains("wonderland"), "no password reaches the handout");

    let id = first_message(&trace);
    let out = dir.join("one.mmd");
    run_mailflow(&["diagram", &trace, "--message", &id, "--format", "mermaid", "-o", out.to_str().unwrap()], b"").expect_success(true);
    let mermaid = std::fs::read_to_string(&out).unwrap();
    assert!(mermaid.starts_with("sequenceDiagram\n    title \"Lunch?\" (alice@school.test → bob@example.org)\n"), "{mermaid}");
    assert!(mermaid.contains("participant p0 as alice-laptop"));
    assert!(mermaid.contains("->>p1: [TLS] MAIL FROM:#lt;alice@school.test#gt;"), "{mermaid}");
    assert!(mermaid.contains("Note over p1: queued as SMTP-1"));
    assert!(!mermaid.contains("step 2: bob-phone fetches"), "steps name no message, so one message's diagram has none");
    assert!(mermaid.contains(" UID FETCH 1 BODY[]"), "the IMAP session that fetched it is part of its story");
}

// Errors name the file, and the line for a line that is not an event.
#[test]
fn diagram_errors_name_file_and_line() {
    let dir = TempDir::new("diagram-errors");
    let missing = dir.join("missing.jsonl").display().to_string();
    let output = run_mailflow(&["diagram", &missing], b"").expect_success(false);
    assert!(output.stderr.contains(&format!("{missing}: No such file")), "{}", output.stderr);

    let good = r#"{"seq":0,"sim_ms":0,"wall_ms":0,"from":"a","to":"b","protocol":"smtp","kind":"connect","summary":"a connects"}"#;
    let bad = dir.write("bad.jsonl", &format!("{good}\n\n{{\"seq\": 1, \"nonsense\"\n"));
    let bad = bad.display().to_string();
    let output = run_mailflow(&["diagram", &bad, "--format", "mermaid"], b"").expect_success(false);
    assert!(output.stderr.contains(&format!("{bad}:3: not a mailflow event")), "{}", output.stderr);

    let ok = dir.write("ok.jsonl", &format!("{good}\n")).display().to_string();
    let output = run_mailflow(&["diagram", &ok, "--message", "nope@x"], b"").expect_success(false);
    assert!(output.stderr.contains(&format!("{ok}: the trace has no message with id \"nope@x\"")), "{}", output.stderr);
    let output = run_mailflow(&["diagram", &ok, "--format", "mermaid"], b"").expect_success(true);
    assert_eq!(output.stdout, "sequenceDiagram\n    title mailflow trace\n    participant p0 as a\n    participant p1 as b\n    p0->>p1: connects (SMTP)\n");
}

// The page's download: the message's hops as an SVG attachment; unknown ids are a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_downloads_a_message_diagram() {
    let state = start(Pace::Fast, None).await;
    until_finished(&state).await;
    let list = get(&state, "/api/messages").await.json();
    let id = list["messages"][0]["id"].as_str().expect("a stored message").to_string();
    let reply = get(&state, &format!("/api/messages/{id}/diagram.svg")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "image/svg+xml; charset=utf-8");
    let disposition = reply.headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment; filename=\"mailflow-") && disposition.ends_with(".svg\""), "{disposition}");
    let svg = reply.text();
    assert!(svg.starts_with("<svg") && svg.contains(">mx1.example.org</text>") && svg.contains("queued as SMTP-1"));

    let mermaid = get(&state, &format!("/api/messages/{id}/diagram.mmd")).await;
    assert_eq!(mermaid.status, StatusCode::OK);
    assert!(mermaid.text().starts_with("sequenceDiagram\n"));

    let missing = get(&state, "/api/messages/nobody@nowhere/diagram.svg").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.json()["error"].as_str().unwrap().contains("<nobody@nowhere>"));
    state.shutdown().await;
}
