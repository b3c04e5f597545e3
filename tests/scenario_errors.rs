//! Scenario files a teacher gets wrong, and what `mailflow check` says:
//! every problem with line, column, field path and what was expected.

use mailflow::scenario::{Problem, Scenario};

/// One bad scenario and the one problem it must report.
struct Case {
    name: &'static str,
    text: &'static str,
    line: usize,
    column: usize,
    path: &'static str,
    message: &'static str,
}

/// serde's own errors (syntax, unknown fields, types) point at the end of
/// the offending token; the checks after parsing point at the start of the
/// value that is wrong.
const CASES: &[Case] = &[
    Case {
        name: "JSON syntax error: a missing comma",
        text: r#"{
  "title": "Syntax"
  "domains": {}
}"#,
        line: 3,
        column: 3,
        path: "(top level)",
        message: "expected `,` or `}`",
    },
    Case {
        name: "unknown top-level field",
        text: r#"{
  "title": "Unknown top-level field",
  "colour": "red",
  "domains": {},
  "hosts": {}
}"#,
        line: 3,
        column: 10,
        path: "colour",
        message: "unknown field `colour`, expected one of `title`",
    },
    Case {
        name: "unknown field inside a host",
        text: r#"{
  "title": "Unknown host field",
  "domains": { "example.org": {} },
  "hosts": {
    "mx1.example.org": { "services": ["smtp"], "port": 25 }
  }
}"#,
        line: 5,
        column: 53,
        path: r#"hosts["mx1.example.org"].port"#,
        message: "unknown field `port`, expected one of `services`, `domains`",
    },
    Case {
        name: "a number given as a string",
        text: r#"{
  "title": "Preference as a string",
  "domains": {
    "example.org": { "records": [ { "type": "MX", "preference": "10", "exchange": "mx1.example.org" } ] }
  },
  "hosts": { "mx1.example.org": { "services": ["smtp"] } }
}"#,
        line: 4,
        column: 68,
        path: r#"domains["example.org"].records[0].preference"#,
        message: r#"invalid type: string "10", expected u16"#,
    },
    Case {
        name: "services not a list",
        text: r#"{
  "title": "Services not a list",
  "domains": { "example.org": {} },
  "hosts": {
    "mx1.example.org": { "services": "smtp" }
  }
}"#,
        line: 5,
        column: 43,
        path: r#"hosts["mx1.example.org"].services"#,
        message: r#"invalid type: string "smtp", expected a sequence"#,
    },
    Case {
        name: "a typo in a service name lists the expected ones",
        text: r#"{
  "title": "Typo in a service",
  "domains": { "example.org": {} },
  "hosts": {
    "mx1.example.org": { "services": ["smpt"] }
  }
}"#,
        line: 5,
        column: 44,
        path: r#"hosts["mx1.example.org"].services[0]"#,
        message: "unknown variant `smpt`, expected one of `smtp`, `submission`, `imap`, `pop3`",
    },
    Case {
        name: "a duration in words",
        text: r#"{
  "title": "Bad duration",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp"] } },
  "steps": [
    { "at": "20 secs", "note": "too wordy" }
  ]
}"#,
        line: 6,
        column: 21,
        path: "steps[0].at",
        message: r#"found "20 secs", expected a duration like "20s""#,
    },
    Case {
        name: "missing title (reported where the object ends)",
        text: r#"{
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp"] } }
}"#,
        line: 4,
        column: 1,
        path: "(top level)",
        message: "missing field `title`",
    },
    Case {
        name: "MX record without exchange",
        text: r#"{
  "title": "MX without exchange",
  "domains": {
    "example.org": { "records": [
      { "type": "MX", "preference": 10 }
    ] }
  },
  "hosts": { "mx1.example.org": { "services": ["smtp"] } }
}"#,
        line: 5,
        column: 7,
        path: r#"domains["example.org"].records[0]"#,
        message: "an MX record needs `exchange`",
    },
    Case {
        name: "MX exchange that is no host",
        text: r#"{
  "title": "MX to nowhere",
  "domains": {
    "example.org": { "records": [
      { "type": "MX", "preference": 10, "exchange": "mx9.example.org" }
    ] }
  },
  "hosts": { "mx1.example.org": { "services": ["smtp"] } }
}"#,
        line: 5,
        column: 53,
        path: r#"domains["example.org"].records[0].exchange"#,
        message: r#"found "mx9.example.org", expected one of the hosts"#,
    },
    Case {
        name: "A record pointing off this machine",
        text: r#"{
  "title": "A record off this machine",
  "domains": {
    "example.org": { "records": [
      { "type": "A", "name": "www", "address": "93.184.216.34" }
    ] }
  },
  "hosts": { "mx1.example.org": { "services": ["smtp"] } }
}"#,
        line: 5,
        column: 48,
        path: r#"domains["example.org"].records[0].address"#,
        message: "found 93.184.216.34, expected a loopback address (127.x.x.x)",
    },
    Case {
        name: "client of a user who does not exist",
        text: r#"{
  "title": "Client of nobody",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp", "submission"], "domains": ["example.org"] } },
  "users": { "bob@example.org": { "password": "builder" } },
  "clients": {
    "bob-phone": { "user": "bob@example.com" }
  }
}"#,
        line: 7,
        column: 28,
        path: r#"clients["bob-phone"].user"#,
        message: r#"found "bob@example.com", expected one of the users: "bob@example.org""#,
    },
    Case {
        name: "client submitting to a host without submission",
        text: r#"{
  "title": "Submission to a relay-only host",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp"], "domains": ["example.org"] } },
  "users": { "bob@example.org": { "password": "builder" } },
  "clients": {
    "bob-laptop": { "user": "bob@example.org", "submit_to": "mx1.example.org" }
  }
}"#,
        line: 7,
        column: 61,
        path: r#"clients["bob-laptop"].submit_to"#,
        message: r#"host "mx1.example.org" does not run "submission""#,
    },
    Case {
        name: "step with two actions",
        text: r#"{
  "title": "Two actions",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp"] } },
  "steps": [
    { "at": "0s", "note": "hello", "lookup": { "from": "mx1.example.org", "name": "example.org" } }
  ]
}"#,
        line: 6,
        column: 5,
        path: "steps[0]",
        message: "found lookup and note, expected exactly one of: send, fetch, lookup, dns, down, up, note, quiz, attack, revoke",
    },
    Case {
        name: "step with no action",
        text: r#"{
  "title": "No action",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp"] } },
  "steps": [
    { "at": "0s" }
  ]
}"#,
        line: 6,
        column: 5,
        path: "steps[0]",
        message: "found no action, expected exactly one of: send, fetch, lookup, dns, down, up, note, quiz, attack, revoke",
    },
    Case {
        name: "lookup from a node that does not exist",
        text: r#"{
  "title": "Lookup from a stranger",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp"] } },
  "steps": [
    { "at": "0s", "lookup": { "from": "mallory", "name": "example.org" } }
  ]
}"#,
        line: 6,
        column: 39,
        path: "steps[0].lookup.from",
        message: r#"found "mallory", expected a host ("mx1.example.org")"#,
    },
    Case {
        name: "host outside every domain",
        text: r#"{
  "title": "Host outside every domain",
  "domains": { "example.org": {} },
  "hosts": {
    "mail.elsewhere.net": { "services": ["smtp"] }
  }
}"#,
        line: 5,
        column: 27,
        path: r#"hosts["mail.elsewhere.net"]"#,
        message: "is not inside any domain of `domains` (\"example.org\")",
    },
    Case {
        name: "user whose domain is unknown",
        text: r#"{
  "title": "User of an unknown domain",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp"], "domains": ["example.org"] } },
  "users": {
    "eve@nowhere.test": { "password": "secret" }
  }
}"#,
        line: 6,
        column: 25,
        path: r#"users["eve@nowhere.test"]"#,
        message: r#"the domain "nowhere.test" is not in `domains`"#,
    },
    Case {
        name: "TLS required, yet plaintext logins allowed",
        text: r#"{
  "title": "Contradicting TLS",
  "domains": { "example.org": {} },
  "hosts": {
    "mx1.example.org": { "services": ["imap"], "domains": ["example.org"], "tls": { "policy": "required", "plaintext_login": true } }
  }
}"#,
        line: 5,
        column: 126,
        path: r#"hosts["mx1.example.org"].tls.plaintext_login"#,
        message: r#"found true with policy "required", expected false"#,
    },
    Case {
        name: "IMAPS on a host with TLS off",
        text: r#"{
  "title": "IMAPS without TLS",
  "domains": { "example.org": {} },
  "settings": { "tls": { "policy": "off" } },
  "hosts": {
    "mx1.example.org": { "services": ["imap", "imaps"], "domains": ["example.org"] }
  }
}"#,
        line: 6,
        column: 47,
        path: r#"hosts["mx1.example.org"].services[1]"#,
        message: r#""imaps" speaks TLS from the first byte, but this host's TLS policy is "off""#,
    },
    Case {
        name: "submissions (465) on a host with TLS off",
        text: r#"{
  "title": "Port 465 without TLS",
  "domains": { "example.org": {} },
  "hosts": {
    "mx1.example.org": { "services": ["submission", "submissions"], "domains": ["example.org"], "tls": { "policy": "off" } }
  }
}"#,
        line: 5,
        column: 53,
        path: r#"hosts["mx1.example.org"].services[1]"#,
        message: r#""submissions" speaks TLS from the first byte, but this host's TLS policy is "off""#,
    },
    Case {
        name: "the same user twice (JSON would keep only the second)",
        text: r#"{
  "title": "Bob twice",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp"], "domains": ["example.org"] } },
  "users": {
    "bob@example.org": { "password": "builder" },
    "bob@example.org": { "password": "other" }
  }
}"#,
        line: 7,
        column: 5,
        path: r#"users["bob@example.org"]"#,
        message: r#"the user "bob@example.org" is given twice (first at line 6, column 5)"#,
    },
    Case {
        name: "the same host twice",
        text: r#"{
  "title": "Host twice",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp"] }, "mx1.example.org": { "services": ["imap"] } }
}"#,
        line: 4,
        column: 59,
        path: r#"hosts["mx1.example.org"]"#,
        message: r#"the host "mx1.example.org" is given twice (first at line 4, column 14)"#,
    },
    Case {
        name: "the same client twice",
        text: r#"{
  "title": "Client twice",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp", "imap"], "domains": ["example.org"] } },
  "users": { "bob@example.org": { "password": "builder" } },
  "clients": {
    "bob-phone": { "user": "bob@example.org", "fetch": "imap" },
    "bob-phone": { "user": "bob@example.org" }
  }
}"#,
        line: 8,
        column: 5,
        path: r#"clients["bob-phone"]"#,
        message: r#"the client "bob-phone" is given twice (first at line 7, column 5)"#,
    },
    Case {
        name: "host names that differ only in case",
        text: r#"{
  "title": "Host names in two cases",
  "domains": { "example.org": {} },
  "hosts": {
    "mx1.example.org": { "services": ["smtp"] },
    "MX1.Example.org": { "services": ["imap"] }
  }
}"#,
        line: 6,
        column: 5,
        path: r#"hosts["MX1.Example.org"]"#,
        message: r#"the host "MX1.Example.org" differs from "mx1.example.org" (at line 5, column 5) only in case; DNS names ignore case"#,
    },
    Case {
        name: "domain names that differ only in case",
        text: r#"{
  "title": "Domains in two cases",
  "domains": { "example.org": {}, "EXAMPLE.ORG": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp"] } }
}"#,
        line: 3,
        column: 35,
        path: r#"domains["EXAMPLE.ORG"]"#,
        message: r#"the domain "EXAMPLE.ORG" differs from "example.org" (at line 3, column 16) only in case"#,
    },
    Case {
        name: "user addresses that differ only in case",
        text: r#"{
  "title": "Bob in two cases",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp"], "domains": ["example.org"] } },
  "users": {
    "bob@example.org": { "password": "builder" },
    "Bob@Example.org": { "password": "other" }
  }
}"#,
        line: 7,
        column: 5,
        path: r#"users["Bob@Example.org"]"#,
        message: r#"the user "Bob@Example.org" differs from "bob@example.org" (at line 6, column 5) only in case; mail addresses are matched without regard to case"#,
    },
    Case {
        name: "a field given twice inside a host (serde's \"duplicate field\" comes with both places)",
        text: r#"{
  "title": "Services twice",
  "domains": { "example.org": {} },
  "hosts": {
    "mx1.example.org": { "services": ["smtp"],
                         "services": ["imap"] }
  }
}"#,
        line: 6,
        column: 26,
        path: r#"hosts["mx1.example.org"].services"#,
        message: r#"the field "services" is given twice (first at line 5, column 26)"#,
    },
    Case {
        name: "a two-factor secret too short to be safe",
        text: r#"{
  "title": "Two-factor with a short secret",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["imap"], "domains": ["example.org"] } },
  "users": {
    "carol@example.org": { "password": "correct horse", "two_factor": { "totp_secret": "JBSWY3DP" } }
  }
}"#,
        line: 6,
        column: 88,
        path: r#"users["carol@example.org"].two_factor.totp_secret"#,
        message: "the secret cannot be used: found 40 bits, expected at least 128 (RFC 4226 §4): 26 or more base32 letters",
    },
    Case {
        name: "throttling that never locks",
        text: r#"{
  "title": "Lock after nothing",
  "settings": { "throttle": { "lock_after": 0 } },
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["imap"], "domains": ["example.org"] } }
}"#,
        line: 3,
        column: 45,
        path: "settings.throttle.lock_after",
        message: "found 0, expected at least 1 failure before a lock",
    },
];

