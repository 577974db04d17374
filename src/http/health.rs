//! `/api/v1/health` (`Health_Check On`): Fluent Bit's rule. Once a second
//! the sums of every output's `errors` and `retries_failed` are recorded in a
//! ring of `HC_Period` snapshots; the endpoint compares the current sums with
//! the oldest snapshot still in the ring and fails (500 `error\n`) when more
//! than `HC_Errors_Count` errors or `HC_Retry_Failure_Count` retry failures
//! happened in between, else answers 200 `ok\n` (also before any snapshot).
//!
//! Unlike Fluent Bit, the newest side of the comparison is read live rather
//! than from the last snapshot, and the first snapshot is taken when the
//! server starts, so errors of the first second count too.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::engine::service::Service;
use crate::stats::Telemetry;

/// Cumulative output failure counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub errors: u64,
    pub retries_failed: u64,
}

impl Sums {
    pub fn of(t: &Telemetry) -> Sums {
        t.outputs.iter().fold(Sums::default(), |s, o| Sums {
            errors: s.errors + o.counters.errors.get(),
            retries_failed: s.retries_failed + o.counters.retries_failed.get(),
        })
    }
}

#[derive(Debug)]
pub struct HealthCheck {
    errors_count: u64,
    retry_failure_count: u64,
    period: usize,
    ring: Mutex<VecDeque<Sums>>,
}

impl HealthCheck {
    /// From `[SERVICE]`'s `HC_Errors_Count`, `HC_Retry_Failure_Count`, `HC_Period`.
    pub fn new(service: &Service) -> HealthCheck {
        let period = service.hc_period.clamp(1, 86_400) as usize;
        HealthCheck {
            errors_count: service.hc_errors_count,
            retry_failure_count: service.hc_retry_failure_count,
            period,
            ring: Mutex::new(VecDeque::with_capacity(period)),
        }
    }

    /// The once-a-second snapshot.
    pub fn record(&self, now: Sums) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == self.period {
            ring.pop_front();
        }
        ring.push_back(now);
    }

    /// Whether the failures since the oldest snapshot are within the limits.
    pub fn healthy(&self, now: Sums) -> bool {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = ring.front().copied().unwrap_or(now);
        let errors = now.errors.saturating_sub(oldest.errors);
        let failed = now.retries_failed.saturating_sub(oldest.retries_failed);
        errors <= self.errors_count && failed <= self.retry_failure_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(errors: u64, failures: u64, period: u64) -> HealthCheck {
        HealthCheck::new(&Service::from_text(&format!(
            "[SERVICE]\n    Health_Check On\n    HC_Errors_Count {errors}\n    \
             HC_Retry_Failure_Count {failures}\n    HC_Period {period}\n"
        )))
    }

    #[test]
    fn service_reads_the_health_check_keys_with_fluent_bits_defaults() {
        let d = Service::from_text("[SERVICE]\n    HTTP_Server On\n");
        assert_eq!((d.health_check, d.hc_errors_count, d.hc_retry_failure_count, d.hc_period), (false, 5, 5, 60));
        let s = Service::from_text(
            "[SERVICE]\n    Health_Check On\n    HC_Errors_Count 1\n    HC_Retry_Failure_Count 2\n    HC_Period 3\n",
        );
        assert_eq!((s.health_check, s.hc_errors_count, s.hc_retry_failure_count, s.hc_period), (true, 1, 2, 3));
    }

    fn s(errors: u64, retries_failed: u64) -> Sums {
        Sums { errors, retries_failed }
    }

    #[test]
    fn healthy_before_any_snapshot_and_at_the_limit() {
        let hc = check(5, 5, 60);
        assert!(hc.healthy(s(100, 100)));
        hc.record(s(0, 0));
        assert!(hc.healthy(s(5, 5)));
        assert!(!hc.healthy(s(6, 0)));
        assert!(!hc.healthy(s(0, 6)));
    }

    #[test]
    fn errors_older_than_the_period_are_forgotten() {
        let hc = check(2, 2, 3);
        hc.record(s(0, 0));
        hc.record(s(3, 0));
        assert!(!hc.healthy(s(3, 0)));
        hc.record(s(3, 0));
        hc.record(s(3, 0)); // the 0 snapshot leaves the 3-snapshot window
        assert!(hc.healthy(s(3, 0)));
        assert!(hc.healthy(s(5, 0)));
        assert!(!hc.healthy(s(6, 0)));
    }
}
