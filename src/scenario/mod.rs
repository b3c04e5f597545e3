//! Scenario files: the lesson plan of one simulation.
//!
//! A scenario (`scenarios/*.json`) names the domains and their DNS records,
//! the mail servers (hosts) and what they run, the users and their devices
//! (clients), and a list of timed steps. This module reads one, rejects
//! unknown fields, checks that every cross-reference points somewhere real,
//! and reports each problem with file, line, column and field path, e.g.
//!
//! ```text
//! scenarios/broken.json:14:20: clients["bob-phone"].user: found "bob@example.com", expected one of the users: "alice@school.test", "bob@example.org"
//! ```
//!
//! The file is the first stop of the data flow: scenario → `World` → steps.

mod duration;
pub mod locate;
mod model;
pub mod passwords;
pub mod validate;

pub use duration::SimDuration;
pub use locate::{FieldPath, Position};
pub use model::*;

use std::fmt;
use std::path::Path;

use locate::{Duplicate, Locations, Seg};

/// The default scenario, built into the binary so `mailflow demo` needs no file.
pub const DEFAULT_SCENARIO: &str = include_str!("../../scenarios/alice-writes-to-bob.json");
/// The name the default scenario is reported under.
pub const DEFAULT_SCENARIO_NAME: &str = "scenarios/alice-writes-to-bob.json (built in)";

/// One problem in a scenario file, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub path: FieldPath,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}: {}", self.file, self.line, self.column, self.path, self.message)
    }
}

/// Everything wrong with one scenario file (never empty).
#[derive(Clone, Debug, thiserror::Error)]
pub struct ScenarioError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let name = path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => Scenario::parse_bytes(&name, &bytes),
            Err(err) => Err(ScenarioError {
                problems: vec![Problem { file: name, line: 0, column: 0, path: FieldPath::root(), message: format!("cannot read the file: {err}") }],
            }),
        }
    }

    /// Checks that `bytes` are UTF-8 text (RFC 8259 §8.1: JSON exchanged
    /// between systems is UTF-8), then parses them. A file saved in another
    /// encoding (Latin-1 "café" is the usual one) is reported at the line
    /// and column of its first bad byte, so the teacher can find it.
    pub fn parse_bytes(file: &str, bytes: &[u8]) -> Result<Scenario, ScenarioError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Scenario::parse(file, text),
            Err(err) => {
                let good = &bytes[..err.valid_up_to()];
                // Everything before the bad byte is valid UTF-8, so lines
                // and character columns can be counted in it.
                let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
                let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
                let byte = bytes[err.valid_up_to()];
                let message = format!(
                    "the file is not UTF-8 text: byte 0x{byte:02X} here is not valid UTF-8 (is the file saved as Latin-1 or Windows-1252? save it as UTF-8)"
                );
                Err(ScenarioError { problems: vec![Problem { file: file.to_string(), line, column, path: FieldPath::root(), message }] })
            }
        }
    }

    /// The built-in default scenario.
    pub fn default_scenario() -> Scenario {
        Scenario::parse(DEFAULT_SCENARIO_NAME, DEFAULT_SCENARIO).expect("the built-in scenario is valid (tested)")
    }

    /// Parses and checks scenario text; `file` is only used in messages.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let locations = Locations::scan(text);
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let parsed = serde_path_to_error::deserialize::<_, Scenario>(&mut deserializer)
            .map_err(|err| (convert_path(err.path()), err.into_inner()))
            // Trailing text after the top-level object is an error too.
            .and_then(|scenario| deserializer.end().map(|()| scenario).map_err(|err| (FieldPath::root(), err)));
        // Keys written twice come first: they explain what serde may say
        // next ("duplicate field"), and a scenario that lost an entry to a
        // later one of the same name must not run.
        let duplicates: Vec<Problem> = locations.duplicates.iter().map(|d| duplicate_problem(file, d)).collect();
        let scenario = match parsed {
            Ok(scenario) => scenario,
            Err((_, inner)) if !duplicates.is_empty() && inner.to_string().starts_with("duplicate field") => {
                return Err(ScenarioError { problems: duplicates });
            }
            Err((path, inner)) => {
                // serde_json points at the offending token; when it cannot
                // (line 0), fall back to where the field starts.
                let (line, column) = if inner.line() > 0 {
                    (inner.line(), char_column(text, inner.line(), inner.column()))
                } else {
                    locations.find(&path).map(|p| (p.line, p.column)).unwrap_or((0, 0))
                };
                let mut problems = duplicates;
                problems.push(Problem { file: file.to_string(), line, column, path, message: serde_message(&inner) });
                return Err(ScenarioError { problems });
            }
        };
        let checked = validate::check(&scenario)
            .into_iter()
            // A key that repeats another but for case is also not lowercase;
            // saying it is a repeat is the more useful of the two messages.
            .filter(|(path, _)| !locations.duplicates.iter().any(|d| d.case_only && &d.path == path))
            .map(|(path, message)| {
                let pos = locations.find(&path).unwrap_or(Position { line: 0, column: 0 });
                Problem { file: file.to_string(), line: pos.line, column: pos.column, path, message }
            });
        let problems: Vec<Problem> = duplicates.into_iter().chain(checked).collect();
        if problems.is_empty() { Ok(scenario) } else { Err(ScenarioError { problems }) }
    }

    /// Warnings for a scenario that loaded (see [`validate::warnings`]),
    /// located in `text` like errors are.
    pub fn warnings(&self, file: &str, text: &str) -> Vec<Problem> {
        let locations = Locations::scan(text);
        validate::warnings(self)
            .into_iter()
            .map(|(path, message)| {
                let pos = locations.find(&path).unwrap_or(Position { line: 0, column: 0 });
                Problem { file: file.to_string(), line: pos.line, column: pos.column, path, message: format!("warning: {message}") }
            })
            .collect()
    }

    /// The JSON Schema of scenario files, for editors.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Scenario)).expect("a schema is plain JSON")
    }
}

