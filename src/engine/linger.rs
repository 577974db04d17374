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
//! grows to ~2 ms and gathers ~10. Lines reach the files' buffers at most
//! 2 ms later (files are written every `Flush` second anyway). The
//! pipeline lingers only after emptying the hand-off (its whole budget
//! handed back), and the longest linger is what a million 1 KiB lines a
//! second take to fill half of `Buffer_Limit` ([`longest_for`]: 1.95 ms
//! at the default 4 MB, less with a smaller limit down to 512 KiB; below
//! that it stays at 250 µs, as before it adapted), so a burst that starts
//! while the pipeline sleeps does not fill the hand-off (drops with
//! `Buffer_Full drop`, a paused receiver with `wait`), nor keep the
//! linger long: what the wake-ups take until the hand-off is empty again
//! counts as one gathering, which finds many and halves it.

use std::time::Duration;

/// The linger at high rates, and where it starts.
pub const SHORTEST: Duration = Duration::from_micros(250);
/// The linger at low rates.
pub const LONGEST: Duration = Duration::from_millis(2);
/// A wake-up that found fewer messages than this lingers longer next time.
pub const FEW: usize = 16;
/// A wake-up that found more than this lingers shorter next time.
pub const MANY: usize = 64;

/// The longest linger for a hand-off budget of `limit` bytes: the time a
/// million 1 KiB lines a second take to fill half of it, within
/// [`SHORTEST`]..=[`LONGEST`].
pub fn longest_for(limit: usize) -> Duration {
    Duration::from_micros((limit / 2 / 1024) as u64).clamp(SHORTEST, LONGEST)
}

#[derive(Debug)]
pub struct Linger {
    now: Duration,
    longest: Duration,
}

impl Linger {
    /// Starting at [`SHORTEST`], growing to `longest` at most.
    pub fn new(longest: Duration) -> Linger {
        Linger { now: SHORTEST, longest: longest.max(SHORTEST) }
    }

    /// After a wake-up that took `messages` and emptied the hand-off: how
    /// long to sleep before looking again.
    pub fn after(&mut self, messages: usize) -> Duration {
        if messages < FEW {
            self.now = (self.now * 2).min(self.longest);
        } else if messages > MANY {
            self.now = (self.now / 2).max(SHORTEST);
        }
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_linger_keeps_a_burst_within_half_the_buffer() {
        // The default Buffer_Limit (4 MB): 1,953 µs.
        assert_eq!(longest_for(4_000_000), Duration::from_micros(1953));
        assert_eq!(longest_for(64 << 20), LONGEST);
        assert_eq!(longest_for(1 << 20), Duration::from_micros(512));
        assert_eq!(longest_for(64 * 1024), SHORTEST);
        let mut l = Linger::new(longest_for(1 << 20));
        for _ in 0..10 {
            l.after(0);
        }
        assert_eq!(l.after(0), Duration::from_micros(512));
    }

    #[test]
    fn grows_while_wake_ups_find_little_and_shrinks_when_they_find_much() {
        let mut l = Linger::new(LONGEST);
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
