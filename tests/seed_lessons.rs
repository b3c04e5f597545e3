//! The seed story as lessons (issue 13): the two classic step-by-step
//! explanations of email and the "device delivers to the MX itself"
//! contrast, each run at `--fast` (quizzes are then revealed at once) and
//! checked for the key events a class should see, in order.

use crate::common;

use std::sync::Arc;

use mailflow::conductor::Pace;
use mailflow::scenario::Scenario;
use mailflow::trace::{Direction, Event, Kind, QueueState};

fn lesson_text(name: &str) -> String {
    std::fs::read_to_string(common::repo().join("scenarios").join(format!("{name}.json"))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every step explains itself, the lesson asks at least one quiz, and the
/// index knows its level, length and what it teaches.
fn check_shape(name: &str, text: &str) {
    let lesson = Scenario::parse(name, text).unwrap_or_else(|e| panic!("{e}"));
    assert!(!lesson.description.is_empty() && !lesson.teacher_notes.is_empty(), "{name}");
    assert!(lesson.level.is_some() && lesson.minutes.is_some() && !lesson.teaches.is_empty(), "{name}: index metadata");
    assert!(lesson.steps.iter().all(|s| s.explain.as_deref().is_some_and(|e| !e.trim().is_empty())), "{name}: every step has an explain text");
    assert!(lesson.steps.iter().any(|s| s.quiz.is_some()), "{name}: at least one quiz");
}

async fn run(name: &str) -> (Arc<mailflow::world::World>, Vec<Arc<Event>>) {
    let text = lesson_text(name);
    check_shape(name, &text);
    let (world, _net) = common::start_world_paced(&text, Pace::Fast).await;
    world.run_to_end().await;
    let events = world.trace.since(0);
    (world, events)
}

fn story(events: &[Arc<Event>]) -> String {
    events.iter().map(|e| format!("{} {} {}→{} {}", e.seq, e.sim_ms, e.from, e.to, e.summary)).collect::<Vec<_>>().join("\n")
}

/// The sequence number of the first event that `matches`, or a failure
/// with the whole story.
fn first(events: &[Arc<Event>], what: &str, matches: impl Fn(&Event) -> bool) -> u64 {
    events.iter().find(|e| matches(e)).map(|e| e.seq).unwrap_or_else(|| panic!("never: {what}\n{}", story(events)))
}

fn sent_line(e: &Event, from: &str, text: &str) -> bool {
    e.from == from && matches!(&e.kind, Kind::Line { direction: Direction::ToServer, line } if line.contains(text))
}

fn quiz_revealed(e: &Event, n: usize) -> bool {
    matches!(e.kind, Kind::QuizRevealed { quiz, .. } if quiz == n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mx_queue_mailbox_new_mail() {
    let (world, events) = run("seed-client-to-mailbox").await;
    let quiz_steps: Vec<usize> = events.iter().filter_map(|e| if let Kind::QuizAsked { quiz, .. } = e.kind { Some(quiz) } else { None }).collect();
    assert_eq!(quiz_steps, [1, 3, 5]);
    // The class answers "where first?" before the laptop says a word...
    let q1 = first(&events, "quiz 1 revealed", |e| quiz_revealed(e, 1));
    let submit = first(&events, "alice-laptop submits", |e| sent_line(e, "alice-laptop", "MAIL FROM"));
    assert!(q1 < submit);
    // ...sees the MX question and answer, is asked about preference...
    let mx = first(&events, "the MX question", |e| {
        e.from == "smtp.school.test" && matches!(&e.kind, Kind::DnsQuery { name, rtype, .. } if name.starts_with("example.org") && rtype == "MX")
    });
    let mx_answer = first(&events, "the MX answer", |e| matches!(&e.kind, Kind::DnsAnswer { rtype, records, .. } if rtype == "MX" && records.len() == 2));
    let q2 = first(&events, "quiz 2 revealed", |e| quiz_revealed(e, 3));
    assert!(mx < mx_answer && mx_answer < q2 && q2 < submit, "lookup, then the preference quiz, then the message moves");
    // ...then the message is queued, relayed to mx1 (preference 10) and stored...
    let queued =
        first(&events, "queued at smtp.school.test", |e| e.from == "smtp.school.test" && matches!(e.kind, Kind::Queue { state: QueueState::Queued, .. }));
    let relayed = first(&events, "relayed", |e| e.from == "smtp.school.test" && matches!(e.kind, Kind::Queue { state: QueueState::Relayed, .. }));
    let relay_line = first(&events, "the relay's MAIL FROM", |e| sent_line(e, "smtp.school.test", "MAIL FROM"));
    let stored =
        first(&events, "Bob's mailbox", |e| e.from == "mx1.example.org" && matches!(&e.kind, Kind::Delivered { mailbox, .. } if mailbox == "bob@example.org"));
    assert!(submit < queued && queued < relay_line && relay_line < relayed && relay_line < stored, "{}", story(&events));
    assert_eq!(events.iter().find(|e| e.seq == relay_line).unwrap().to, "mx1.example.org");
    // ...and only when the phone asks does it get the message.
    let q3 = first(&events, "quiz 3 revealed", |e| quiz_revealed(e, 5));
    let fetch = first(&events, "the phone fetches", |e| sent_line(e, "bob-phone", "FETCH"));
    assert!(stored < q3 && q3 < fetch);
    assert_eq!(world.net.devices.messages("bob-phone").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_route_transfer_retrieve() {
    let (world, events) = run("seed-send-route-retrieve").await;
    assert_eq!(events.iter().filter(|e| matches!(e.kind, Kind::QuizRevealed { .. })).count(), 3);
    // 1. send: the laptop logs in and submits to its outgoing server.
    let auth = first(&events, "AUTH on submission", |e| sent_line(e, "carol-laptop", "AUTH"));
    // 2. route: the outgoing server asks DNS for the MX of example.net.
    let route = first(&events, "MX of example.net", |e| {
        e.from == "smtp.college.test" && matches!(&e.kind, Kind::DnsQuery { name, rtype, .. } if name.starts_with("example.net") && rtype == "MX")
    });
    // 3. transfer: server to server, no login, into Dan's mailbox.
    let transfer = first(&events, "the transfer", |e| sent_line(e, "smtp.college.test", "RCPT TO:<dan@example.net>"));
    assert!(!events.iter().any(|e| sent_line(e, "smtp.college.test", "AUTH")), "servers do not log in to each other");
    let stored = first(&events, "Dan's mailbox", |e| matches!(&e.kind, Kind::Delivered { mailbox, .. } if mailbox == "dan@example.net"));
    assert!(auth < route && route < transfer && transfer < stored, "{}", story(&events));
    // 4. retrieve: IMAP keeps it, the POP3 quiz, then POP3 takes it away.
    let imap = first(&events, "the phone's IMAP fetch", |e| sent_line(e, "dan-phone", "FETCH"));
    let q3 = first(&events, "the POP3 quiz", |e| matches!(&e.kind, Kind::QuizAsked { question, .. } if question.contains("POP3")));
    let dele = first(&events, "POP3 DELE", |e| sent_line(e, "dan-laptop", "DELE 1"));
    let removed = first(&events, "removed at QUIT", |e| matches!(&e.kind, Kind::Removed { mailbox, count: 1, .. } if mailbox == "dan@example.net"));
    assert!(stored < imap && imap < q3 && q3 < dele && dele < removed, "{}", story(&events));
    assert!(world.hosts["mail.example.net"].store.inbox("dan@example.net").is_empty(), "POP3 left nothing on the server");
    assert_eq!(world.net.devices.messages("dan-phone").len(), 1);
    assert_eq!(world.net.devices.messages("dan-laptop").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_delivers_to_the_mx_itself() {
    let (world, events) = run("direct-to-mx").await;
    // The gadget looks up the MX itself and speaks to port 25 without a login...
    let lookup = first(&events, "the gadget's MX question", |e| {
        e.from == "alice-gadget" && matches!(&e.kind, Kind::DnsQuery { name, rtype, .. } if name.starts_with("example.org") && rtype == "MX")
    });
    let mail_from = first(&events, "the gadget's MAIL FROM", |e| sent_line(e, "alice-gadget", "MAIL FROM:<alice@school.test>"));
    assert_eq!(events.iter().find(|e| e.seq == mail_from).unwrap().to, "mx1.example.org");
    assert!(lookup < mail_from);
    assert!(!events.iter().any(|e| sent_line(e, "alice-gadget", "AUTH")));
    // ...and mx1 refuses it: SPF fails for the gadget's address, nothing is signed, DMARC says reject.
    let spf = first(&events, "SPF fail", |e| e.from == "mx1.example.org" && e.summary.starts_with("SPF:") && e.summary.ends_with("fail"));
    let refusal = first(&events, "550 5.7.1 to the gadget", |e| {
        e.to == "alice-gadget"
            && matches!(&e.kind, Kind::Line { direction: Direction::ToClient, line } if line.starts_with("550 5.7.1") && line.contains("DMARC"))
    });
    let gave_up = first(&events, "the gadget reports the failure", |e| e.from == "alice-gadget" && matches!(e.kind, Kind::Failure { .. }));
    assert!(mail_from < spf && spf < refusal && refusal < gave_up, "{}", story(&events));
    // The laptop's message, through the school's server, is signed and accepted.
    let accepted = first(&events, "the laptop's message delivered", |e| matches!(&e.kind, Kind::Delivered { mailbox, .. } if mailbox == "bob@example.org"));
    assert!(accepted > gave_up);
    // With mx1 down, the gadget fails once and never tries again; the school server queues and delivers later.
    let refused_at_3m = first(&events, "the gadget cannot connect", |e| e.from == "alice-gadget" && matches!(e.kind, Kind::ConnectFailed { .. }));
    assert_eq!(events.iter().find(|e| e.seq == refused_at_3m).unwrap().sim_ms, 180_000);
    let deferred =
        first(&events, "the school server defers", |e| e.from == "smtp.school.test" && matches!(e.kind, Kind::Queue { state: QueueState::Deferred, .. }));
    let gadget_after: Vec<&Arc<Event>> =
        events.iter().filter(|e| e.seq > refused_at_3m && e.from == "alice-gadget" && !matches!(e.kind, Kind::Failure { .. })).collect();
    assert!(gadget_after.is_empty(), "the gadget has no queue, yet it tried again: {gadget_after:?}");
    let later = events
        .iter()
        .filter(|e| e.seq > deferred && matches!(&e.kind, Kind::Delivered { mailbox, .. } if mailbox == "bob@example.org"))
        .map(|e| e.sim_ms)
        .collect::<Vec<_>>();
    assert_eq!(later.len(), 1, "{}", story(&events));
    assert!(later[0] >= 360_000, "delivered after mx1 came back up at 6m: {later:?}");
    // Bob has the two messages that went through Alice's server, and only those.
    let mut subjects: Vec<String> = world.hosts["mx1.example.org"]
        .store
        .inbox("bob@example.org")
        .iter()
        .map(|m| {
            let raw = String::from_utf8_lossy(&m.raw).into_owned();
            raw.lines().find_map(|l| l.strip_prefix("Subject: ").map(str::to_string)).unwrap_or_default()
        })
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["Are you there? (via school)", "The proper way"]);
}

#[test]
fn every_scenario_is_in_the_lesson_index_and_the_demo_comes_first() {
    let mut firsts = Vec::new();
    for entry in std::fs::read_dir(common::repo().join("scenarios")).expect("scenarios/") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let lesson = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            lesson.level.is_some() && lesson.minutes.is_some_and(|m| (5..=60).contains(&m)) && !lesson.teaches.is_empty(),
            "{name}: level, minutes, teaches"
        );
        if lesson.level == Some(mailflow::scenario::Level::First) {
            firsts.push(name);
        }
    }
    assert_eq!(firsts, ["alice-writes-to-bob.json"], "the built-in demo is the one first lesson");
}
