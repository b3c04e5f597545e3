//! Live DNS editing (`POST /api/dns`): the teacher changes, adds and
//! removes records while the world runs; `dig` against the fake DNS sees
//! each change at the next question, and each change is an event of the
//! story. With a control token only the teacher may edit.

use crate::common::{dig, short_lines};
use crate::web_support::{get, post, post_with_token, start, until_finished};

use axum::http::StatusCode;
use mailflow::conductor::Pace;
use mailflow::trace::Kind;
use mailflow::web::AppState;
use serde_json::{Value, json};
use std::sync::Arc;

async fn dig_short(state: &Arc<AppState>, rtype: &str, name: &str) -> Vec<String> {
    let addr = state.session().world.dns_addr;
    let args: Vec<String> = [format!("@{}", addr.ip()), "-p".into(), addr.port().to_string(), "+short".into(), rtype.into(), name.into()].into();
    let mut lines = short_lines(&dig(&args).await);
    lines.sort();
    lines
}

/// The zone-file line of `domain`'s record containing `text`, as `GET /api/dns` lists it.
async fn line_of(state: &Arc<AppState>, domain: &str, text: &str) -> String {
    let zones = get(state, "/api/dns").await.json();
    let zone = zones["zones"].as_array().unwrap().iter().find(|z| z["domain"] == domain).unwrap_or_else(|| panic!("no zone {domain}: {zones}"));
    let record =
        zone["records"].as_array().unwrap().iter().find(|r| r["line"].as_str().unwrap().contains(text)).unwrap_or_else(|| panic!("no {text} in {zone}"));
    record["line"].as_str().unwrap().to_string()
}

fn dns_changes(state: &Arc<AppState>) -> Vec<String> {
    state.session().world.trace.since(0).iter().filter(|e| matches!(e.kind, Kind::DnsChange { .. })).map(|e| e.summary.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_teacher_edits_a_zone_and_dig_sees_it() {
    let token = "teacher-secret";
    let state = start(Pace::Fast, Some(token)).await;
    until_finished(&state).await;
    assert_eq!(dig_short(&state, "MX", "example.org").await, ["10 mx1.example.org.", "20 mx2.example.org."]);

    // The editor's view: each record as a line and as a scenario record.
    let mx1 = line_of(&state, "example.org", "MX 10 mx1.example.org.").await;
    let zones = get(&state, "/api/dns").await.json();
    let example = zones["zones"].as_array().unwrap().iter().find(|z| z["domain"] == "example.org").unwrap().clone();
    assert!(
        example["records"].as_array().unwrap().iter().any(|r| r["record"] == json!({"type": "MX", "preference": 10, "exchange": "mx1.example.org"})),
        "{example}"
    );

    // Without the token: refused, and nothing changed.
    let refused = post(&state, "/api/dns", json!({"domain": "example.org", "action": "remove", "line": mx1})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(dig_short(&state, "MX", "example.org").await, ["10 mx1.example.org.", "20 mx2.example.org."]);

    // Change: mx2 becomes the first choice.
    let mx2 = line_of(&state, "example.org", "MX 20 mx2.example.org.").await;
    let reply = post_with_token(
        &state,
        "/api/dns",
        token,
        json!({"domain": "example.org", "action": "change", "line": mx2, "record": {"type": "MX", "preference": 5, "exchange": "mx2.example.org"}}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.json()["records"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains("MX 5 mx2.example.org.")));
    assert_eq!(dig_short(&state, "MX", "example.org").await, ["10 mx1.example.org.", "5 mx2.example.org."]);

    // Add a TXT record, then remove mx1's MX.
    let add = json!({"domain": "example.org", "action": "add", "record": {"type": "TXT", "name": "lesson", "text": "edited live"}});
    assert_eq!(post_with_token(&state, "/api/dns", token, add.clone()).await.status, StatusCode::OK);
    assert_eq!(dig_short(&state, "TXT", "lesson.example.org").await, ["\"edited live\""]);
    assert_eq!(post_with_token(&state, "/api/dns", token, add).await.status, StatusCode::CONFLICT, "the same record twice");
    let remove = json!({"domain": "example.org", "action": "remove", "line": mx1});
    assert_eq!(post_with_token(&state, "/api/dns", token, remove.clone()).await.status, StatusCode::OK);
    assert_eq!(dig_short(&state, "MX", "example.org").await, ["5 mx2.example.org."]);
    let stale = post_with_token(&state, "/api/dns", token, remove).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "a record already gone: {}", stale.text());

    // The DKIM key the world published stays through every edit.
    assert_eq!(dig_short(&state, "TXT", "mailflow._domainkey.example.org").await.len(), 1, "the DKIM key is still published");

    // Each edit is an event of the story.
    let changes = dns_changes(&state);
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(changes[0].contains("changes example.org. 300 MX 20 mx2.example.org. to example.org. 300 MX 5 mx2.example.org."), "{changes:?}");
    assert!(changes[1].contains("adds to example.org: lesson.example.org. 300 TXT"), "{changes:?}");
    assert!(changes[2].contains("removes example.org. 300 MX 10 mx1.example.org."), "{changes:?}");
    state.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_stay_on_this_machine_and_name_their_problem() {
    let state = start(Pace::Fast, None).await;
    until_finished(&state).await;
    let error = |reply: crate::web_support::Reply| -> (StatusCode, String) { (reply.status, reply.json()["error"].as_str().unwrap_or_default().to_string()) };
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"domain": "example.org", "action": "add", "record": {"type": "A", "name": "evil", "address": "8.8.8.8"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "loopback",
        ),
        (
            json!({"domain": "example.org", "action": "add", "record": {"type": "AAAA", "name": "evil", "address": "2001:db8::1"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "::1",
        ),
        (json!({"domain": "example.org", "action": "add", "record": {"type": "MX", "preference": 1}}), StatusCode::UNPROCESSABLE_ENTITY, "needs `exchange`"),
        (json!({"domain": "nowhere.test", "action": "add", "record": {"type": "TXT", "text": "x"}}), StatusCode::NOT_FOUND, "example.org"),
        (json!({"domain": "example.org", "action": "remove"}), StatusCode::BAD_REQUEST, "need the record's `line`"),
        (json!({"domain": "example.org", "action": "drop", "line": "x"}), StatusCode::BAD_REQUEST, "unknown variant"),
        (json!({"domain": "example.org", "action": "remove", "line": "example.org. 300 IN MX 99 nope."}), StatusCode::CONFLICT, "reload"),
    ];
    for (body, status, says) in cases {
        let (got, message) = error(post(&state, "/api/dns", body.clone()).await);
        assert_eq!(got, status, "{body}: {message}");
        assert!(message.contains(says), "{body}: {message}");
    }
    let mx1_address = line_of(&state, "example.org", "mx1.example.org. 300 IN A").await;
    let (status, message) = error(post(&state, "/api/dns", json!({"domain": "example.org", "action": "remove", "line": mx1_address})).await);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message.contains("host's own address"), "{message}");
    assert!(dns_changes(&state).is_empty(), "no refused edit reached the story");
    assert_eq!(dig_short(&state, "A", "evil.example.org").await, Vec::<String>::new());
    state.shutdown().await;
}
