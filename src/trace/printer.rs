//! The terminal view of the trace: one readable line per event, with the
//! raw protocol line under it, like a transcript with a narrator.
//!
//! ```text
//! 00:00:00.000  smtp.school.test → dns  DNS  smtp.school.test asks DNS: which servers take mail for example.org?
//! 00:00:00.000  dns → smtp.school.test  DNS  DNS answers: mx1.example.org (preference 10), mx2.example.org (20)
//!                 example.org. 300 IN MX 10 mx1.example.org.
//! ```

use std::fmt::Write as _;

use super::{Event, Kind};

/// `hh:mm:ss.mmm` of simulated time.
pub fn sim_time(ms: u64) -> String {
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// Formats one event for the terminal (may span several lines; no final
/// newline).
pub fn format(event: &Event) -> String {
    let mut out = String::new();
    let route = if event.from == event.to || event.to.is_empty() { event.from.clone() } else { format!("{} → {}", event.from, event.to) };
    let _ = write!(out, "{}  {route}  {}  {}", sim_time(event.sim_ms), event.protocol.label(), event.summary);
    let indent = "                ";
    match &event.kind {
        Kind::Line { direction, line } => {
            for part in line.split('\n') {
                let _ = write!(out, "\n{indent}{} {part}", direction.prefix());
            }
        }
        Kind::Data { direction, preview, .. } => {
            for line in preview.lines().take(12) {
                let _ = write!(out, "\n{indent}{} {line}", direction.prefix());
            }
        }
        Kind::DnsAnswer { records, .. } | Kind::DnsChange { records, .. } => {
            for record in records {
                let _ = write!(out, "\n{indent}{record}");
            }
        }
        _ => {}
    }
    if let Some(explain) = &event.explain {
        let _ = write!(out, "\n{indent}ⓘ {explain}");
    }
    out
}
