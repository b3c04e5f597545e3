//! The six sender-authentication lessons (`scenarios/auth-*.json`, issue
//! 11) run to the end, and the events a teacher pauses at are there: each
//! check's result at the server that ran it, what was stored where, and
//! what was refused.

use crate::smtp_common::*;

use mailflow::trace::Kind;
use mailflow::world::World;

/// The sentences `host` told about its own work (checks, decisions).
fn notes(world: &World, host: &str) -> Vec<String> {
    events(world).iter().filter(|e| e.kind == Kind::Note && e.from == host).map(|e| e.summary.clone()).collect()
}

fn told(world: &World, host: &str, expected: &str) -> bool {
    notes(world, host).iter().any(|n| n.contains(expected))
}

/// The newest `Authentication-Results` of a message (the top one).
fn results(raw: &[u8]) -> String {
    let headers = headers(raw);
    let top = headers.split("Authentication-Results: ").nth(1).unwrap_or_else(|| panic!("no Authentication-Results in:\n{headers}"));
    let mut lines = top.split("\r\n");
    let first = lines.next().unwrap_or("");
    std::iter::once(first).chain(lines.take_while(|l| l.starts_with([' ', '\t']))).collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_mail_passes_all_three() {
    let world = run(scenario("auth-honest-mail")).await;
    assert!(told(&world, "smtp.school.test", "signs the message with school.test's DKIM key"), "{}", story(&world));
    for expected in ["SPF: ", "DKIM: the signature by school.test", "DMARC: From: domain school.test; SPF aligned yes, DKIM aligned yes → pass"] {
        assert!(told(&world, "mx1.example.org", expected), "mx1 tells {expected:?}:\n{}", story(&world));
    }
    assert!(told(&world, "mx1.example.org", "→ pass"), "{}", story(&world));
    let inbox = inbox(&world, "mx1.example.org", "bob@example.org");
    assert_eq!(inbox.len(), 1, "{}", story(&world));
    let results = results(&inbox[0].raw);
    for word in ["spf=pass", "dkim=pass", "dmarc=pass"] {
        assert!(results.contains(word), "{word}: {results}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_principal_gets_through_an_unchecking_server_and_is_refused_by_a_checking_one() {
    let world = run(scenario("auth-spoofed-principal")).await;
    // Before: mx1 checks nothing, the forgery is in Bob's inbox as it came.
    let bob = inbox(&world, "mx1.example.org", "bob@example.org");
    assert_eq!(bob.len(), 1, "{}", story(&world));
    let headers = headers(&bob[0].raw);
    assert!(headers.contains("From: \"Principal\" <principal@school.test>") || headers.contains("From: Principal <principal@school.test>"), "{headers}");
    assert!(!headers.contains("Authentication-Results"), "{headers}");
    assert!(!told(&world, "mx1.example.org", "SPF: "), "mx1 checks nothing");
    // The robot asked DNS for the MX itself and delivered to port 25.
    let asked: Vec<_> =
        events(&world).into_iter().filter(|e| e.from == "spam-robot" && matches!(&e.kind, Kind::DnsQuery { rtype, .. } if rtype == "MX")).collect();
    assert_eq!(asked.len(), 2, "one MX question per forgery:\n{}", story(&world));
    // After: SPF fail, no DKIM, DMARC reject → 550 5.7.1, nothing stored.
    assert!(told(&world, "mx.example.net", "is not among the addresses that 'mx' names for school.test"), "{}", story(&world));
    assert!(told(&world, "mx.example.net", "DKIM: the message carries no DKIM signature → none"), "{}", story(&world));
    assert!(told(&world, "mx.example.net", "SPF aligned no, DKIM aligned no; policy reject → reject"), "{}", story(&world));
    assert_eq!(server_lines(&world, "mx.example.net", "550 5.7.1").len(), 1, "{}", story(&world));
    assert!(inbox(&world, "mx.example.net", "carol@example.net").is_empty());
    let refused = events(&world).into_iter().any(|e| e.from == "spam-robot" && matches!(&e.kind, Kind::Failure { reason } if reason.contains("550 5.7.1")));
    assert!(refused, "the robot hears the refusal:\n{}", story(&world));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_changed_in_transit_fails_dkim() {
    let world = run(scenario("auth-tampered-in-transit")).await;
    assert!(told(&world, "mx2.example.org", "changes the message's body"), "{}", story(&world));
    assert!(told(&world, "mx1.example.org", "DKIM: the body hash in the signature does not match the body that arrived → fail"), "{}", story(&world));
    assert!(told(&world, "mx1.example.org", "policy quarantine → quarantine"), "{}", story(&world));
    let store = &world.hosts["mx1.example.org"].store;
    assert!(store.inbox("bob@example.org").is_empty(), "{}", story(&world));
    let junk = store.snapshot("bob@example.org", "Junk").expect("a Junk folder").messages;
    assert_eq!(junk.len(), 1);
    let results = results(&junk[0].raw);
    assert!(results.contains("dkim=fail") && results.contains("dmarc=fail"), "{results}");
    assert!(String::from_utf8_lossy(body(&junk[0].raw)).contains("Scanned for viruses by the gateway"), "the footer arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_fails_spf_at_the_last_hop_but_dkim_carries_dmarc() {
    let world = run(scenario("auth-forwarding")).await;
    assert!(told(&world, "mx1.example.org", "forwards bob@example.org's mail to bob@home.test, keeping the envelope sender <alice@school.test>"));
    assert!(told(&world, "mx1.example.org", "takes the message (SPF pass, DKIM pass, DMARC pass)"), "{}", story(&world));
    assert!(told(&world, "mx.home.test", "SPF: "), "{}", story(&world));
    assert!(told(&world, "mx.home.test", "DMARC: From: domain school.test; SPF aligned no, DKIM aligned yes → pass"), "{}", story(&world));
    assert!(inbox(&world, "mx1.example.org", "bob@example.org").is_empty(), "forwarded, not kept");
    let home = inbox(&world, "mx.home.test", "bob@home.test");
    assert_eq!(home.len(), 1, "{}", story(&world));
    let results = results(&home[0].raw);
    for word in ["mx.home.test", "spf=fail", "dkim=pass", "dmarc=pass"] {
        assert!(results.contains(word), "{word}: {results}");
    }
    assert_eq!(count_header(&home[0].raw, "Authentication-Results"), 2, "one verdict per checking server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_dmarc_the_spoof_is_delivered_and_with_p_reject_it_is_refused() {
    let world = run(scenario("auth-no-dmarc")).await;
    let bob = inbox(&world, "mx1.example.org", "bob@example.org");
    assert_eq!(bob.len(), 1, "only the first forgery is stored:\n{}", story(&world));
    let results = results(&bob[0].raw);
    for word in ["spf=fail", "dkim=none", "dmarc=none"] {
        assert!(results.contains(word), "{word}: {results}");
    }
    assert!(headers(&bob[0].raw).contains("Subject: Staff party\r\n"));
    assert_eq!(server_lines(&world, "mx1.example.org", "550 5.7.1").len(), 1, "the second forgery is refused:\n{}", story(&world));
    assert!(told(&world, "mx1.example.org", "refuses the message: school.test's DMARC policy says reject"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_look_alike_domain_passes_every_check() {
    let world = run(scenario("auth-look-alike")).await;
    assert!(told(&world, "smtp.schoo1.test", "signs the message with schoo1.test's DKIM key"), "{}", story(&world));
    assert!(told(&world, "mx1.example.org", "DMARC: From: domain schoo1.test; SPF aligned yes, DKIM aligned yes → pass"), "{}", story(&world));
    let bob = inbox(&world, "mx1.example.org", "bob@example.org");
    assert_eq!(bob.len(), 1, "{}", story(&world));
    assert!(headers(&bob[0].raw).contains("principal@schoo1.test"));
    let results = results(&bob[0].raw);
    for word in ["spf=pass", "dkim=pass", "dmarc=pass", "header.from=schoo1.test"] {
        assert!(results.contains(word), "{word}: {results}");
    }
}

/// The banner's forgery command, run verbatim against `mailflow serve`:
/// swaks hears 550 5.7.1 at the end of DATA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_banners_spoof_command_is_refused() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let sh = tool("sh");
    tool("swaks");
    let subnet = random_subnet();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mailflow"))
        .args(["serve", "scenarios/auth-honest-mail.json", "--fast", "--quiet", "--no-web", "--subnet", &subnet.to_string()])
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mailflow serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    let command = loop {
        match lines.recv_timeout(WAIT_TIMEOUT) {
            Ok(line) if line.trim_start().starts_with("swaks ") && line.contains("Subject: Forged") => break line.trim().to_string(),
            Ok(line) => banner.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no spoof command in the banner:\n{}", banner.join("\n"));
            }
        }
    };
    assert!(command.contains("--from principal@school.test --to bob@example.org") && command.contains("--port 10025"), "{command}");
    let out = run_tool(&sh, &["-c", &command], None).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.stdout.contains("<** 550 5.7.1 ") && out.stdout.contains("DMARC"), "{command}\n{}{}", out.stdout, out.stderr);
}

/// Every delivered message carries its verdict, and mail programs see it:
/// Python's imaplib and poplib read `Authentication-Results` from Bob's
/// mailbox after the honest lesson.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_results_are_visible_over_imap_and_pop3() {
    use crate::imap_common::python;
    use mailflow::scenario::Service;
    let world = run(scenario("auth-honest-mail")).await;
    // Logins wait for TLS (the default), so the mail programs trust the
    // world's CA and say STARTTLS / STLS first, as real ones do.
    let ca = format!("CA = {:?}\n", world.tls.ca.pem());
    let imap = ca.clone()
        + r#"
import imaplib, ssl, sys
imap = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
imap.starttls(ssl.create_default_context(cadata=CA))
imap.login("bob@example.org", "builder")
imap.select("INBOX", readonly=True)
typ, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (Authentication-Results)])")
print(data[0][1].decode())
imap.logout()
"#;
    let out = python(&imap, addr(&world, "mx1.example.org", Service::Imap)).await;
    assert!(out.contains("Authentication-Results: mx1.example.org"), "{out}");
    for word in ["spf=pass", "dkim=pass", "dmarc=pass"] {
        assert!(out.contains(word), "IMAP shows {word}:\n{out}");
    }
    let pop3 = ca
        + r#"
import poplib, ssl, sys
pop = poplib.POP3(sys.argv[1], int(sys.argv[2]))
pop.stls(ssl.create_default_context(cadata=CA))
pop.user("bob@example.org")
pop.pass_("builder")
resp, lines, octets = pop.top(1, 0)
print("\n".join(l.decode() for l in lines))
pop.quit()
"#;
    let out = python(&pop3, addr(&world, "mx1.example.org", Service::Pop3)).await;
    assert!(out.contains("Authentication-Results: mx1.example.org"), "{out}");
    for word in ["spf=pass", "dkim=pass", "dmarc=pass", "Received-SPF: pass"] {
        assert!(out.contains(word), "POP3 shows {word}:\n{out}");
    }
    world.shutdown().await;
}

/// The lessons' scenario fields are checked like the rest: forwarding that
/// goes round in a circle, a forged sender that is no address, a device
/// that can neither submit nor deliver directly.
#[test]
fn mistakes_in_the_lesson_fields_are_reported_with_their_place() {
    let text = r#"{
  "title": "Mistakes",
  "domains": { "a.test": {}, "b.test": {} },
  "hosts": {
    "mx.a.test": { "services": ["smtp"], "domains": ["a.test"] },
    "mx.b.test": { "services": ["smtp"], "domains": ["b.test"] }
  },
  "users": {
    "ann@a.test": { "password": "x", "forward_to": "ann@b.test" },
    "ann@b.test": { "password": "y", "forward_to": "ann@a.test" }
  },
  "clients": { "robot": { "user": "ann@a.test" } },
  "steps": [ { "at": "0s", "send": { "client": "robot", "from": "the principal", "to": ["ann@b.test"] } } ]
}"#;
    let problems = match mailflow::scenario::Scenario::parse("bad.json", text) {
        Ok(_) => panic!("the scenario is broken"),
        Err(err) => err.problems,
    };
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let circle = r#"forwarding goes round in a circle (ann@a.test → ann@b.test → ann@a.test)"#;
    assert!(shown.iter().any(|p| p.starts_with("bad.json:9:") && p.contains(r#"users["ann@a.test"].forward_to"#) && p.contains(circle)), "{shown:#?}");
    assert!(shown.iter().any(|p| p.starts_with("bad.json:10:") && p.contains("goes round in a circle")), "{shown:#?}");
    assert!(shown.iter().any(|p| p.contains("steps[0].send.from") && p.contains(r#"found "the principal", expected a mail address"#)), "{shown:#?}");
    assert!(shown.iter().any(|p| p.contains("steps[0].send.client") && p.contains("(and is not `direct`)")), "{shown:#?}");
    assert_eq!(shown.len(), 4, "{shown:#?}");
}
