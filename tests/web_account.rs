//! The account view's API (`/api/accounts...`, issue 12) through the real
//! router: no secret in the list; with a control token only the teacher may
//! see a code or sign in; the web sign-in needs the authenticator's code
//! for a two-factor account; app passwords are made once and revoked; wrong
//! sign-ins are counted.

use crate::web_support::{self, get, post, post_with_token};

use axum::http::StatusCode;
use mailflow::conductor::Pace;
use mailflow::scenario::Scenario;
use mailflow::web::{AppState, Control};
use serde_json::json;

const TOKEN: &str = "teacher-token-for-the-account-tests";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_a_code_then_make_and_revoke_app_passwords() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/phished-password.json");
    let text = std::fs::read_to_string(&path).expect("the lesson file");
    let scenario = Scenario::parse("phished-password.json", &text).expect("valid");
    let state = AppState::start(web_support::config(Some(TOKEN)), Control::from_pace(Pace::Step), scenario, "phished-password.json".into(), text)
        .await
        .expect("the world starts");

    // Anyone may see the list; it holds no secret.
    let list = get(&state, "/api/accounts").await;
    assert_eq!(list.status, StatusCode::OK);
    let body = list.text();
    assert!(body.contains("\"carol-phone\"") && body.contains("\"two_factor\":true"), "{body}");
    for secret in ["violet-harbor-lantern-1987", "qzxkmvnprtwbhcjd", "JBSWY3DPEHPK3PXP"] {
        assert!(!body.contains(secret), "{body}");
    }

    // Without the teacher's token: no code, no sign-in.
    let carol = json!({ "user": "carol@example.org" });
    assert_eq!(post(&state, "/api/accounts/authenticator", carol.clone()).await.status, StatusCode::FORBIDDEN);
    let sign_in = json!({ "user": "carol@example.org", "password": "violet-harbor-lantern-1987" });
    assert_eq!(post(&state, "/api/accounts/sign-in", sign_in.clone()).await.status, StatusCode::FORBIDDEN);

    // The password alone is not enough; with the authenticator's code it is.
    let reply = post_with_token(&state, "/api/accounts/sign-in", TOKEN, sign_in.clone()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.json()["error"].as_str().unwrap().contains("6-digit code"), "{}", reply.text());
    let code = post_with_token(&state, "/api/accounts/authenticator", TOKEN, carol).await.json();
    let digits = code["code"].as_str().expect("a code").to_string();
    assert!(digits.len() == 6 && digits.chars().all(|c| c.is_ascii_digit()), "{code}");
    assert!((1..=30).contains(&code["seconds_left"].as_u64().unwrap()), "{code}");
    let signed = post_with_token(
        &state,
        "/api/accounts/sign-in",
        TOKEN,
        json!({ "user": "carol@example.org", "password": "violet-harbor-lantern-1987", "code": digits }),
    )
    .await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.text());
    let session = signed.json()["session"].as_str().expect("a session").to_string();

    // A new app password, shown once, in groups of four; then revoked.
    let made = post_with_token(&state, "/api/accounts/app-passwords", TOKEN, json!({ "session": session, "name": "carol-tablet" })).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text());
    let secret = made.json()["app_password"].as_str().unwrap().to_string();
    assert_eq!(secret.split(' ').map(str::len).collect::<Vec<_>>(), [4, 4, 4, 4], "{secret}");
    let host = &state.session().world.hosts["mx1.example.org"];
    assert!(host.accounts().check("carol@example.org", &secret).is_some(), "the new app password opens the mailbox");
    let revoked = post_with_token(&state, "/api/accounts/revoke", TOKEN, json!({ "session": session, "name": "carol-phone" })).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
    assert!(host.accounts().check("carol@example.org", "qzxkmvnprtwbhcjd").is_none(), "the revoked one opens nothing");
    let again = post_with_token(&state, "/api/accounts/revoke", TOKEN, json!({ "session": session, "name": "carol-phone" })).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    let forged = post_with_token(&state, "/api/accounts/app-passwords", TOKEN, json!({ "session": "0".repeat(32), "name": "x" })).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    // The story tells it all without a secret.
    let story: String = state.session().world.trace.since(0).iter().map(|e| serde_json::to_string(&**e).unwrap()).collect();
    assert!(story.contains("carol@example.org makes an app password for \\\"carol-tablet\\\""));
    assert!(!story.contains(&secret) && !story.contains(&secret.replace(' ', "")) && !story.contains("violet-harbor-lantern-1987"));

    // Wrong sign-ins are counted: after 5, the user waits.
    let wrong = json!({ "user": "bob@example.org", "password": "nope" });
    for _ in 0..5 {
        assert_eq!(post_with_token(&state, "/api/accounts/sign-in", TOKEN, wrong.clone()).await.status, StatusCode::UNAUTHORIZED);
    }
    let stopped = post_with_token(&state, "/api/accounts/sign-in", TOKEN, wrong).await;
    assert_eq!(stopped.status, StatusCode::TOO_MANY_REQUESTS, "{}", stopped.text());
    assert!(stopped.headers.contains_key("retry-after"));
}
