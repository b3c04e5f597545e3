//! The simulated clock.
//!
//! Mail lessons span minutes and hours ("the server retries in 15
//! minutes"), but a class has seconds. So simulated time does not follow
//! the wall clock: it stands still while anything is happening, and when
//! the whole world is idle it *jumps* to the next thing scheduled. This is
//! discrete-event simulation, the method of network simulators like ns-3.
//!
//! "Happening" is counted with [`Activity`] tokens. A task that does
//! simulated work (a scenario step, a delivery attempt) holds one. While it
//! sleeps on the simulated clock its token does not count; the clock hands
//! it back when it wakes the task, so the world never looks idle in the gap
//! between a wake-up and the task running. When no token counts, the clock
//! driver moves `now` to the earliest timer and wakes it, after a short
//! real pause in live mode so the class sees time pass.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::Pace;

/// The simulated clock of one world. Cheap to clone.
#[derive(Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    // Bumped on every change so the driver and idle-waiters re-check.
    changes: watch::Sender<u64>,
}

struct State {
    now: Duration,
    active: usize,
    timers: BinaryHeap<Reverse<Timer>>,
    next_id: u64,
}

struct Timer {
    at: Duration,
    id: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.id) == (other.at, other.id)
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.id).cmp(&(other.at, other.id))
    }
}

/// In live mode, one real second shows this much idle simulated time...
const LIVE_TIME_SCALE: u32 = 30;
/// ...but no idle jump takes longer than this (before the speed factor),
/// so "retry in 4 hours" is a short pause, not a coffee break.
const LIVE_MAX_PAUSE: Duration = Duration::from_secs(3);

