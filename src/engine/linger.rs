//! How long the pipeline thread sleeps once it has emptied the hand-off,
//! so that what arrives meanwhile is taken in one wake-up.
//!
//! Without a linger, every batch the receiver hands over wakes the
//! pipeline thread, and over UDP a batch is one or two datagrams: two
//! context switches per datagram on a pod's single core. A fixed 250 µs
//! (the tenth round) cut job (c) over UDP from 1.41× the floor to
//! 1.03–1.15× blocking. Longer at high rates measured worse (the
//! thirteenth round, 100k lines/s: 1,000 and 3,000 µs cut the pipeline's
//! scheduling samples but raised its own work and writes more: bigger
//! groups, colder caches). At low rates 250 µs is too short to gather
//! anything: at 5k lines/s over unix_udp the pipeline woke several times
//! a millisecond for a line or two, its sleeping and waking 38% of its
//! samples, and the receiver paid a futex wake-up for each.
//!
//! So the linger follows the groups it gathers: it doubles (up to
//! [`LONGEST`]) while a wake-up finds fewer than [`FEW`] messages and
//! halves (down to [`SHORTEST`]) when one finds more than [`MANY`]. At
//! 100k lines/s a 250 µs linger gathers ~25 and stays; at 5k lines/s it
//! grows to 2 ms and gathers ~10. Lines reach the files' buffers at most
//! 2 ms later (files are written every `Flush` second anyway), and since
//! the pipeline lingers only after emptying the hand-off (its whole
//! budget handed back), the receiver never waits on it meanwhile, even
//! with `Buffer_Full wait`: what piles up is 2 ms of traffic at most, and
//! after one such wake-up the linger is short again.

use std::time::Duration;

/// The linger at high rates, and where it starts.
pub const SHORTEST: Duration = Duration::from_micros(250);
/// The linger at low rates.
pub const LONGEST: Duration = Duration::from_millis(2);
/// A wake-up that found fewer messages than this lingers longer next time.
pub const FEW: usize = 16;
/// A wake-up that found more than this lingers shorter next time.
pub const MANY: usize = 64;

#[derive(Debug)]
pub struct Linger(Duration);

impl Default for Linger {
    fn default() -> Self {
        Linger(SHORTEST)
    }
}

impl Linger {
    /// After a wake-up that took `messages` and emptied the hand-off: how
    /// long to sleep before looking again.
    pub fn after(&mut self, messages: usize) -> Duration {
        if messages < FEW {
            self.0 = (self.0 * 2).min(LONGEST);
        } else if messages > MANY {
            self.0 = (self.0 / 2).max(SHORTEST);
        }
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_while_wake_ups_find_little_and_shrinks_when_they_find_much() {
        let mut l = Linger::default();
        assert_eq!(l.after(30), SHORTEST, "a middling group keeps it");
        assert_eq!(l.after(2), SHORTEST * 2);
        assert_eq!(l.after(2), SHORTEST * 4);
        assert_eq!(l.after(2), LONGEST);
        assert_eq!(l.after(0), LONGEST, "capped");
        assert_eq!(l.after(FEW), LONGEST, "FEW itself is not few");
        assert_eq!(l.after(MANY + 1), LONGEST / 2);
        assert_eq!(l.after(500), LONGEST / 4);
        assert_eq!(l.after(500), SHORTEST);
        assert_eq!(l.after(500), SHORTEST, "floored");
        assert_eq!(l.after(MANY), SHORTEST, "MANY itself is not many");
    }
}
