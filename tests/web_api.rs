//! The web API, request by request, through the router with `oneshot`
//! (no server socket). Each test builds its own world on a random subnet.

use crate::web_support;

use axum::http::StatusCode;
use mailflow::conductor::Pace;
use serde_json::json;
use web_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_and_scenario_list() {
    let state = start(Pace::Fast, None).await;
    let reply = get(&state, "/api/scenario").await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["generation"], 1);
    assert!(body["file"].as_str().unwrap().contains("alice-writes-to-bob.json"));
    assert_eq!(body["scenario"]["title"], "Alice writes to Bob");
    assert!(body["text"].as_str().unwrap().contains("\"steps\""));
    // The page needs no user's secret: the password is hidden in the parsed
    // scenario and in the file's text, where it stood.
    let raw = reply.text();
    assert!(!raw.contains("wonderland") && !raw.contains("builder"), "a password reached the page: {raw}");
    assert_eq!(body["scenario"]["users"]["alice@school.test"]["password"], "(hidden)");
    assert!(body["text"].as_str().unwrap().contains("\"password\": \"(hidden)\""));

    let list = get(&state, "/api/scenarios").await.json();
    let names: Vec<&str> = list["scenarios"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"alice-writes-to-bob"), "{names:?}");
    state.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_has_roles_columns_ports_and_edges() {
    let state = start(Pace::Fast, None).await;
    let topology = get(&state, "/api/topology").await.json();
    let node = |name: &str| topology["nodes"].as_array().unwrap().iter().find(|n| n["name"] == name).cloned().unwrap_or_else(|| panic!("no node {name}"));
    assert_eq!(node("dns")["role"], "dns");
    assert_eq!(node("dns")["ports"]["dns"], 10053);
    assert_eq!(node("alice-laptop")["role"], "client");
    assert_eq!(node("alice-laptop")["column"], "senders");
    assert_eq!(node("smtp.school.test")["column"], "outgoing");
    assert_eq!(node("smtp.school.test")["ports"]["submission"], 10587);
    assert_eq!(node("mx1.example.org")["column"], "mx");
    assert_eq!(node("mx1.example.org")["ports"]["imap"], 10143);
    assert_eq!(node("mx1.example.org")["up"], true);
    assert_eq!(node("bob-phone")["column"], "recipients");
    assert!(node("mx2.example.org")["address"].as_str().unwrap().starts_with("127."));

    let edges = topology["edges"].as_array().unwrap();
    let has = |from: &str, to: &str, protocol: &str| edges.iter().any(|e| e["from"] == from && e["to"] == to && e["protocol"] == protocol);
    assert!(has("alice-laptop", "smtp.school.test", "smtp"), "submission edge");
    assert!(has("smtp.school.test", "mx1.example.org", "smtp"), "relay edge from the MX records");
    assert!(has("smtp.school.test", "mx2.example.org", "smtp"), "relay edge to the backup MX");
    assert!(has("bob-phone", "mx1.example.org", "imap"), "fetch edge");
    for host in ["smtp.school.test", "mx1.example.org", "mx2.example.org"] {
        assert!(has(host, "dns", "dns"), "{host} → dns");
    }
    let zones = topology["zones"].as_array().unwrap();
    assert!(
        zones
            .iter()
            .any(|z| z["domain"] == "example.org" && z["records"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains("MX 10 mx1.example.org.")))
    );
    state.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_since_a_sequence_number() {
    let state = start(Pace::Fast, None).await;
    until_finished(&state).await;
    let all = get(&state, "/api/events").await.json();
    let events = all["events"].as_array().unwrap();
    assert!(events.len() > 30);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["seq"], i as u64);
    }
    assert_eq!(events[0]["kind"], "world_up");
    assert!(events.iter().any(|e| e["kind"] == "delivered"));
    let tail = get(&state, "/api/events?since=10").await.json();
    assert_eq!(tail["events"][0]["seq"], 10);
    assert_eq!(tail["events"].as_array().unwrap().len(), events.len() - 10);
    assert_eq!(get(&state, "/api/events?since=100000").await.json()["events"], json!([]));
    state.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_with_headers_received_chain_and_hops() {
    let state = start(Pace::Fast, None).await;
    until_finished(&state).await;
    let list = get(&state, "/api/messages").await.json();
    let messages = list["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{list}");
    let message = &messages[0];
    assert_eq!(message["subject"], "Lunch?");
    assert_eq!(message["copies"][0]["host"], "mx1.example.org");
    assert_eq!(message["copies"][0]["user"], "bob@example.org");
    assert_eq!(message["copies"][0]["mailbox"], "INBOX");

    let id = message["id"].as_str().unwrap();
    let reply = get(&state, &format!("/api/messages/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let detail = reply.json();
    let copy = &detail["copies"][0];
    assert!(copy["raw"].as_str().unwrap().contains("Subject: Lunch?"));
    assert!(copy["headers"].as_array().unwrap().iter().any(|h| h["name"] == "Return-Path"));
    let chain = copy["received"].as_array().unwrap();
    assert_eq!(chain.len(), 2, "{chain:?}");
    assert_eq!(chain[0]["from"], "alice-laptop");
    assert_eq!(chain[0]["by"], "smtp.school.test");
    // The device logs in over STARTTLS: S for TLS, A for AUTH (RFC 3848).
    assert_eq!(chain[0]["with"], "ESMTPSA");
    assert_eq!(chain[1]["by"], "mx1.example.org");
    let hops = detail["hops"].as_array().unwrap();
    assert!(hops.iter().any(|e| e["kind"] == "delivered"));
    assert!(hops.iter().all(|e| e["message"]["id"] == id));
    assert!(hops.windows(2).all(|w| w[0]["seq"].as_u64() < w[1]["seq"].as_u64()));

    let missing = get(&state, "/api/messages/nobody@nowhere").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.json()["error"].as_str().is_some());
    state.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_pause_step_play_speed_restart() {
    let state = start(Pace::Step, None).await;
    let status = get(&state, "/api/state").await.json();
    assert_eq!(status["paused"], true);
    assert_eq!(status["can_control"], true);

    // Stepping releases exactly the hop that waits.
    let before = state.session().world.trace.len();
    let reply = post(&state, "/api/control", json!({"action": "step"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["stepped"], true);
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while state.session().world.trace.len() <= before {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a step lets an event through");

    let reply = post(&state, "/api/control", json!({"action": "speed", "speed": 4})).await;
    assert_eq!(reply.json()["speed"], 4.0);
    assert_eq!(reply.json()["paused"], true);
    let reply = post(&state, "/api/control", json!({"action": "play", "speed": 0})).await;
    assert_eq!(reply.json()["paused"], false);
    until_finished(&state).await;
    let reply = post(&state, "/api/control", json!({"action": "pause"})).await;
    assert_eq!(reply.json()["paused"], true);

    let reply = post(&state, "/api/control", json!({"action": "restart"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["generation"], 2);
    assert_eq!(state.session().generation, 2);
    assert!(state.session().world.trace.len() < 10, "the new world starts its story from the beginning");
    assert_eq!(get(&state, "/api/events").await.json()["generation"], 2);

    for bad in [json!({"action": "fly"}), json!({"action": "speed", "speed": -1}), json!({"action": "speed"}), json!({"nothing": 1})] {
        assert_eq!(post(&state, "/api/control", bad.clone()).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    state.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_token_makes_everyone_else_read_only() {
    let state = start(Pace::Step, Some("s3cret")).await;
    // Reading is open.
    for uri in ["/api/scenario", "/api/topology", "/api/events", "/api/messages", "/api/state", "/"] {
        assert_eq!(get(&state, uri).await.status, StatusCode::OK, "{uri}");
    }
    assert_eq!(get(&state, "/api/state").await.json()["can_control"], false);
    assert_eq!(get(&state, "/api/state?token=s3cret").await.json()["can_control"], true);

    // Changing is not, without the token.
    for (uri, body) in [
        ("/api/control", json!({"action": "play"})),
        ("/api/control", json!({"action": "restart"})),
        ("/api/scenario", json!({"name": "alice-writes-to-bob"})),
        ("/api/send", json!({"client": "alice-laptop", "to": "bob@example.org", "subject": "x", "body": "y"})),
    ] {
        let reply = post(&state, uri, body.clone()).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{uri} {body}");
        assert!(reply.json()["error"].as_str().unwrap().contains("read-only"));
        assert_eq!(post_with_token(&state, uri, "wrong", body.clone()).await.status, StatusCode::FORBIDDEN);
        assert_eq!(post(&state, &format!("{uri}?token=nope"), body).await.status, StatusCode::FORBIDDEN);
    }
    assert!(state.control().paused, "nothing changed");
    assert_eq!(state.session().generation, 1);

    // With it, in the header or the query.
    assert_eq!(post_with_token(&state, "/api/control", "s3cret", json!({"action": "speed", "speed": 2})).await.status, StatusCode::OK);
    assert_eq!(post(&state, "/api/control?token=s3cret", json!({"action": "play", "speed": 0})).await.status, StatusCode::OK);
    assert!(!state.control().paused);
    state.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scenario_uploads_name_line_column_and_path() {
    let state = start(Pace::Fast, None).await;
    // A syntax error: serde_json's position.
    let reply = post(&state, "/api/scenario", json!({"file": "broken.json", "text": "{\n  \"title\": \"x\",\n  \"domains\": {,\n}"})).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let problem = &reply.json()["problems"][0];
    assert_eq!(problem["file"], "broken.json");
    assert_eq!(problem["line"], 3);
    assert!(problem["column"].as_u64().unwrap() > 0);
    assert!(problem["message"].as_str().is_some());

    // A wrong type: the field path.
    let reply = post(&state, "/api/scenario", json!({"file": "typed.json", "text": "{\n  \"title\": 3,\n  \"domains\": {},\n  \"hosts\": {}\n}"})).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let problem = &reply.json()["problems"][0];
    assert_eq!((problem["line"].as_u64(), problem["path"].as_str()), (Some(2), Some("title")));

    // A broken reference, found by validation after parsing.
    let text = mailflow::scenario::DEFAULT_SCENARIO.replace("\"user\": \"bob@example.org\"", "\"user\": \"bob@example.com\"");
    let reply = post(&state, "/api/scenario", json!({"file": "ref.json", "text": text})).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let problems = reply.json()["problems"].as_array().unwrap().clone();
    let problem = problems.iter().find(|p| p["path"].as_str().unwrap().contains("bob-phone")).unwrap_or_else(|| panic!("{problems:?}"));
    assert!(problem["line"].as_u64().unwrap() > 1 && problem["column"].as_u64().unwrap() > 1);
    assert!(problem["message"].as_str().unwrap().contains("bob@example.com"));

    // Names must be files of the scenarios folder.
    assert_eq!(post(&state, "/api/scenario", json!({"name": "../Cargo"})).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(post(&state, "/api/scenario", json!({"name": "no-such-lesson"})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(post(&state, "/api/scenario", json!({})).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(state.session().generation, 1, "a bad upload leaves the world running");

    // A good one replaces the world.
    let reply = post(&state, "/api/scenario", json!({"name": "alice-writes-to-bob"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["generation"], 2);
    let uploaded = mailflow::scenario::DEFAULT_SCENARIO.replace("Alice writes to Bob", "Uploaded lesson");
    let reply = post(&state, "/api/scenario", json!({"file": "mine.json", "text": uploaded})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(get(&state, "/api/scenario").await.json()["scenario"]["title"], "Uploaded lesson");
    assert_eq!(get(&state, "/api/scenario").await.json()["file"], "mine.json");
    until_finished(&state).await;
    assert_eq!(get(&state, "/api/messages").await.json()["messages"].as_array().unwrap().len(), 1, "the new world ran its story");
    state.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_sends_from_a_device_of_the_scenario() {
    let state = start(Pace::Fast, None).await;
    until_finished(&state).await;
    let reply = post(&state, "/api/send", json!({"client": "alice-laptop", "to": "bob@example.org", "subject": "From the page", "body": "Hello class"})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    let id = reply.json()["message"]["id"].as_str().unwrap().to_string();
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let detail = get(&state, &format!("/api/messages/{id}")).await;
            if detail.status == StatusCode::OK && !detail.json()["copies"].as_array().unwrap().is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the composed message arrives in bob's mailbox");
    let detail = get(&state, &format!("/api/messages/{id}")).await.json();
    assert!(detail["copies"][0]["raw"].as_str().unwrap().contains("Hello class"));
    assert!(detail["hops"].as_array().unwrap().iter().any(|e| e["kind"] == "delivered"));

    for bad in [
        json!({"client": "nobody", "to": "bob@example.org"}),
        json!({"client": "bob-phone", "to": "alice@school.test"}),
        json!({"client": "alice-laptop", "to": ""}),
        json!({"client": "alice-laptop", "to": ["not an address"]}),
        json!({"client": "alice-laptop"}),
    ] {
        assert_eq!(post(&state, "/api/send", bad.clone()).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    state.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_from_the_binary() {
    let state = start(Pace::Fast, None).await;
    let page = get(&state, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.headers["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    assert!(page.text().contains("<script type=\"module\""));
    let script = get(&state, "/js/main.js").await;
    assert!(script.headers["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert_eq!(get(&state, "/style.css").await.status, StatusCode::OK);
    assert_eq!(get(&state, "/nothing-here.js").await.status, StatusCode::NOT_FOUND);
    let api = get(&state, "/api/nothing").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(api.json()["error"].as_str().is_some());
    state.shutdown().await;
}
