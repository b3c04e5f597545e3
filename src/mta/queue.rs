//! The queue: messages a host has accepted but not yet delivered, and the
//! rule that decides what happens after each delivery attempt.
//!
//! The rule ([`next`]) is pure — no sockets, no clock, no tokio — so every
//! case is a line of a table test. A temporary failure (the next server is
//! down, or answered 4xx) is not the end: the message waits and is retried,
//! each wait longer than the last ("exponential back-off", so a struggling
//! server is not hammered), until it has been queued too long; then the
//! sender gets a bounce (RFC 5321 §4.5.4.1 suggests giving up after 4–5
//! days; scenarios use minutes so a class sees it happen).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::bounce::Failure;
use super::local::Folder;
use crate::scenario::{RetrySettings, SimDuration};
use crate::trace::MessageRef;

/// A message in a host's queue, as its delivery task sees it.
pub struct Item {
    pub id: String,
    /// The envelope sender; `None` is `<>` (a bounce).
    pub from: Option<String>,
    /// Recipients not delivered yet.
    pub pending: Vec<String>,
    pub data: Arc<Vec<u8>>,
    pub message: Option<MessageRef>,
    /// When the host accepted it (simulated time).
    pub arrived: Duration,
    /// The folder its local recipients get: `Junk` when the receiving
    /// checks said quarantine, so a retried delivery lands where the first
    /// try would have.
    pub folder: Folder,
}

/// What became of one recipient in one attempt.
#[derive(Debug)]
pub enum Outcome {
    Accepted,
    /// Try again later, for this reason.
    Temporary(String),
    Permanent(Failure),
}

/// What to do with a message after an attempt.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Every recipient is done with: the message leaves the queue.
    Done,
    /// Try the pending recipients again after this wait.
    Retry { wait: Duration },
    /// Queued too long: bounce the pending recipients with this reason.
    Expire { reason: String },
}

/// The rule: after failed attempt number `attempt` (1 = the first) of a
/// message queued for `age`, with recipients still `pending` for the last
/// temporary `reason`, what next?
pub fn next(settings: &RetrySettings, attempt: u32, age: Duration, pending: bool, reason: &str) -> Decision {
    if !pending {
        return Decision::Done;
    }
    let wait = delay(settings, attempt);
    if age + wait > settings.give_up_after.0 {
        return Decision::Expire { reason: format!("delivery time expired after {} in the queue; last error: {reason}", SimDuration(age)) };
    }
    Decision::Retry { wait }
}

/// How long to wait after failed attempt number `attempt` (1 = the first).
pub fn delay(settings: &RetrySettings, attempt: u32) -> Duration {
    let factor = settings.factor.max(1.0);
    let exponent = attempt.saturating_sub(1).min(64) as i32;
    let delay = settings.first.0.as_secs_f64() * factor.powi(exponent);
    Duration::from_secs_f64(delay.min(settings.max_delay.0.as_secs_f64()))
}

/// What a message's queue entry shows (for the page and the tests).
#[derive(Clone, Debug)]
pub struct QueueEntry {
    pub id: String,
    pub from: Option<String>,
    pub recipients: Vec<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// The entries of one host's queue, by id.
#[derive(Default)]
pub struct Queue {
    entries: Mutex<BTreeMap<String, QueueEntry>>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, QueueEntry>> {
        // A plain mutex: every use is a short edit, never held across an await.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, item: &Item) {
        let entry = QueueEntry { id: item.id.clone(), from: item.from.clone(), recipients: item.pending.clone(), attempts: 0, last_error: None };
        self.lock().insert(item.id.clone(), entry);
    }

    pub fn attempt(&self, id: &str, attempt: u32) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.attempts = attempt;
        }
    }

    pub fn failed(&self, id: &str, reason: &str) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.last_error = Some(reason.to_string());
        }
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    pub fn entries(&self) -> Vec<QueueEntry> {
        self.lock().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn backs_off_up_to_the_maximum() {
        let settings = RetrySettings::default();
        let minutes: Vec<u64> = (1..=6).map(|a| delay(&settings, a).as_secs() / 60).collect();
        assert_eq!(minutes, vec![5, 10, 20, 40, 60, 60]);
    }

    #[test]
    fn the_rule_as_a_table() {
        let settings = RetrySettings::default();
        let give_up = settings.give_up_after.0;
        let retry = |minutes: u32| Decision::Retry { wait: minutes * MINUTE };
        // (attempt, age, pending) → decision
        let table: [(u32, Duration, bool, Option<Decision>); 6] = [
            (1, Duration::ZERO, false, Some(Decision::Done)),
            (1, Duration::ZERO, true, Some(retry(5))),
            (2, 5 * MINUTE, true, Some(retry(10))),
            (4, 35 * MINUTE, true, Some(retry(40))),
            (9, give_up - MINUTE, false, Some(Decision::Done)),
            // The next wait would pass the limit: give up now, not later.
            (9, give_up - MINUTE, true, None),
        ];
        for (attempt, age, pending, expected) in table {
            let decision = next(&settings, attempt, age, pending, "mx1 is down");
            match expected {
                Some(expected) => assert_eq!(decision, expected, "attempt {attempt}, age {age:?}"),
                None => assert!(matches!(&decision, Decision::Expire { reason } if reason.contains("last error: mx1 is down")), "{decision:?}"),
            }
        }
    }

    #[test]
    fn a_factor_below_one_never_shrinks_the_wait() {
        let settings = RetrySettings { factor: 0.5, ..RetrySettings::default() };
        assert_eq!(delay(&settings, 3), delay(&settings, 1));
    }
}
