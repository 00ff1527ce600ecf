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
#[derive(Debug)]
pub enum Permit<'a> {
    /// Call the provider, then report how it went on the permit.
    Allowed(CallPermit<'a>),
    /// The circuit is open: do not call the provider before `until`.
    Refused { until: DateTime<Utc> },
}

/// Leave to call a provider once. Report the provider's health with
/// [`succeeded`](Self::succeeded) or [`failed`](Self::failed); a permit dropped without a
/// report (the call was cancelled, failed for a reason of its own, found another delivery in
/// progress, or errored before it reached the provider) says nothing about the provider, and
/// if it was the half-open trial it lets the next call be the trial, so that the circuit can
/// never stay refused for want of a report.
#[derive(Debug)]
#[must_use = "report the call's outcome, or drop the permit to say it told nothing"]
pub struct CallPermit<'a> {
    breakers: &'a CircuitBreakers,
    provider: String,
    trial: bool,
}

impl CallPermit<'_> {
    /// The provider answered: the circuit closes.
    pub fn succeeded(self) {
        self.breakers.record_success(&self.provider);
        std::mem::forget(self);
    }

    /// A retryable failure of the provider's: counts towards opening the circuit (or
    /// re-opens it, after a trial).
    pub fn failed(self, now: DateTime<Utc>) {
        self.breakers.record_failure(&self.provider, now);
        std::mem::forget(self);
    }

    /// Reports a driver call's result: success closes the circuit, a retryable failure counts
    /// towards opening it, and a refusal (non-retryable: the request's fault, not the
    /// provider's) says nothing.
    pub fn report<T>(
        self,
        result: &Result<T, crate::provisioning::DriverError>,
        now: DateTime<Utc>,
    ) {
        match result {
            Ok(_) => self.succeeded(),
            Err(crate::provisioning::DriverError::Retryable { .. }) => self.failed(now),
            Err(crate::provisioning::DriverError::NonRetryable { .. }) => drop(self),
        }
    }
}

impl Drop for CallPermit<'_> {
    fn drop(&mut self) {
        if self.trial {
            self.breakers.release_trial(&self.provider);
        }
    }
}

pub struct CircuitBreakers {
    threshold: u32,
    cool_down: Duration,
    providers: Mutex<HashMap<String, BreakerState>>,
}

