//! The simulated clock, through its public API: time jumps only to things
//! that are really due.

use std::time::Duration;

use mailflow::conductor::{Clock, Pace};
use tokio::sync::watch;

use crate::common::GENEROUS;

// A sleep given up (the losing side of a `select!`, e.g. a retry timer cancelled) must not move simulated time later.
#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_sleep_does_not_move_time() {
    let clock = Clock::new();
    let (_pace, pace) = watch::channel(Pace::Fast);
    tokio::spawn(clock.clone().drive(pace));
    let busy = clock.activity();
    let sleeper = clock.activity();
    // While `busy` works, time stands still, so this sleep can only be given up.
    let gave_up = tokio::time::timeout(Duration::from_millis(50), sleeper.sleep(Duration::from_secs(4 * 3600))).await;
    assert!(gave_up.is_err(), "the sleep cannot end while the world is busy");
    drop(sleeper);
    drop(busy);
    tokio::time::timeout(GENEROUS, clock.until_idle()).await.expect("the clock never became idle");
    assert!(clock.is_idle());
    assert_eq!(clock.now(), Duration::ZERO, "time jumped to a sleep nobody waits for");
}

// Timers that are really due still fire in order after one was abandoned.
#[tokio::test(flavor = "multi_thread")]
async fn real_timers_still_fire_after_an_abandoned_one() {
    let clock = Clock::new();
    let (_pace, pace) = watch::channel(Pace::Fast);
    tokio::spawn(clock.clone().drive(pace));
    let busy = clock.activity();
    let sleeper = clock.activity();
    let _ = tokio::time::timeout(Duration::from_millis(50), sleeper.sleep(Duration::from_secs(60))).await;
    drop(busy);
    tokio::time::timeout(GENEROUS, sleeper.sleep(Duration::from_secs(90))).await.expect("the real sleep never ended");
    assert_eq!(clock.now(), Duration::from_secs(90));
    drop(sleeper);
    tokio::time::timeout(GENEROUS, clock.until_idle()).await.expect("the clock never became idle");
    assert_eq!(clock.now(), Duration::from_secs(90));
}
