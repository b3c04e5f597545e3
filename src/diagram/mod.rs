//! Handouts: a recorded story as a sequence diagram, for paper or notes.
//!
//! A sequence diagram is how RFCs and textbooks draw a protocol: one
//! vertical line per machine, time running down, one arrow per message.
//! `mailflow diagram TRACE.jsonl` draws one from a `--record` file (or the
//! page draws one from the running world, `GET /api/messages/{id}/diagram.svg`),
//! so a class can take home exactly the hops it watched.
//!
//! The work is a pure function, in three parts that know nothing of files
//! or sockets: events → [`model::Diagram`] (who takes part, what passes) →
//! [`svg`] (A4 pages) or [`mermaid`] (text for wikis and notes).

pub mod mermaid;
pub mod model;
pub mod svg;

pub use model::{Diagram, ModelError, build, message_ids};

use crate::trace::Event;

/// The output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Svg,
    Mermaid,
}

/// The diagram of `events` (of one message's hops, with `message`) in `format`.
pub fn render<'a>(events: impl IntoIterator<Item = &'a Event>, message: Option<&str>, format: Format) -> Result<String, ModelError> {
    let diagram = build(events, message)?;
    Ok(match format {
        Format::Svg => svg::render(&diagram),
        Format::Mermaid => mermaid::render(&diagram),
    })
}
