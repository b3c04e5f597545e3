//! Recording a trace as JSON lines (`--record FILE`) and reading it back
//! (`mailflow replay FILE`): one event per line, in sequence order, so a
//! lesson can be replayed later or examined with `jq`.

use std::io::BufRead;
use std::path::Path;

use tokio::io::AsyncWriteExt;

use super::{Event, Subscription};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    // The cause is in the message, so it is not also a `source` (printed
    // twice by anyhow's `{:#}` otherwise).
    #[error("{file}: {error}")]
    Io { file: String, error: std::io::Error },
    #[error("{file}:{line}: not a mailflow event: {error}")]
    BadLine { file: String, line: usize, error: serde_json::Error },
}

/// Writes every event of `events` to `path` until the trace closes.
pub async fn record(mut events: Subscription, path: &Path) -> Result<(), RecordError> {
    let io_err = |error| RecordError::Io { file: path.display().to_string(), error };
    let file = tokio::fs::File::create(path).await.map_err(io_err)?;
    let mut out = tokio::io::BufWriter::new(file);
    while let Some(event) = events.next().await {
        let mut line = serde_json::to_vec(&*event).expect("events serialize");
        line.push(b'\n');
        out.write_all(&line).await.map_err(io_err)?;
        // Flush per event so a recording is usable even after Ctrl-C.
        out.flush().await.map_err(io_err)?;
    }
    Ok(())
}

/// Reads a recorded trace.
pub fn load(path: &Path) -> Result<Vec<Event>, RecordError> {
    let file_name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|error| RecordError::Io { file: file_name.clone(), error })?;
    let mut events = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|error| RecordError::Io { file: file_name.clone(), error })?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(&line).map_err(|error| RecordError::BadLine { file: file_name.clone(), line: i + 1, error })?;
        events.push(event);
    }
    Ok(events)
}
