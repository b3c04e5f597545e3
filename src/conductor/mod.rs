//! The conductor decides *when* each hop may move.
//!
//! Every line a protocol sends (and every DNS question and answer) first
//! calls [`Conductor::pass`]. What happens there depends on the pace:
//!
//! - `Fast`: nothing, the hop moves at once (tests, benchmarks, `run --fast`);
//! - `Live { speed }`: the hop waits a short real delay so the class can
//!   follow it (half a second at speed 1);
//! - `Step`: the hop waits until someone steps (Enter in the terminal, the
//!   step button on the web page). Pausing is switching to `Step`.
//!
//! No protocol code knows about pacing: it just passes the conductor. The
//! conductor also owns the simulated [`Clock`].
//!
//! A quiz (see `world::quiz`) *holds* the conductor ([`Conductor::hold`]):
//! while the class answers, no hop moves in live or step pace, whatever
//! was under way, until the teacher reveals the answer.

mod clock;

pub use clock::{Activity, Clock};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

/// How hops are paced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    Fast,
    Live { speed: f64 },
    Step,
}

/// The real delay of one hop in live mode at speed 1.
pub const LIVE_HOP_DELAY: Duration = Duration::from_millis(500);

/// Paces the hops of one world. Cheap to clone.
#[derive(Clone)]
pub struct Conductor {
    inner: Arc<Inner>,
}

struct Inner {
    pace: watch::Sender<Pace>,
    // Each step adds one permit; a waiting hop takes one and moves.
    permits: Semaphore,
    // Hops waiting for a step, oldest first (for "next: ..." prompts).
    waiting: Mutex<Vec<(u64, String)>>,
    waiting_changed: watch::Sender<u64>,
    next_ticket: std::sync::atomic::AtomicU64,
    clock: Clock,
    // How many holds (open quizzes) keep every hop where it is.
    holds: watch::Sender<usize>,
}

impl Conductor {
    /// A conductor at `pace` with its clock already driven.
    pub fn start(pace: Pace) -> Self {
        let conductor = Self::new(pace);
        tokio::spawn(conductor.clock().clone().drive(conductor.inner.pace.subscribe()));
        conductor
    }