fn problems_of(text: &str) -> Vec<Problem> {
    match Scenario::parse("bad.json", text) {
        Ok(_) => Vec::new(),
        Err(err) => err.problems,
    }
}

// Each mistake is reported once, at the right line, column and field, in words a teacher can act on.
#[test]
fn each_bad_scenario_reports_where_and_what() {
    let mut failures = Vec::new();
    for case in CASES {
        let problems = problems_of(case.text);
        let [problem] = problems.as_slice() else {
            failures.push(format!("{}: expected exactly one problem, got {problems:#?}", case.name));
            continue;
        };
        let found = (problem.file.as_str(), problem.line, problem.column, problem.path.to_string());
        let expected = ("bad.json", case.line, case.column, case.path.to_string());
        if found != expected || !problem.message.contains(case.message) {
            failures
                .push(format!("{}:\n  expected bad.json:{}:{}: {}: …{}…\n  found    {problem}", case.name, case.line, case.column, case.path, case.message));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

// The printed form is `file:line:col: path: message`, what editors and terminals can jump to.
#[test]
fn a_problem_prints_as_file_line_column_path_message() {
    let err = Scenario::parse("scenarios/broken.json", CASES.iter().find(|c| c.name.starts_with("client of a user")).unwrap().text)
        .expect_err("the scenario is broken");
    assert_eq!(
        err.to_string(),
        r#"scenarios/broken.json:7:28: clients["bob-phone"].user: found "bob@example.com", expected one of the users: "bob@example.org""#
    );
}

// A teacher fixing a file wants every mistake at once, not one per run.
#[test]
fn several_problems_are_all_reported_in_file_order() {
    let text = r#"{
  "title": "Many mistakes",
  "domains": {
    "example.org": { "records": [
      { "type": "MX", "preference": 10 },
      { "type": "A", "name": "www", "address": "10.0.0.1" }
    ] }
  },
  "hosts": {
    "mx1.example.org": { "services": ["smtp"], "domains": ["example.org"] },
    "mail.elsewhere.net": { "services": ["smtp"] }
  },
  "users": { "bob@example.org": { "password": "builder" } },
  "clients": {
    "bob-phone": { "user": "carol@example.org", "submit_to": "mx1.example.org" }
  },
  "steps": [
    { "at": "0s" },
    { "at": "1s", "lookup": { "from": "ghost", "name": "example.org" } }
  ]
}"#;
    let err = Scenario::parse("bad.json", text).expect_err("the scenario is broken");
    let found: Vec<(usize, String)> = err.problems.iter().map(|p| (p.line, p.path.to_string())).collect();
    let expected = [
        (5, r#"domains["example.org"].records[0]"#),
        (6, r#"domains["example.org"].records[1].address"#),
        (11, r#"hosts["mail.elsewhere.net"]"#),
        (15, r#"clients["bob-phone"].user"#),
        (15, r#"clients["bob-phone"].submit_to"#),
        (18, "steps[0]"),
        (19, "steps[1].lookup.from"),
    ];
    let expected: Vec<(usize, String)> = expected.iter().map(|(l, p)| (*l, p.to_string())).collect();
    assert_eq!(found, expected);
    // One line per problem when printed.
    let printed = err.to_string();
    assert_eq!(printed.lines().count(), expected.len(), "{printed}");
    assert!(printed.lines().all(|l| l.starts_with("bad.json:")), "{printed}");
}

// A file that cannot be read is a problem too, not a panic.
#[test]
fn a_missing_file_is_reported() {
    let err = Scenario::load(std::path::Path::new("/nonexistent/mailflow/scenario.json")).expect_err("no such file");
    assert_eq!(err.problems.len(), 1);
    assert!(err.to_string().starts_with("/nonexistent/mailflow/scenario.json:0:0: (top level): cannot read the file"), "{err}");
}

// Every scenario shipped in `scenarios/` is valid (the default one is built into the binary).
#[test]
fn shipped_scenarios_parse() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut checked = 0;
    for entry in std::fs::read_dir(&folder).expect("scenarios/ exists") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|x| x == "json") {
            if let Err(err) = Scenario::load(&path) {
                panic!("{} is not valid:\n{err}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 1, "no scenario files found in {}", folder.display());
    assert_eq!(Scenario::default_scenario().title, "Alice writes to Bob");
}

// Editors get a JSON Schema that knows the scenario's fields.
#[test]
fn json_schema_describes_the_fields() {
    let schema = Scenario::json_schema();
    assert!(schema.is_object(), "{schema}");
    for field in ["title", "domains", "hosts", "users", "clients", "steps"] {
        assert!(schema["properties"][field].is_object(), "properties.{field} missing in {schema:#}");
    }
    let required: Vec<&str> = schema["required"].as_array().expect("a required list").iter().filter_map(|v| v.as_str()).collect();
    assert!(required.contains(&"title") && required.contains(&"hosts"), "{required:?}");
}

// Columns count characters, as editors do: an accent earlier on the line must not shift the column,
// for serde's own errors as for the checks after parsing.
#[test]
fn columns_count_characters_not_bytes() {
    // `"colour"` ends at character 32 of line 2 (byte 34: "é" and "ü" take two bytes each).
    let serde_error = "{\n  \"title\": \"Café über\", \"colour\": 1,\n  \"domains\": {}, \"hosts\": {}\n}";
    let [problem] = problems_of(serde_error).try_into().expect("one problem");
    assert_eq!((problem.line, problem.column, problem.path.to_string()), (2, 32, "colour".to_string()), "{problem}");

    // On line 5 the two users' values `{` start at characters 31 and 72 (bytes 33 and 75).
    let check_error = r#"{
  "title": "Accents",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp"], "domains": ["example.org"] } },
  "users": { "zoë@élan.test": { "password": "x" }, "éve@nowhere.test": { "password": "y" } }
}"#;
    let problems = problems_of(check_error);
    let found: Vec<(usize, usize)> = problems.iter().map(|p| (p.line, p.column)).collect();
    assert_eq!(found, vec![(5, 31), (5, 72)], "{problems:#?}");
}

// Client names are case-sensitive device labels: "Bob-phone" and "bob-phone" are two devices, not a repeat.
#[test]
fn client_names_differing_in_case_are_two_clients() {
    let text = r#"{
  "title": "Two phones",
  "domains": { "example.org": {} },
  "hosts": { "mx1.example.org": { "services": ["smtp", "imap"], "domains": ["example.org"] } },
  "users": { "bob@example.org": { "password": "builder" } },
  "clients": {
    "bob-phone": { "user": "bob@example.org", "fetch": "imap" },
    "Bob-phone": { "user": "bob@example.org", "fetch": "imap" }
  }
}"#;
    let scenario = Scenario::parse("ok.json", text).expect("two clients");
    assert_eq!(scenario.clients.len(), 2);
}

// A scenario saved as Latin-1 ("Café" with byte 0xE9) is named at the line and column of the first bad byte,
// not at 0:0. Both the file loader and the byte parser (used for uploads) say so.
#[test]
fn a_file_that_is_not_utf8_names_the_first_bad_byte() {
    let bytes: &[u8] = b"{\n  \"title\": \"Caf\xC3\xA9 \xFCber\",\n  \"description\": \"Caf\xE9\",\n  \"domains\": {}, \"hosts\": {}\n}";
    let err = Scenario::parse_bytes("latin1.json", bytes).expect_err("not UTF-8");
    let [problem] = err.problems.as_slice() else { panic!("one problem expected: {err}") };
    // Line 2: `  "title": "Café ` is 17 characters (é is one), so the bad 0xFC is character 18.
    assert_eq!((problem.line, problem.column), (2, 18), "{problem}");
    assert!(problem.message.contains("not UTF-8") && problem.message.contains("0xFC"), "{problem}");

    let path = std::env::temp_dir().join(format!("mailflow-latin1-{}.json", std::process::id()));
    std::fs::write(&path, b"{\n  \"title\": \"x\",\n\t\"description\": \"\xE9\"\n}").expect("write a temp file");
    let err = Scenario::load(&path).expect_err("not UTF-8");
    std::fs::remove_file(&path).ok();
    let printed = err.to_string();
    assert!(printed.starts_with(&format!("{}:3:18: (top level): the file is not UTF-8 text: byte 0xE9", path.display())), "{printed}");
}
