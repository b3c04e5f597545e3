//! `GET /api/messages/{id}/diagram.svg` (and `.mmd`): the handout of one
//! message, drawn from the running world's trace — the same drawing as
//! `mailflow diagram TRACE.jsonl --message ID` (see [`crate::diagram`]).
//!
//! Reading only, so open to every viewer like the rest of the `GET` API.
//! The SVG is served as a download (`Content-Disposition: attachment`)
//! with a policy that forbids scripts and outside requests, so even a
//! subject line crafted to look like markup stays text (the renderer
//! escapes it too).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::api::ApiError;
use super::state::AppState;
use crate::diagram::{Format, ModelError, render};

/// `GET /api/messages/{id}/diagram.svg`: A4 pages, for printing.
pub async fn svg(state: State<Arc<AppState>>, id: Path<String>) -> Result<Response, ApiError> {
    diagram(state, id, Format::Svg)
}

/// `GET /api/messages/{id}/diagram.mmd`: Mermaid text, for notes and wikis.
pub async fn mermaid(state: State<Arc<AppState>>, id: Path<String>) -> Result<Response, ApiError> {
    diagram(state, id, Format::Mermaid)
}

fn diagram(State(state): State<Arc<AppState>>, Path(id): Path<String>, format: Format) -> Result<Response, ApiError> {
    let session = state.session();
    let events = session.world.trace.since(0);
    let text = render(events.iter().map(|e| &**e), Some(&id), format).map_err(|err| match err {
        ModelError::NoSuchMessage { id, .. } => ApiError::new(StatusCode::NOT_FOUND, format!("no message with Message-ID <{id}> in this story")),
        ModelError::Empty => ApiError::new(StatusCode::NOT_FOUND, format!("message <{id}> has no hops to draw yet")),
    })?;
    let (mime, extension) = match format {
        Format::Svg => ("image/svg+xml; charset=utf-8", "svg"),
        Format::Mermaid => ("text/vnd.mermaid; charset=utf-8", "mmd"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}.{extension}\"", file_name(&id))),
            (header::CACHE_CONTROL, "no-cache".to_string()),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        text,
    )
        .into_response())
}

/// A safe download name from a Message-ID: `mailflow-1.17960-alice-laptop-school.test`.
fn file_name(id: &str) -> String {
    let cleaned: String = id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).take(80).collect();
    format!("mailflow-{}", cleaned.trim_matches(['-', '.']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_plain() {
        assert_eq!(file_name("<1.2.alice-laptop@school.test>"), "mailflow-1.2.alice-laptop-school.test");
        assert_eq!(file_name("\"../x\r\n"), "mailflow-x");
        assert!(file_name(&"a".repeat(500)).len() < 100);
    }
}
