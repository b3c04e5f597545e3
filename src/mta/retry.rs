//! When to try again. A temporary failure (the next server is down, or
//! answered 4xx) is not the end: the message waits in the queue and is
//! retried later, each wait longer than the last ("exponential back-off",
//! so a struggling server is not hammered), until a maximum age after which
//! the sender gets a bounce.

use std::time::Duration;

use crate::scenario::RetrySettings;

/// How long to wait after failed attempt number `attempt` (1 = the first).
pub fn delay(settings: &RetrySettings, attempt: u32) -> Duration {
    let factor = settings.factor.max(1.0);
    let exponent = attempt.saturating_sub(1).min(64) as i32;
    let delay = settings.first.0.as_secs_f64() * factor.powi(exponent);
    Duration::from_secs_f64(delay.min(settings.max_delay.0.as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_up_to_the_maximum() {
        let settings = RetrySettings::default();
        let minutes: Vec<u64> = (1..=6).map(|a| delay(&settings, a).as_secs() / 60).collect();
        assert_eq!(minutes, vec![5, 10, 20, 40, 60, 60]);
    }
}
