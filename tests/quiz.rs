//! Quiz pauses through the web API (issue 13): a quiz step holds the story
//! until the teacher reveals it; students vote without the token; before
//! the reveal the answer, the explanation and the teacher notes reach only
//! the teacher; the trace records each quiz asked and revealed with its
//! counts. Requests go through the router with `oneshot` (no socket).

use crate::web_support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use mailflow::conductor::Pace;
use mailflow::scenario::Scenario;
use mailflow::trace::{Event, Kind};
use mailflow::web::{AppState, Control};
use serde_json::{Value, json};
use web_support::*;

const TOKEN: &str = "quiz-token-42";

/// Two quizzes around a message: the second is asked once it is delivered.
const LESSON: &str = r#"{
  "title": "Two questions",
  "teacher_notes": "Secret hint: wait for every vote.",
  "domains": {
    "school.test": { "records": [ { "type": "MX", "preference": 10, "exchange": "smtp.school.test" } ] },
    "example.org": { "records": [ { "type": "MX", "preference": 10, "exchange": "mx1.example.org" } ] }
  },
  "hosts": {
    "smtp.school.test": { "services": ["submission", "smtp"], "domains": ["school.test"] },
    "mx1.example.org": { "services": ["smtp", "imap"], "domains": ["example.org"] }
  },
  "users": { "alice@school.test": { "password": "wonderland" }, "bob@example.org": { "password": "builder" } },
  "clients": { "alice-laptop": { "user": "alice@school.test", "submit_to": "smtp.school.test" } },
  "steps": [
    { "at": "0s", "quiz": { "question": "Where does the laptop send it?", "choices": ["to Bob", "to its own server", "to DNS"],
                            "answer": "to its own server", "explanation": "Submission: SECRET-EXPLANATION-ONE." } },
    { "at": "0s", "send": { "client": "alice-laptop", "to": ["bob@example.org"], "subject": "Hi", "body": "Hello" } },
    { "at": "1m", "quiz": { "question": "Is it in Bob's mailbox?", "choices": ["yes", "no"], "answer": "yes",
                            "explanation": "SECRET-EXPLANATION-TWO." } }
  ]
}"#;

async fn start_lesson(pace: Pace, token: Option<&str>) -> Arc<AppState> {
    let scenario = Scenario::parse("quiz.json", LESSON).unwrap_or_else(|e| panic!("{e}"));
    AppState::start(config(token), Control::from_pace(pace), scenario, "quiz.json".into(), LESSON.into()).await.expect("the world starts")
}

async fn get_with_token(state: &Arc<AppState>, uri: &str, token: &str) -> Reply {
    call(state, Request::get(uri).header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap()).await
}

/// Waits (up to 20 s) for the first event from `since` on that `matches`.
async fn until_event(state: &Arc<AppState>, since: u64, matches: impl Fn(&Event) -> bool) -> Arc<Event> {
    let mut events = state.session().world.trace.subscribe(since);
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = events.next().await {
            if matches(&event) {
                return event;
            }
        }
        panic!("the trace closed first");
    })
    .await
    .expect("the event comes within 20 s")
}

