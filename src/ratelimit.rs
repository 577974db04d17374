//! Rate limiting for warnings on the data path: a hostile sender must not be
//! able to flood the operator's log. The first event in each window is let
//! through; the rest are counted and reported with the next line that passes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Lets one event through per `window`, counting the ones it suppressed.
#[derive(Debug)]
pub struct RateLimiter {
    start: Instant,
    window_ms: u64,
    /// Milliseconds since `start` at which the next event may pass (+1 so 0
    /// means "never logged").
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimiter {
    pub fn new(window: Duration) -> Self {
        RateLimiter {
            start: Instant::now(),
            window_ms: window.as_millis().max(1) as u64,
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this event should be logged, `n` being how many were
    /// suppressed since the last one; `None` when it should be skipped.
    pub fn check(&self) -> Option<u64> {
        let now = self.start.elapsed().as_millis() as u64 + 1;
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self.next_ms.compare_exchange(next, now + self.window_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(Duration::from_secs(10))
    }
}

/// `warn!` at most once per limiter window, with the suppressed count.
#[macro_export]
macro_rules! warn_limited {
    ($limiter:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $limiter.check() {
            tracing::warn!(suppressed, $($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_passes_then_counts_suppressed() {
        let r = RateLimiter::new(Duration::from_secs(3600));
        assert_eq!(r.check(), Some(0));
        assert_eq!(r.check(), None);
        assert_eq!(r.check(), None);
        assert_eq!(r.suppressed.load(Ordering::Relaxed), 2);
    }
}