/// The real pause that shows `gap` of simulated time in live mode.
pub fn live_pause(gap: Duration, speed: f64) -> Duration {
    (gap / LIVE_TIME_SCALE).min(LIVE_MAX_PAUSE).div_f64(speed.max(0.01))
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        let (changes, _) = watch::channel(0);
        Clock { inner: Arc::new(Inner { state: Mutex::new(State { now: Duration::ZERO, active: 0, timers: BinaryHeap::new(), next_id: 0 }), changes }) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Simulated time since the start.
    pub fn now(&self) -> Duration {
        self.lock().now
    }

    /// Moves simulated time forward by `by` while work goes on: something
    /// took that long (a slow server). Timers that fall due meanwhile fire
    /// as soon as the world is idle.
    pub fn advance(&self, by: Duration) {
        self.lock().now += by;
        self.changed();
    }

    /// Starts a piece of simulated work; the clock will not jump while it
    /// (or any clone of it) is alive and awake.
    pub fn activity(&self) -> Activity {
        self.lock().active += 1;
        Activity { clock: self.clone() }
    }

    /// True when nothing is happening and nothing is scheduled.
    pub fn is_idle(&self) -> bool {
        let state = self.lock();
        state.active == 0 && state.timers.is_empty()
    }

    /// Waits until nothing is happening and nothing is scheduled: the story
    /// is over (unless something from outside starts a new one).
    pub async fn until_idle(&self) {
        let mut changes = self.inner.changes.subscribe();
        loop {
            changes.borrow_and_update();
            if self.is_idle() {
                return;
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Runs forever: whenever the world is idle and a timer is pending,
    /// advances simulated time to it and wakes its sleeper.
    pub async fn drive(self, pace: watch::Receiver<Pace>) {
        let mut changes = self.inner.changes.subscribe();
        loop {
            changes.borrow_and_update();
            let next = {
                let state = self.lock();
                if state.active == 0 { state.timers.peek().map(|Reverse(t)| t.at.saturating_sub(state.now)) } else { None }
            };
            if let Some(gap) = next {
                let pause = match *pace.borrow() {
                    Pace::Live { speed } => live_pause(gap, speed),
                    Pace::Fast | Pace::Step => Duration::ZERO,
                };
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                self.fire_due();
                continue;
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// If still idle, jumps to the earliest timer and wakes everything due.
    fn fire_due(&self) {
        let mut state = self.lock();
        if state.active > 0 {
            return; // something started meanwhile; let it run first
        }
        let Some(Reverse(first)) = state.timers.peek() else { return };
        state.now = state.now.max(first.at);
        while let Some(Reverse(timer)) = state.timers.peek() {
            if timer.at > state.now {
                break;
            }
            let Some(Reverse(timer)) = state.timers.pop() else { break };
            // The woken task gets its activity back *before* it runs, so
            // the world is never seen idle in between. A sleeper that gave
            // up waiting has dropped its receiver: nothing to count.
            if timer.wake.send(()).is_ok() {
                state.active += 1;
            }
        }
        drop(state);
        self.changed();
    }
}

/// A token for ongoing simulated work. Dropping it ends the work; cloning
/// it starts a parallel piece of work (e.g. one delivery per domain).
pub struct Activity {
    clock: Clock,
}

impl Clone for Activity {
    fn clone(&self) -> Self {
        self.clock.activity()
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        self.clock.lock().active -= 1;
        self.clock.changed();
    }
}

impl Activity {
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Sleeps for `duration` of simulated time.
    pub async fn sleep(&self, duration: Duration) {
        let at = self.clock.now() + duration;
        self.sleep_until(at).await
    }

    /// Sleeps until simulated time `at`. The world may jump there at once
    /// if nothing else is happening.
    pub async fn sleep_until(&self, at: Duration) {
        let (wake, woken) = oneshot::channel();
        let id = {
            let mut state = self.clock.lock();
            if at <= state.now {
                return;
            }
            let id = state.next_id;
            state.next_id += 1;
            state.timers.push(Reverse(Timer { at, id, wake }));
            // While asleep this activity does not hold the clock back.
            state.active -= 1;
            id
        };
        self.clock.changed();
        let mut guard = Sleeping { clock: &self.clock, id, woken: Some(woken) };
        if let Some(woken) = guard.woken.as_mut() {
            let _ = woken.await;
        }
        guard.woken = None; // woke normally: the driver already counted us
    }
}

/// Restores the activity count if a sleep is abandoned (its future dropped,
/// e.g. the losing branch of a `select!`).
struct Sleeping<'a> {
    clock: &'a Clock,
    id: u64,
    woken: Option<oneshot::Receiver<()>>,
}

impl Drop for Sleeping<'_> {
    fn drop(&mut self) {
        if let Some(mut woken) = self.woken.take() {
            let mut state = self.clock.lock();
            // Under the lock the driver cannot fire meanwhile. If it already
            // fired, it counted us; otherwise we are awake again and count
            // ourselves, and take our timer away so time never jumps to a
            // moment nobody waits for.
            if woken.try_recv().is_err() {
                state.active += 1;
                let id = self.id;
                state.timers.retain(|Reverse(timer)| timer.id != id);
            }
            drop(state);
            self.clock.changed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_world_jumps_to_the_next_timer_in_order() {
        let clock = Clock::new();
        let (_pace_tx, pace) = watch::channel(Pace::Fast);
        tokio::spawn(clock.clone().drive(pace));
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, secs) in [("retry", 900u64), ("step", 20), ("later", 3600)] {
            let activity = clock.activity();
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                activity.sleep(Duration::from_secs(secs)).await;
                log.lock().unwrap().push((name, activity.clock().now().as_secs()));
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        clock.until_idle().await;
        assert_eq!(*log.lock().unwrap(), vec![("step", 20), ("retry", 900), ("later", 3600)]);
    }

    #[tokio::test]
    async fn busy_world_holds_time_still_and_abandoned_sleeps_are_safe() {
        let clock = Clock::new();
        let (_pace_tx, pace) = watch::channel(Pace::Fast);
        tokio::spawn(clock.clone().drive(pace));
        let busy = clock.activity();
        let sleeper = clock.activity();
        let timed_out = tokio::time::timeout(Duration::from_millis(50), sleeper.sleep(Duration::from_secs(60))).await;
        assert!(timed_out.is_err(), "time must not move while `busy` works");
        assert_eq!(clock.now(), Duration::ZERO);
        drop(busy);
        // The abandoned sleep gave the activity back, so this sleep works.
        sleeper.sleep(Duration::from_secs(5)).await;
        assert_eq!(clock.now(), Duration::from_secs(5));
        drop(sleeper);
        clock.until_idle().await;
    }
}