    /// A conductor whose clock nobody drives yet (see [`Clock::drive`]).
    pub fn new(pace: Pace) -> Self {
        let (pace, _) = watch::channel(pace);
        let (waiting_changed, _) = watch::channel(0);
        Conductor {
            inner: Arc::new(Inner {
                pace,
                permits: Semaphore::new(0),
                waiting: Mutex::new(Vec::new()),
                waiting_changed,
                next_ticket: 0.into(),
                clock: Clock::new(),
                holds: watch::channel(0).0,
            }),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub fn pace(&self) -> Pace {
        *self.inner.pace.borrow()
    }

    /// Changes the pace; hops waiting for a step are released when leaving
    /// step mode.
    pub fn set_pace(&self, pace: Pace) {
        if pace != Pace::Step {
            // Steps pressed while nothing waited must not carry over.
            while let Ok(permit) = self.inner.permits.try_acquire() {
                permit.forget();
            }
        }
        self.inner.pace.send_replace(pace);
    }

    /// Lets one waiting hop move. Returns false if none was waiting.
    pub fn step(&self) -> bool {
        let waiting = self.lock_waiting().len();
        if waiting > self.inner.permits.available_permits() {
            self.inner.permits.add_permits(1);
            true
        } else {
            false
        }
    }

    /// The hops now waiting for a step, oldest first.
    pub fn waiting(&self) -> Vec<String> {
        self.lock_waiting().iter().map(|(_, hop)| hop.clone()).collect()
    }

    /// Notifies whenever the list of waiting hops changes.
    pub fn watch_waiting(&self) -> watch::Receiver<u64> {
        self.inner.waiting_changed.subscribe()
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, Vec<(u64, String)>> {
        self.inner.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Something takes `by` of simulated time while work goes on (see
    /// [`Clock::advance`]); in live mode the class sees a short pause.
    pub async fn advance(&self, by: Duration) {
        if let Pace::Live { speed } = self.pace() {
            tokio::time::sleep(clock::live_pause(by, speed)).await;
        }
        self.inner.clock.advance(by);
    }

    /// Follows changes of the pace.
    pub fn watch_pace(&self) -> watch::Receiver<Pace> {
        self.inner.pace.subscribe()
    }

    /// Stops every hop (in live and step pace) until the returned guard is
    /// dropped: the story pauses for a quiz.
    pub fn hold(&self) -> Hold {
        self.inner.holds.send_modify(|n| *n += 1);
        Hold { inner: self.inner.clone() }
    }

    /// Whether a hold keeps the hops where they are.
    pub fn held(&self) -> bool {
        *self.inner.holds.borrow() > 0
    }

    /// Waits while a hold is on, unless the pace turns fast.
    async fn unheld(&self) {
        let mut holds = self.inner.holds.subscribe();
        let mut pace = self.inner.pace.subscribe();
        loop {
            if *holds.borrow_and_update() == 0 || *pace.borrow_and_update() == Pace::Fast {
                return;
            }
            tokio::select! {
                changed = holds.changed() => if changed.is_err() { return },
                changed = pace.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Waits until the hop described by `hop` may move.
    pub async fn pass(&self, hop: &str) {
        if *self.inner.pace.borrow() == Pace::Fast {
            return; // the common case in tests and benchmarks: no bookkeeping
        }
        // Before queueing (the page's "next:" stays empty during a quiz)
        // and after being let through (a step pressed during the quiz).
        self.unheld().await;
        self.pass_paced(hop).await;
        self.unheld().await;
    }

    async fn pass_paced(&self, hop: &str) {
        let mut pace = self.inner.pace.subscribe();
        loop {
            let current = *pace.borrow_and_update();
            match current {
                Pace::Fast => return,
                Pace::Live { speed } => {
                    let delay = LIVE_HOP_DELAY.div_f64(speed.max(0.01));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => return,
                        // The teacher paused or sped up: re-decide.
                        changed = pace.changed() => if changed.is_err() { return },
                    }
                }
                Pace::Step => {
                    let ticket = self.inner.next_ticket.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.lock_waiting().push((ticket, hop.to_string()));
                    self.inner.waiting_changed.send_modify(|n| *n += 1);
                    // Leaves the queue however the wait ends, also when the
                    // hop's task is dropped while it waits (aborted, timed out).
                    let queued = Queued { inner: &self.inner, ticket };
                    let released = tokio::select! {
                        permit = self.inner.permits.acquire() => {
                            if let Ok(permit) = permit { permit.forget(); }
                            true
                        }
                        changed = pace.changed() => changed.is_err(),
                    };
                    drop(queued);
                    if released {
                        return;
                    }
                }
            }
        }
    }
}

/// A quiz's hold on the hops (see [`Conductor::hold`]); dropping it lets
/// them move again.
pub struct Hold {
    inner: Arc<Inner>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.inner.holds.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A hop's place in the waiting list; dropping it takes the hop out.
struct Queued<'a> {
    inner: &'a Inner,
    ticket: u64,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.inner.waiting.lock().unwrap_or_else(|e| e.into_inner()).retain(|(t, _)| *t != self.ticket);
        self.inner.waiting_changed.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn step_mode_releases_one_hop_per_step() {
        let conductor = Conductor::new(Pace::Step);
        let passed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut hops = Vec::new();
        for i in 0..3 {
            let (conductor, passed) = (conductor.clone(), passed.clone());
            hops.push(tokio::spawn(async move {
                conductor.pass(&format!("hop {i}")).await;
                passed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }));
        }
        let mut waiting = conductor.watch_waiting();
        while conductor.waiting().len() < 3 {
            waiting.changed().await.unwrap();
        }
        assert_eq!(passed.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(conductor.step());
        while conductor.waiting().len() > 2 {
            waiting.changed().await.unwrap();
        }
        tokio::task::yield_now().await;
        assert_eq!(conductor.waiting().len(), 2);
        // Leaving step mode lets everything through.
        conductor.set_pace(Pace::Fast);
        for hop in hops {
            hop.await.unwrap();
        }
        assert_eq!(passed.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(!conductor.step(), "nothing waits any more");
    }

    #[tokio::test]
    async fn a_hold_stops_hops_until_released_or_fast() {
        let conductor = Conductor::new(Pace::Live { speed: 100.0 });
        let hold = conductor.hold();
        assert!(conductor.held());
        let passed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hop = {
            let (conductor, passed) = (conductor.clone(), passed.clone());
            tokio::spawn(async move {
                conductor.pass("a hop during a quiz").await;
                passed.store(true, std::sync::atomic::Ordering::SeqCst);
            })
        };
        // Many live hop delays (5 ms each at speed 100) later it still waits.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!passed.load(std::sync::atomic::Ordering::SeqCst), "a held hop moved");
        drop(hold);
        hop.await.unwrap();
        assert!(passed.load(std::sync::atomic::Ordering::SeqCst));
        assert!(!conductor.held());

        // Turning fast releases a held hop too (nobody would reveal then).
        let _hold = conductor.hold();
        let hop = {
            let conductor = conductor.clone();
            tokio::spawn(async move { conductor.pass("another hop").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!hop.is_finished());
        conductor.set_pace(Pace::Fast);
        hop.await.unwrap();
    }
}
