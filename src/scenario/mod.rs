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
pub mod validate;

pub use duration::SimDuration;
pub use locate::{FieldPath, Position};
pub use model::*;

use std::fmt;
use std::path::Path;

use locate::{Locations, Seg};

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
        match std::fs::read_to_string(path) {
            Ok(text) => Scenario::parse(&name, &text),
            Err(err) => Err(ScenarioError {
                problems: vec![Problem { file: name, line: 0, column: 0, path: FieldPath::root(), message: format!("cannot read the file: {err}") }],
            }),
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
        let scenario = match parsed {
            Ok(scenario) => scenario,
            Err((path, inner)) => {
                // serde_json points at the offending token; when it cannot
                // (line 0), fall back to where the field starts.
                let (line, column) = if inner.line() > 0 {
                    (inner.line(), char_column(text, inner.line(), inner.column()))
                } else {
                    locations.find(&path).map(|p| (p.line, p.column)).unwrap_or((0, 0))
                };
                return Err(ScenarioError { problems: vec![Problem { file: file.to_string(), line, column, path, message: serde_message(&inner) }] });
            }
        };
        let problems: Vec<Problem> = validate::check(&scenario)
            .into_iter()
            .map(|(path, message)| {
                let pos = locations.find(&path).unwrap_or(Position { line: 0, column: 0 });
                Problem { file: file.to_string(), line: pos.line, column: pos.column, path, message }
            })
            .collect();
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