impl std::fmt::Debug for CircuitBreakers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreakers")
            .field("threshold", &self.threshold)
            .field("cool_down", &self.cool_down)
            .finish_non_exhaustive()
    }
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

    pub fn permit(&self, provider: &str, now: DateTime<Utc>) -> Permit<'_> {
        let mut all = self.providers.lock();
        let state = all
            .entry(provider.to_owned())
            .or_insert(BreakerState::Closed { failures: 0 });
        let allowed = |trial| {
            Permit::Allowed(CallPermit {
                breakers: self,
                provider: provider.to_owned(),
                trial,
            })
        };
        match *state {
            BreakerState::Closed { .. } => allowed(false),
            BreakerState::Open { until } if now < until => Permit::Refused { until },
            BreakerState::Open { .. }
            | BreakerState::HalfOpen {
                trial_running: false,
            } => {
                *state = BreakerState::HalfOpen {
                    trial_running: true,
                };
                allowed(true)
            }
            BreakerState::HalfOpen {
                trial_running: true,
            } => Permit::Refused {
                until: now + chrono::Duration::seconds(1),
            },
        }
    }

    fn record_success(&self, provider: &str) {
        self.providers
            .lock()
            .insert(provider.to_owned(), BreakerState::Closed { failures: 0 });
    }

    /// A trial that told nothing: the next call may be the trial.
    fn release_trial(&self, provider: &str) {
        if let Some(state @ BreakerState::HalfOpen { .. }) = self.providers.lock().get_mut(provider)
        {
            *state = BreakerState::HalfOpen {
                trial_running: false,
            };
        }
    }

    /// Records a retryable failure (non-retryable ones say nothing about the provider's health).
    fn record_failure(&self, provider: &str, now: DateTime<Utc>) {
        let mut all = self.providers.lock();
        let state = all
            .entry(provider.to_owned())
            .or_insert(BreakerState::Closed { failures: 0 });
        let open = BreakerState::Open {
            until: now + chrono::Duration::from_std(self.cool_down).unwrap_or_default(),
        };
        *state = match *state {
            BreakerState::Closed { failures } if failures.saturating_add(1) >= self.threshold => {
                open
            }
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

    fn allowed(permit: Permit<'_>) -> CallPermit<'_> {
        match permit {
            Permit::Allowed(p) => p,
            Permit::Refused { until } => panic!("refused until {until}"),
        }
    }

    fn refused(permit: &Permit<'_>) -> bool {
        matches!(permit, Permit::Refused { .. })
    }

    fn open(b: &CircuitBreakers, provider: &str, at: DateTime<Utc>) {
        while let Permit::Allowed(p) = b.permit(provider, at) {
            p.failed(at);
        }
    }

    #[test]
    fn opens_after_a_run_of_failures_and_half_opens_after_the_cool_down() {
        let b = CircuitBreakers::new(3, Duration::from_secs(30));
        let t0 = Utc::now();
        for _ in 0..2 {
            allowed(b.permit("postgres", t0)).failed(t0);
        }
        let third = allowed(b.permit("postgres", t0));
        third.failed(t0);
        assert!(refused(&b.permit("postgres", t0)));
        drop(allowed(b.permit("git", t0)));

        let later = t0 + chrono::Duration::seconds(31);
        let trial = allowed(b.permit("postgres", later));
        assert!(refused(&b.permit("postgres", later)), "only one trial");
        trial.failed(later);
        assert!(refused(&b.permit("postgres", later)), "re-opened");
        let much_later = later + chrono::Duration::seconds(31);
        allowed(b.permit("postgres", much_later)).succeeded();
        let a = allowed(b.permit("postgres", much_later));
        let b2 = allowed(b.permit("postgres", much_later));
        drop((a, b2));
    }

    #[test]
    fn successes_reset_the_count() {
        let b = CircuitBreakers::new(2, Duration::from_secs(30));
        let t0 = Utc::now();
        allowed(b.permit("p", t0)).failed(t0);
        allowed(b.permit("p", t0)).succeeded();
        allowed(b.permit("p", t0)).failed(t0);
        drop(allowed(b.permit("p", t0)));
    }

    #[test]
    fn a_trial_that_tells_nothing_lets_the_next_call_be_the_trial() {
        let b = CircuitBreakers::new(1, Duration::from_secs(30));
        let t0 = Utc::now();
        open(&b, "postgres", t0);
        assert!(refused(&b.permit("postgres", t0)));
        let later = t0 + chrono::Duration::seconds(31);
        // The trial is cancelled, fails for a reason of its own (non-retryable), finds its
        // task in progress elsewhere, or errors before the provider: it is dropped unreported.
        for _ in 0..4 {
            let trial = allowed(b.permit("postgres", later));
            assert!(refused(&b.permit("postgres", later)), "one trial at a time");
            drop(trial);
        }
        // Then a healthy task runs, and the circuit closes.
        allowed(b.permit("postgres", later)).succeeded();
        let one = allowed(b.permit("postgres", later));
        let two = allowed(b.permit("postgres", later));
        drop((one, two));
    }

    #[test]
    fn an_unreported_call_on_a_closed_circuit_changes_nothing() {
        let b = CircuitBreakers::new(2, Duration::from_secs(30));
        let t0 = Utc::now();
        allowed(b.permit("p", t0)).failed(t0);
        drop(allowed(b.permit("p", t0)));
        // Still one failure short of opening.
        allowed(b.permit("p", t0)).failed(t0);
        assert!(refused(&b.permit("p", t0)));
    }
}
