//! A circuit breaker per provider: after a run of retryable failures the worker stops
//! calling a provider for a while and answers `Retryable.CircuitOpen` at once, so a PostgreSQL
//! outage costs one failed call per cool-down instead of one per queued task; Step Functions'
//! backoff spaces the retries.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BreakerState {
    Closed {
        failures: u32,
    },
    Open {
        until: DateTime<Utc>,
    },
    /// One trial call is allowed; its result closes or re-opens the circuit.
    HalfOpen {
        trial_running: bool,
    },
}

/// What the breaker says about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Allowed,
    /// The circuit is open: do not call the provider before `until`.
    Refused {
        until: DateTime<Utc>,
    },
}

pub struct CircuitBreakers {
    threshold: u32,
    cool_down: Duration,
    providers: Mutex<HashMap<String, BreakerState>>,
}

impl CircuitBreakers {
    /// Opens a provider's circuit after `threshold` retryable failures in a row, for
    /// `cool_down`.
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cool_down,
            providers: Mutex::new(HashMap::new()),
        }
    }

    pub fn permit(&self, provider: &str, now: DateTime<Utc>) -> Permit {
        let mut all = self.providers.lock();
        let state = all
            .entry(provider.to_owned())
            .or_insert(BreakerState::Closed { failures: 0 });
        match *state {
            BreakerState::Closed { .. } => Permit::Allowed,
            BreakerState::Open { until } if now < until => Permit::Refused { until },
            BreakerState::Open { .. }
            | BreakerState::HalfOpen {
                trial_running: false,
            } => {
                *state = BreakerState::HalfOpen {
                    trial_running: true,
                };
                Permit::Allowed
            }
            BreakerState::HalfOpen {
                trial_running: true,
            } => Permit::Refused {
                until: now + chrono::Duration::seconds(1),
            },
        }
    }

    pub fn record_success(&self, provider: &str) {
        self.providers
            .lock()
            .insert(provider.to_owned(), BreakerState::Closed { failures: 0 });
    }

    /// Records a retryable failure (non-retryable ones say nothing about the provider's health).
    pub fn record_failure(&self, provider: &str, now: DateTime<Utc>) {
        let mut all = self.providers.lock();
        let state = all
            .entry(provider.to_owned())
            .or_insert(BreakerState::Closed { failures: 0 });
        let open = BreakerState::Open {
            until: now + chrono::Duration::from_std(self.cool_down).unwrap_or_default(),
        };
        *state = match *state {
            BreakerState::Closed { failures } if failures + 1 >= self.threshold => open,
            BreakerState::Closed { failures } => BreakerState::Closed {
                failures: failures + 1,
            },
            BreakerState::HalfOpen { .. } | BreakerState::Open { .. } => open,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_a_run_of_failures_and_half_opens_after_the_cool_down() {
        let b = CircuitBreakers::new(3, Duration::from_secs(30));
        let t0 = Utc::now();
        for _ in 0..2 {
            b.record_failure("postgres", t0);
        }
        assert_eq!(b.permit("postgres", t0), Permit::Allowed);
        b.record_failure("postgres", t0);
        assert!(matches!(b.permit("postgres", t0), Permit::Refused { .. }));
        assert_eq!(b.permit("git", t0), Permit::Allowed, "per provider");

        let later = t0 + chrono::Duration::seconds(31);
        assert_eq!(b.permit("postgres", later), Permit::Allowed, "one trial");
        assert!(
            matches!(b.permit("postgres", later), Permit::Refused { .. }),
            "only one"
        );
        b.record_failure("postgres", later);
        assert!(
            matches!(b.permit("postgres", later), Permit::Refused { .. }),
            "re-opened"
        );
        let much_later = later + chrono::Duration::seconds(31);
        assert_eq!(b.permit("postgres", much_later), Permit::Allowed);
        b.record_success("postgres");
        assert_eq!(b.permit("postgres", much_later), Permit::Allowed);
        assert_eq!(
            b.permit("postgres", much_later),
            Permit::Allowed,
            "closed again"
        );
    }

    #[test]
    fn successes_reset_the_count() {
        let b = CircuitBreakers::new(2, Duration::from_secs(30));
        let t0 = Utc::now();
        b.record_failure("p", t0);
        b.record_success("p");
        b.record_failure("p", t0);
        assert_eq!(b.permit("p", t0), Permit::Allowed);
    }
}
