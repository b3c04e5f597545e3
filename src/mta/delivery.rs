//! The delivery task: one per queued message. It tries every pending
//! recipient (here: `local.rs`; elsewhere: `relay.rs`), bounces the ones
//! that failed for good, and asks the queue's rule (`queue::next`) whether
//! to stop, wait and try again, or give up.
//!
//! The task holds an [`Activity`] of the simulated clock for its whole
//! life: while a message is queued the world is not "idle", and a wait of
//! "15 minutes" passes as simulated time (`Activity::sleep`), so the class
//! sees the retry a few seconds later, not a quarter of an hour.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::bounce::Failure;
use super::local::Folder;
use super::queue::{Decision, Item, Outcome, next};
use super::{MailHost, domain_of};
use crate::conductor::Activity;
use crate::message::summarize;
use crate::scenario::SimDuration;
use crate::trace::{MessageRef, QueueState};

impl MailHost {
    /// Queues a message for delivery; returns its queue id.
    pub fn enqueue(self: &Arc<Self>, from: Option<String>, recipients: Vec<String>, data: Vec<u8>, message: Option<MessageRef>) -> String {
        let id = self.new_id();
        self.enqueue_as(id, from, recipients, data, message, Folder::Inbox)
    }

    /// Queues a message under a known id, for local recipients' `folder`. The activity is taken *now*,
    /// before the caller answers 250, so the simulated clock cannot jump
    /// past a message nobody is working on.
    pub(super) fn enqueue_as(
        self: &Arc<Self>,
        id: String,
        from: Option<String>,
        recipients: Vec<String>,
        data: Vec<u8>,
        message: Option<MessageRef>,
        folder: Folder,
    ) -> String {
        let activity = self.net.conductor.clock().activity();
        let item = Item { id: id.clone(), from, pending: recipients, data: Arc::new(data), message, arrived: self.net.now(), folder };
        self.queue.add(&item);
        self.queue_event(
            &item,
            QueueState::Queued,
            &item.pending,
            format!("{} puts the message in its queue as {id}, for {}", self.name, item.pending.join(", ")),
            Some("The server now owns the message: it said 250 only after saving it, so nothing accepted is lost."),
            None,
        );
        let host = self.clone();
        tokio::spawn(async move { host.deliver(item, activity).await });
        id
    }

    /// The delivery task of one queued message (see the module docs).
    async fn deliver(self: Arc<Self>, mut item: Item, activity: Activity) {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.queue.attempt(&item.id, attempt);
            if attempt > 1 {
                let pending = item.pending.clone();
                self.queue_event(&item, QueueState::Attempt, &pending, format!("{}: attempt {attempt} for {}", item.id, pending.join(", ")), None, None);
            }
            let (failures, reason) = self.attempt(&mut item).await;
            if !failures.is_empty() {
                self.send_bounce(&item, &failures);
            }
            let age = self.net.now().saturating_sub(item.arrived);
            match next(&self.retry, attempt, age, !item.pending.is_empty(), &reason) {
                Decision::Done => break,
                Decision::Expire { reason } => {
                    let expired: Vec<Failure> = item
                        .pending
                        .iter()
                        .map(|r| Failure { recipient: r.clone(), status: "4.4.7".into(), remote_mta: None, diagnostic: reason.clone() })
                        .collect();
                    self.send_bounce(&item, &expired);
                    break;
                }
                Decision::Retry { wait } => {
                    self.queue.failed(&item.id, &reason);
                    let pending = item.pending.clone();
                    self.queue_event(
                        &item,
                        QueueState::Deferred,
                        &pending,
                        format!("{} keeps {} and will try again in {} ({reason})", self.name, item.id, SimDuration(wait)),
                        Some("A temporary failure: the message stays in the queue and is retried later, each wait longer than the last."),
                        Some(self.net.now() + wait),
                    );
                    activity.sleep(wait).await;
                }
            }
        }
        self.queue.remove(&item.id);
    }

    /// One attempt for every pending recipient, domain by domain. Leaves
    /// the temporarily failed ones pending; returns the permanent failures
    /// and the last temporary reason.
    async fn attempt(&self, item: &mut Item) -> (Vec<Failure>, String) {
        let mut by_domain: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for recipient in &item.pending {
            by_domain.entry(domain_of(recipient)).or_default().push(recipient.clone());
        }
        let mut failures = Vec::new();
        let mut still_pending = Vec::new();
        let mut last_reason = String::new();
        for (domain, recipients) in by_domain {
            let outcomes = if self.is_final_for(&domain) {
                recipients.iter().map(|r| (r.clone(), self.deliver_local_to(item.from.as_deref(), r, &item.data, item.message.clone(), item.folder))).collect()
            } else {
                self.relay(item, &domain, &recipients).await
            };
            for (recipient, outcome) in outcomes {
                match outcome {
                    Outcome::Accepted => {}
                    Outcome::Temporary(reason) => {
                        last_reason = reason;
                        still_pending.push(recipient);
                    }
                    Outcome::Permanent(failure) => failures.push(failure),
                }
            }
        }
        item.pending = still_pending;
        (failures, last_reason)
    }

    /// Queues the bounce for `failures`, if the sender gets one.
    fn send_bounce(self: &Arc<Self>, item: &Item, failures: &[Failure]) {
        if let Some(bounce) = self.bounce(item, failures) {
            let message = summarize(&bounce.raw).message_ref();
            self.enqueue(None, vec![bounce.to], bounce.raw, message);
        }
    }
}
