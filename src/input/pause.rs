//! When a UDP receiver may pause after draining its socket, so that what
//! arrives meanwhile is taken in one `recvmmsg` instead of one wake-up per
//! datagram.
//!
//! Why: over loopback UDP every datagram sent to a receiver blocked in
//! `recvmmsg` wakes it, so a receiver that keeps up takes one or two
//! datagrams a call. Measured here (`perf record -e
//! syscalls:sys_exit_recvmmsg`, job (c) paced at 100k/s in 1 ms bursts):
//! 1.6 datagrams a call and ~230 context switches per 1,000 messages for
//! gatelog, 1.45 and ~190 for the floor receiver; the wake-ups, not the
//! copying, are most of the floor's 4.2 µs a message. A UDP socket with a
//! large receive buffer holds thousands of datagrams, so pausing a quarter
//! of a millisecond risks nothing: a burst of 100 lines took ~60 calls and
//! ~23 context switches, with the pause ~6 switches (`cs/1kmsg` 231 → 59),
//! and (c) 4.33 → 2.72 µs a line (docs/performance.md).
//!
//! When it is safe: the pause is at most a quarter of what the granted
//! receive buffer holds at a sustained million ~1 KiB datagrams a second
//! (ten times the benchmark's paced rate), capped at [`MAX_PAUSE`]; below
//! [`MIN_PAUSE`] (the default 208 KiB buffer) there is no pause at all. A
//! pause is taken only after a call that emptied the queue (fewer
//! datagrams than slots), whose batch the pipeline took at once, and that
//! waited less than half a pause for its first datagram (and, right after
//! a pause, which leaves little to wait for, whose pause gathered two or
//! more): traffic that flows fast enough to bring two or more during the
//! pause. A slower trickle (a datagram every 125 µs or more at the longest
//! pause) is taken as it comes, since a pause that gathers one datagram
//! costs the wake-up it saves. If the kernel ever drops a
//! datagram, pausing stops for [`BACKOFF`] whatever the cause, so a rate
//! the estimate did not foresee costs CPU rather than lines. Unix datagram
//! sockets never pause: their queue holds 11 datagrams by default
//! (`max_dgram_qlen`), nginx drops a line the moment it is full, and that
//! loss shows only in nginx's error log, so there is no drop to back off on.

use std::time::{Duration, Instant};

/// The longest pause (what piles up meanwhile is also how much later a
/// line reaches the pipeline).
pub const MAX_PAUSE: Duration = Duration::from_micros(250);
/// Shorter pauses save too little to be worth the extra timer wake-up.
pub const MIN_PAUSE: Duration = Duration::from_micros(50);
/// How long pausing stays off after the kernel dropped a datagram.
pub const BACKOFF: Duration = Duration::from_secs(10);
/// Receive-buffer bytes one ~1 KiB datagram takes (the kernel charges its
/// buffer with the datagram's whole allocation, about twice its length).
const BYTES_PER_DATAGRAM: usize = 2048;
/// The sustained arrival rate the pause must absorb: datagrams a µs.
const DATAGRAMS_PER_US: usize = 1;

/// The pause a UDP socket with `granted` receive-buffer bytes (as
/// `getsockopt(SO_RCVBUF)` reports them) can afford; zero for none.
pub fn udp_pause(granted: usize) -> Duration {
    let holds = granted / BYTES_PER_DATAGRAM;
    let us = holds / 4 / DATAGRAMS_PER_US;
    let pause = Duration::from_micros(us as u64).min(MAX_PAUSE);
    if pause < MIN_PAUSE {
        Duration::ZERO
    } else {
        pause
    }
}

/// What one `recvmmsg` call found, as [`Pauser::after`] weighs it.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// Datagrams it returned, of `slots` it could.
    pub taken: usize,
    pub slots: usize,
    /// How long the call took: its wait for the first datagram, plus the
    /// copy into the batch (microseconds; only datagrams of tens of KiB
    /// could make a flow look like a trickle, which merely skips a pause).
    pub waited: Duration,
    /// The pipeline took the batch at once (no `Buffer_Full` wait or drop:
    /// after one, the socket has been filling meanwhile).
    pub handed_over: bool,
    /// The kernel reported drops since the previous call.
    pub dropped: bool,
}

/// One receiver's pausing state.
#[derive(Debug)]
pub struct Pauser {
    pause: Duration,
    /// The previous call was followed by a pause: a short `waited` says
    /// little then (what the pause gathered was already queued).
    paused: bool,
    off_until: Option<Instant>,
}

impl Pauser {
    /// `pause`: what the socket affords ([`udp_pause`]); zero never pauses.
    pub fn new(pause: Duration) -> Pauser {
        Pauser { pause, paused: false, off_until: None }
    }

    /// Whether this receiver may ever pause (else the caller need not ask).
    pub fn enabled(&self) -> bool {
        !self.pause.is_zero()
    }