/// What a repeated key means, in the words of the map it is in.
fn duplicate_problem(file: &str, d: &Duplicate) -> Problem {
    let parent = d.path.parent().unwrap_or_default();
    let what = match parent.0.as_slice() {
        [Seg::Key(k)] if k == "domains" => "domain",
        [Seg::Key(k)] if k == "hosts" => "host",
        [Seg::Key(k)] if k == "users" => "user",
        [Seg::Key(k)] if k == "clients" => "client",
        _ => "field",
    };
    let key = match d.path.0.last() {
        Some(Seg::Key(key)) => key.as_str(),
        _ => "",
    };
    let first = format!("line {}, column {}", d.first_at.line, d.first_at.column);
    let message = if d.case_only {
        let why = if what == "user" {
            "mail addresses are matched without regard to case, so both would be one mailbox"
        } else {
            "DNS names ignore case (RFC 4343), so both would be one name"
        };
        format!("the {what} {key:?} differs from {:?} (at {first}) only in case; {why}: keep one", d.first)
    } else {
        format!("the {what} {key:?} is given twice (first at {first}); JSON keeps only the last one, so the first would be silently lost: remove or rename one")
    };
    Problem { file: file.to_string(), line: d.at.line, column: d.at.column, path: d.path.clone(), message }
}

/// serde_json's messages end in " at line X column Y"; we print the
/// position ourselves, in front.
fn serde_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// serde_json counts columns in bytes; editors and our own scanner
/// (`locate.rs`) count characters, so "Café" earlier on the line would
/// shift the column. Converts serde's 1-based byte column to characters.
fn char_column(text: &str, line: usize, byte_column: usize) -> usize {
    let Some(line_text) = text.split('\n').nth(line - 1) else { return byte_column };
    let mut end = byte_column.min(line_text.len());
    while !line_text.is_char_boundary(end) {
        end += 1;
    }
    line_text[..end].chars().count()
}

fn convert_path(path: &serde_path_to_error::Path) -> FieldPath {
    use serde_path_to_error::Segment;
    FieldPath(
        path.iter()
            .filter_map(|seg| match seg {
                Segment::Seq { index } => Some(Seg::Index(*index)),
                Segment::Map { key } => Some(Seg::Key(key.clone())),
                Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
                Segment::Unknown => None,
            })
            .collect(),
    )
}
