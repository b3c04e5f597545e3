//! The trace: the append-only, numbered story of a run.
//!
//! Everything that happens is an [`Event`]. The [`Trace`] numbers events in
//! the order they happen and keeps them all, so a viewer that joins late (a
//! browser tab opened mid-lesson, a `--record` file) can start from any
//! sequence number and still see the whole story exactly once, in order.
//! The terminal printer, the recorder and the web stream are all just
//! subscribers.

mod event;
pub mod printer;
pub mod record;

pub use event::*;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::conductor::Clock;

/// How many events a trace keeps. A lesson makes a few thousand; a world
/// left serving a benchmark makes millions, and keeping them all would
/// grow without bound. Past this, the oldest are forgotten: a viewer that
/// joins later starts from the oldest event still kept.
pub const MAX_KEPT_EVENTS: usize = 250_000;

/// The kept events: the newest [`MAX_KEPT_EVENTS`], oldest first.
#[derive(Default)]
struct Kept {
    list: std::collections::VecDeque<Arc<Event>>,
    /// The sequence number of `list[0]`.
    first: u64,
}

impl Kept {
    fn next_seq(&self) -> u64 {
        self.first + self.list.len() as u64
    }

    fn push(&mut self, event: Arc<Event>) {
        self.list.push_back(event);
        if self.list.len() > MAX_KEPT_EVENTS {
            self.list.pop_front();
            self.first += 1;
        }
    }
}

/// The shared, append-only event log of one world. Cheap to clone.
#[derive(Clone)]
pub struct Trace {
    inner: Arc<Inner>,
}

struct Inner {
    // A plain mutex: appends and copies are short and never held across
    // an await, so an async lock would only add cost.
    events: Mutex<Kept>,
    // Subscribers wait on this for "there are now N events" (and closed).
    count: watch::Sender<(u64, bool)>,
    clock: Clock,
    // Numbers connections and DNS exchanges, so events can be grouped.
    sessions: AtomicU64,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace").field("events", &self.len()).finish()
    }
}

impl Trace {
    pub fn new(clock: Clock) -> Self {
        let (count, _) = watch::channel((0, false));
        Trace { inner: Arc::new(Inner { events: Mutex::new(Kept::default()), count, clock, sessions: AtomicU64::new(1) }) }
    }

    /// Numbers, timestamps, stores and announces one event.
    pub fn emit(&self, draft: Draft) -> Arc<Event> {
        let mut one = None;
        self.emit_each([draft], |event| one = Some(event));
        one.expect("one draft makes one event")
    }

    /// Records several events at once, numbered in order with no other
    /// event between them: one lock and one announcement for all, which is
    /// what a server answering a batch of DNS questions needs.
    pub fn emit_all(&self, drafts: impl IntoIterator<Item = Draft>) {
        self.emit_each(drafts, |_| {});
    }

    fn emit_each(&self, drafts: impl IntoIterator<Item = Draft>, mut each: impl FnMut(Arc<Event>)) {
        let wall_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let sim_ms = self.inner.clock.now().as_millis() as u64;
        let mut events = self.inner.events.lock().unwrap_or_else(|e| e.into_inner());
        let first = events.next_seq();
        for draft in drafts {
            let event = Arc::new(Event {
                seq: events.next_seq(),
                sim_ms,
                wall_ms,
                from: draft.from,
                to: draft.to,
                protocol: draft.protocol,
                kind: draft.kind,
                summary: draft.summary,
                explain: draft.explain,
                message: draft.message,
                session: draft.session,
                tls: draft.tls,
            });
            tracing::debug!(seq = event.seq, summary = %event.summary, "event");
            events.push(event.clone());
            each(event);
        }
        let len = events.next_seq();
        if len != first {
            // Announce while still holding the lock so counts only grow.
            self.inner.count.send_modify(|(count, _)| *count = len);
        }
    }

    /// A new session number (a connection or a DNS exchange).
    pub fn next_session(&self) -> u64 {
        self.inner.sessions.fetch_add(1, Ordering::Relaxed)
    }

    /// The simulated clock the trace stamps events with.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// How many events there are.
    pub fn len(&self) -> u64 {
        self.inner.count.borrow().0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the events from `seq` on (from the oldest kept one, if
    /// `seq` is older: see [`MAX_KEPT_EVENTS`]).
    pub fn since(&self, seq: u64) -> Vec<Arc<Event>> {
        let events = self.inner.events.lock().unwrap_or_else(|e| e.into_inner());
        let skip = seq.saturating_sub(events.first) as usize;
        events.list.iter().skip(skip).cloned().collect()
    }

    /// Follows the trace from event `seq` on: past events first, then new
    /// ones as they happen.
    pub fn subscribe(&self, seq: u64) -> Subscription {
        Subscription { trace: self.clone(), next: seq, rx: self.inner.count.subscribe(), buffer: Vec::new().into_iter() }
    }

    /// No more events will come; subscribers end once they have read all.
    pub fn close(&self) {
        self.inner.count.send_modify(|(_, closed)| *closed = true);
    }
}

/// A reader of the trace from some sequence number on.
pub struct Subscription {
    trace: Trace,
    next: u64,
    rx: watch::Receiver<(u64, bool)>,
    buffer: std::vec::IntoIter<Arc<Event>>,
}

impl Subscription {
    /// The next event, waiting for it if need be; `None` once the trace is
    /// closed and everything was read.
    pub async fn next(&mut self) -> Option<Arc<Event>> {
        loop {
            if let Some(event) = self.buffer.next() {
                self.next = event.seq + 1;
                return Some(event);
            }
            let (count, closed) = *self.rx.borrow_and_update();
            if self.next < count {
                // Take everything new in one lock, then hand it out.
                self.buffer = self.trace.since(self.next).into_iter();
                continue;
            }
            if closed {
                return None;
            }
            if self.rx.changed().await.is_err() {
                return None;
            }
        }
    }

    /// The sequence number of the next event this subscription returns.
    pub fn position(&self) -> u64 {
        self.next
    }
}

/// A size as the story says it: "310 bytes", "3.1 KB", "5.0 MB".
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} bytes"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A world serving for hours must not keep every event: the oldest go.
    #[tokio::test]
    async fn keeps_only_the_newest_events() {
        let trace = Trace::new(Clock::new());
        for i in 0..MAX_KEPT_EVENTS + 10 {
            trace.emit(Draft::new("a", "b", Protocol::Sim, Kind::Note, if i == 0 { "first" } else { "" }));
        }
        assert_eq!(trace.len(), MAX_KEPT_EVENTS as u64 + 10, "numbering goes on");
        let kept = trace.since(0);
        assert_eq!((kept.len(), kept[0].seq), (MAX_KEPT_EVENTS, 10));
        let mut late = trace.subscribe(0);
        assert_eq!(late.next().await.map(|e| e.seq), Some(10), "a late viewer starts at the oldest kept event");
    }
}