fn vote(quiz: u64, choice: u64, voter: &str) -> Value {
    json!({"quiz": quiz, "choice": choice, "voter": voter})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiz_holds_the_story_until_the_teacher_reveals() {
    let state = start_lesson(Pace::Live { speed: 50.0 }, Some(TOKEN)).await;
    let asked = until_event(&state, 0, |e| matches!(e.kind, Kind::QuizAsked { .. })).await;
    let Kind::QuizAsked { quiz, question, choices } = &asked.kind else { unreachable!() };
    assert_eq!((*quiz, question.as_str(), choices.len()), (0, "Where does the laptop send it?", 3));

    // A student's view: the question, not the answer.
    let student = get(&state, "/api/quiz?voter=student-0001").await.json();
    assert_eq!(student["teacher"], false);
    assert_eq!(student["quiz"]["question"], "Where does the laptop send it?");
    for hidden in ["answer", "explanation", "counts"] {
        assert!(student["quiz"].get(hidden).is_none(), "{hidden} leaks: {student}");
    }
    let scenario = get(&state, "/api/scenario").await;
    let text = scenario.text();
    assert!(!text.contains("SECRET-EXPLANATION") && !text.contains("Secret hint") && !text.contains("\"answer\""), "{text}");
    assert_eq!(scenario.json()["text"], Value::Null);
    let events = get(&state, "/api/events").await.text();
    assert!(!events.contains("SECRET-EXPLANATION") && !events.contains("its own server\" ("), "{events}");
    // The teacher's view has it all.
    let full = get_with_token(&state, "/api/scenario", TOKEN).await.text();
    assert!(full.contains("SECRET-EXPLANATION-ONE") && full.contains("Secret hint"));

    // Students vote without the token; one vote per browser (changeable).
    assert_eq!(post(&state, "/api/quiz/vote", vote(0, 0, "student-0001")).await.status, StatusCode::OK);
    let changed = post(&state, "/api/quiz/vote", vote(0, 1, "student-0001")).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(changed.json()["quiz"]["mine"], 1);
    assert!(changed.json()["quiz"].get("counts").is_none(), "a voter sees no tally before the reveal");
    assert_eq!(post(&state, "/api/quiz/vote", vote(0, 2, "student-0002")).await.status, StatusCode::OK);
    assert_eq!(post(&state, "/api/quiz/vote", vote(0, 3, "student-0003")).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(post(&state, "/api/quiz/vote", vote(0, 0, "x")).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(post(&state, "/api/quiz/vote", vote(2, 0, "student-0003")).await.status, StatusCode::CONFLICT);
    // A vote is not a way around the guard's other checks.
    let foreign = Request::post("/api/quiz/vote").header("content-type", "text/plain").body(Body::from(vote(0, 0, "student-0004").to_string())).unwrap();
    assert_eq!(call(&state, foreign).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let teacher = get_with_token(&state, "/api/quiz", TOKEN).await.json();
    assert_eq!(teacher["teacher"], true);
    assert_eq!(teacher["quiz"]["counts"], json!([0, 1, 1]));
    assert_eq!(teacher["quiz"]["answer"], 1);
    assert_eq!(teacher["quiz"]["votes"], 2);

    // Held: the send step after the quiz has not started, and no hop moves.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let world = state.session().world.clone();
    assert!(world.conductor.held());
    assert!(!world.trace.since(0).iter().any(|e| matches!(e.kind, Kind::Step { index: 1, .. })), "the story went on during the quiz");

    // Only the teacher reveals.
    assert_eq!(post(&state, "/api/quiz/reveal", json!({"quiz": 0})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(post_with_token(&state, "/api/quiz/reveal", TOKEN, json!({"quiz": 2})).await.status, StatusCode::CONFLICT);
    assert_eq!(post_with_token(&state, "/api/quiz/reveal", TOKEN, json!({"quiz": 0})).await.status, StatusCode::OK);
    let revealed = until_event(&state, asked.seq, |e| matches!(e.kind, Kind::QuizRevealed { .. })).await;
    assert_eq!(
        revealed.kind,
        Kind::QuizRevealed { quiz: 0, answer: 1, explanation: "Submission: SECRET-EXPLANATION-ONE.".into(), counts: vec![0, 1, 1], votes: 2 }
    );
    assert!(revealed.summary.contains("1 of 2 votes"), "{}", revealed.summary);
    assert_eq!(post(&state, "/api/quiz/vote", vote(0, 1, "student-0005")).await.status, StatusCode::CONFLICT);
    let after = get(&state, "/api/quiz").await.json();
    assert_eq!((after["quiz"]["revealed"].clone(), after["quiz"]["answer"].clone()), (json!(true), json!(1)), "after the reveal everyone sees it");

    // The story goes on: the message is delivered, then the second quiz.
    let delivered = until_event(&state, revealed.seq, |e| matches!(e.kind, Kind::Delivered { .. })).await;
    let second = until_event(&state, delivered.seq, |e| matches!(e.kind, Kind::QuizAsked { .. })).await;
    assert!(matches!(second.kind, Kind::QuizAsked { quiz: 2, .. }));
    assert!(second.summary.starts_with("quiz 2:"), "{}", second.summary);
    assert_eq!(post(&state, "/api/quiz/vote", vote(2, 0, "student-0001")).await.status, StatusCode::OK);
    assert_eq!(post_with_token(&state, "/api/quiz/reveal", TOKEN, json!({})).await.status, StatusCode::OK);
    assert_eq!(post_with_token(&state, "/api/quiz/reveal", TOKEN, json!({})).await.status, StatusCode::CONFLICT);
    until_finished(&state).await;
    let events = state.session().world.trace.since(0);
    let revealed: Vec<(usize, Vec<u64>)> =
        events.iter().filter_map(|e| if let Kind::QuizRevealed { quiz, counts, .. } = &e.kind { Some((*quiz, counts.clone())) } else { None }).collect();
    assert_eq!(revealed, vec![(0, vec![0, 1, 1]), (2, vec![1, 0])]);
    state.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_step_mode_nothing_steps_past_an_open_quiz() {
    let state = start_lesson(Pace::Step, Some(TOKEN)).await;
    until_event(&state, 0, |e| matches!(e.kind, Kind::QuizAsked { .. })).await;
    let stepped = post_with_token(&state, "/api/control", TOKEN, json!({"action": "step"})).await.json();
    assert_eq!(stepped["stepped"], false, "nothing waits for a step while the class answers");
    assert_eq!(post_with_token(&state, "/api/quiz/reveal", TOKEN, json!({})).await.status, StatusCode::OK);
    let revealed = until_event(&state, 0, |e| matches!(e.kind, Kind::QuizRevealed { .. })).await;
    // Now the send's first hop waits for a step, and a step moves it.
    let mut moved = false;
    for _ in 0..20 {
        if post_with_token(&state, "/api/control", TOKEN, json!({"action": "step"})).await.json()["stepped"] == true {
            moved = true;
            break;
        }
    }
    assert!(moved, "after the reveal the story steps on");
    assert!(state.session().world.trace.since(revealed.seq + 1).iter().any(|e| matches!(e.kind, Kind::Step { index: 1, .. })));
    state.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_page_answers_and_reveals() {
    let state = start_lesson(Pace::Live { speed: 50.0 }, None).await;
    until_event(&state, 0, |e| matches!(e.kind, Kind::QuizAsked { .. })).await;
    let view = get(&state, "/api/quiz").await.json();
    assert_eq!((view["teacher"].clone(), view["quiz"]["answer"].clone()), (json!(true), json!(1)), "whoever runs the page is the teacher");
    assert!(get(&state, "/api/scenario").await.text().contains("SECRET-EXPLANATION-ONE"), "nothing to hide without a teacher");
    assert_eq!(post(&state, "/api/quiz/vote", vote(0, 1, "the-only-page")).await.status, StatusCode::OK);
    assert_eq!(post(&state, "/api/quiz/reveal", json!({})).await.status, StatusCode::OK);
    let revealed = until_event(&state, 0, |e| matches!(e.kind, Kind::QuizRevealed { .. })).await;
    assert!(matches!(&revealed.kind, Kind::QuizRevealed { votes: 1, answer: 1, .. }));
    state.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_fast_pace_the_answer_is_told_at_once() {
    let state = start_lesson(Pace::Fast, Some(TOKEN)).await;
    until_finished(&state).await;
    let events = state.session().world.trace.since(0);
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| match e.kind {
            Kind::QuizAsked { .. } => Some("asked"),
            Kind::QuizRevealed { votes: 0, .. } => Some("revealed"),
            Kind::Delivered { .. } => Some("delivered"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["asked", "revealed", "delivered", "asked", "revealed"]);
    state.shutdown().await;
}

#[test]
fn a_bad_quiz_is_reported_where_it_is() {
    let text = LESSON
        .replace(r#""choices": ["yes", "no"], "answer": "yes""#, r#""choices": ["yes"], "answer": "maybe""#)
        .replace(r#""choices": ["to Bob", "to its own server", "to DNS"]"#, r#""choices": ["to Bob", "to Bob", "to DNS", "", "e", "f"]"#)
        .replace(r#""explanation": "SECRET-EXPLANATION-TWO.""#, r#""explanation": " ""#);
    let err = Scenario::parse("quiz.json", &text).expect_err("the quizzes are wrong");
    let problems: Vec<String> = err.problems.iter().map(|p| format!("{}:{}: {}: {}", p.line, p.column, p.path, p.message)).collect();
    let has = |path: &str, words: &str| {
        assert!(
            problems.iter().any(|p| p.contains(&format!(": {path}: ")) && p.contains(words)),
            "no problem at {path} with {words:?}:\n{}",
            problems.join("\n")
        )
    };
    has("steps[0].quiz.choices", "found 6 choices, expected 2 to 5");
    has("steps[0].quiz.choices[1]", "listed twice");
    has("steps[0].quiz.choices[3]", "empty choice");
    has("steps[0].quiz.answer", "expected one of the choices");
    has("steps[2].quiz.choices", "found 1 choices, expected 2 to 5");
    has("steps[2].quiz.answer", "found \"maybe\", expected one of the choices: \"yes\"");
    has("steps[2].quiz.explanation", "found no explanation");
    // Each problem points at its line in the file.
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let answer_two = err.problems.iter().find(|p| p.path.to_string() == "steps[2].quiz.answer").unwrap();
    assert_eq!(answer_two.line, line_of(r#""answer": "maybe""#));
}