    /// After `call`, at `now`: how long to pause before the next call, if
    /// at all. Traffic flows when the call found its first datagram within
    /// half a pause and, right after a pause, that the pause gathered two
    /// or more (a call after a pause that gathered nothing waits for the
    /// next datagram, however far off). A drop turns pausing off for [`BACKOFF`]; true in the second
    /// value when this call is the one that turned it off (to be logged).
    pub fn after(&mut self, call: Call, now: Instant) -> (Option<Duration>, bool) {
        if self.pause.is_zero() {
            return (None, false);
        }
        let flowing = call.waited < self.pause / 2 && (!self.paused || call.taken >= 2);
        self.paused = false;
        if call.dropped {
            let newly = self.off_until.is_none_or(|t| now >= t);
            self.off_until = Some(now + BACKOFF);
            return (None, newly);
        }
        if self.off_until.is_some_and(|t| now < t) {
            return (None, false);
        }
        self.off_until = None;
        self.paused = flowing && call.taken < call.slots && call.handed_over;
        (self.paused.then_some(self.pause), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_follows_the_receive_buffer() {
        // The kernel's default (208 KiB) holds ~100 lines: no pause.
        assert_eq!(udp_pause(212_992), Duration::ZERO);
        assert_eq!(udp_pause(0), Duration::ZERO);
        // Just enough for MIN_PAUSE.
        assert_eq!(udp_pause(50 * 4 * BYTES_PER_DATAGRAM), MIN_PAUSE);
        assert_eq!(udp_pause(50 * 4 * BYTES_PER_DATAGRAM - 1), Duration::ZERO);
        assert_eq!(udp_pause(100 * 4 * BYTES_PER_DATAGRAM), Duration::from_micros(100));
        // Receive_Buffer_Size 4M (granted 8 MiB) and above: the cap.
        assert_eq!(udp_pause(8 << 20), MAX_PAUSE);
        assert_eq!(udp_pause(usize::MAX), MAX_PAUSE);
    }

    fn call(taken: usize, waited: Duration) -> Call {
        Call { taken, slots: 32, waited, handed_over: true, dropped: false }
    }

    #[test]
    fn pauses_only_while_traffic_flows_and_the_queue_was_emptied() {
        let t0 = Instant::now();
        let us = Duration::from_micros;
        let mut p = Pauser::new(MAX_PAUSE);
        assert!(p.enabled());
        // It waited half a pause or more: a trickle, taken as it comes.
        assert_eq!(p.after(call(1, MAX_PAUSE / 2), t0), (None, false));
        assert_eq!(p.after(call(1, us(900)), t0), (None, false));
        // A full call: more is waiting, no pause.
        assert_eq!(p.after(call(32, us(0)), t0), (None, false));
        // The pipeline could not take the batch at once: no pause.
        assert_eq!(p.after(Call { handed_over: false, ..call(2, us(0)) }, t0), (None, false));
        // The call found its datagram at once or nearly: pause.
        assert_eq!(p.after(call(1, MAX_PAUSE / 2 - us(1)), t0), (Some(MAX_PAUSE), false));
        // Right after a pause the call waits for nothing: what the pause
        // gathered decides. Two or more: keep pausing; one: a trickle.
        assert_eq!(p.after(call(5, us(0)), t0), (Some(MAX_PAUSE), false));
        assert_eq!(p.after(call(2, us(0)), t0), (Some(MAX_PAUSE), false));
        assert_eq!(p.after(call(1, us(0)), t0), (None, false));
        // Not after a pause any more: `waited` decides again.
        assert_eq!(p.after(call(1, us(0)), t0), (Some(MAX_PAUSE), false));
        // A call after a pause that gathered nothing waited for the next
        // burst: however much that brought, the traffic is a trickle.
        assert_eq!(p.after(call(4, us(700)), t0), (None, false));
        assert_eq!(p.after(call(1, us(0)), t0), (Some(MAX_PAUSE), false));
        let mut never = Pauser::new(Duration::ZERO);
        assert!(!never.enabled());
        assert_eq!(never.after(call(1, us(0)), t0), (None, false));
        assert_eq!(never.after(Call { dropped: true, ..call(1, us(0)) }, t0), (None, false));
    }

    #[test]
    fn a_kernel_drop_turns_pausing_off_for_the_backoff() {
        let t0 = Instant::now();
        let at = |d: Duration| t0 + d;
        let us = Duration::from_micros;
        let dropped = Call { dropped: true, ..call(1, us(0)) };
        let mut p = Pauser::new(MAX_PAUSE);
        assert_eq!(p.after(call(2, us(0)), t0), (Some(MAX_PAUSE), false));
        assert_eq!(p.after(dropped, at(us(5))), (None, true));
        // Further drops during the backoff extend it but are not news.
        assert_eq!(p.after(dropped, at(us(10))), (None, false));
        assert_eq!(p.after(call(2, us(0)), at(us(10) + BACKOFF / 2)), (None, false));
        assert_eq!(p.after(call(2, us(0)), at(us(10) + BACKOFF - us(1))), (None, false));
        assert_eq!(p.after(call(2, us(0)), at(us(10) + BACKOFF)), (Some(MAX_PAUSE), false));
    }
}
