//! The datagram receive loop: one thread per datagram socket that does
//! nothing but drain the kernel queue with `recvmmsg` and hand batches to the
//! pipeline. It never waits on anything downstream: a refused batch is
//! dropped and counted (`buffer_full`).
//!
//! Datagrams are taken whole up to `SLOT` bytes (Fluent Bit cuts them at
//! 32 KiB and the JSON then fails); a larger one is reported by the kernel
//! as truncated and counted as `oversize`. The slot buffers are allocated
//! zeroed and untouched, so only the pages real datagrams touch are resident.

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::handoff::{Batch, Handoff};
use super::pause::{Call, Pauser};
use super::watchdog::Watchdog;
use crate::ratelimit::RateLimiter;
use crate::record::Timestamp;
use crate::stats::{InputCounters, InputDrop};
use crate::warn_limited;

/// Largest datagram taken whole: above the kernel's default maximum for a
/// unix datagram (212,960 bytes with the default `wmem_default`).
pub const SLOT: usize = 256 * 1024;
/// Datagrams per `recvmmsg` call.
const SLOTS: usize = 32;

pub struct DgramReceiver {
    pub fd: RawFd,
    pub input: usize,
    pub handoff: Handoff,
    pub counters: Arc<InputCounters>,
    pub stop: Arc<AtomicBool>,
    /// Keep the sender's address with each message (UDP `Source_Address_Key`).
    pub want_peer: bool,
    /// `Buffer_Full wait`: pause receiving until the pipeline has room (the
    /// kernel queue then pushes back on the sender) instead of dropping.
    pub wait_when_full: bool,
    /// Unlinked before the final drain so no new sender connects.
    pub unlink: Option<PathBuf>,
    /// How long the loop may pause after emptying the socket while traffic
    /// flows (UDP with a large receive buffer, see `pause.rs`); zero never.
    pub pause: std::time::Duration,
}

/// Anonymous memory straight from `mmap`: pages cost RSS only once a
/// datagram touches them, whatever the allocator does with large zeroed
/// allocations (mimalloc committed all 8 MiB of slots up front).
struct Mapped {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: `Mapped` owns its mapping exclusively, like a `Vec<u8>`.
unsafe impl Send for Mapped {}

impl Mapped {
    fn new(len: usize) -> Mapped {
        // SAFETY: a private anonymous mapping with no address hint.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            // Out of address space: fall back to the heap (leaked; one per receiver).
            let v: &'static mut [u8] = Box::leak(vec![0u8; len].into_boxed_slice());
            return Mapped { ptr: v.as_mut_ptr(), len: 0 };
        }
        Mapped { ptr: p as *mut u8, len }
    }

    fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for SLOT * SLOTS bytes (mapped or leaked), zero-initialised.
        unsafe { std::slice::from_raw_parts(self.ptr, SLOT * SLOTS) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmapping exactly what `new` mapped.
            unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        }
    }
}

struct Slots {
    bufs: Mapped,
    iovs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_storage>,
    hdrs: Vec<libc::mmsghdr>,
    /// Control buffers (UDP `SO_RXQ_OVFL`), u64 words for cmsghdr alignment.
    ctrl: Vec<[u64; CTRL_WORDS]>,
    /// The socket's cumulative kernel drop count last reported.
    kernel_drops_seen: u32,
    /// Headers the kernel may have written since they were last armed:
    /// those of the datagrams the last call returned and the one after.
    dirty: usize,
}

/// Room for one `SO_RXQ_OVFL` control message (24 bytes on 64-bit) and spare.
const CTRL_WORDS: usize = 8;

impl Slots {
    fn new() -> Box<Slots> {
        // SAFETY: all-zero is a valid sockaddr_storage / mmsghdr.
        let mut s = Box::new(Slots {
            bufs: Mapped::new(SLOT * SLOTS),
            iovs: Vec::with_capacity(SLOTS),
            names: vec![unsafe { std::mem::zeroed() }; SLOTS],
            hdrs: vec![unsafe { std::mem::zeroed() }; SLOTS],
            ctrl: vec![[0u64; CTRL_WORDS]; SLOTS],
            kernel_drops_seen: 0,
            dirty: SLOTS,
        });
        let base = s.bufs.as_mut_ptr();
        for i in 0..SLOTS {
            // SAFETY: i * SLOT is inside `bufs` (SLOT * SLOTS bytes).
            let iov_base = unsafe { base.add(i * SLOT) } as *mut libc::c_void;
            s.iovs.push(libc::iovec { iov_base, iov_len: SLOT });
        }
        s
    }

    /// Reset headers before each call (the kernel writes lengths and flags
    /// of the datagrams it returns): only the ones it may have written,
    /// which in a quiet moment are one or two of the 32.
    fn arm(&mut self, want_peer: bool) {
        for i in 0..std::mem::replace(&mut self.dirty, 0).min(SLOTS) {
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            // Unix sockets never fill it; UDP does when SO_RXQ_OVFL is on.
            h.msg_control = self.ctrl[i].as_mut_ptr() as *mut libc::c_void;
            h.msg_controllen = std::mem::size_of::<[u64; CTRL_WORDS]>() as _;
            h.msg_flags = 0;
            if want_peer {
                h.msg_name = &mut self.names[i] as *mut _ as *mut libc::c_void;
                h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            } else {
                h.msg_name = std::ptr::null_mut();
                h.msg_namelen = 0;
            }
            self.hdrs[i].msg_len = 0;
        }
    }

    /// Kernel drops newly reported with datagram `i`: its `SO_RXQ_OVFL`
    /// message carries the socket's cumulative drop count when it was
    /// queued (sent only once that count is non-zero). Drops after the last
    /// queued datagram show up with the next one.
    fn kernel_drops(&mut self, i: usize) -> u64 {
        let h = &self.hdrs[i].msg_hdr;
        if h.msg_controllen == 0 {
            return 0;
        }
        let mut newly = 0;
        // SAFETY: msg_control/msg_controllen describe ctrl[i], which the
        // kernel filled with well-formed control messages; CMSG_* stay
        // inside that length and the data is read unaligned.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET
                    && (*c).cmsg_type == libc::SO_RXQ_OVFL
                    && (*c).cmsg_len as usize >= libc::CMSG_LEN(4) as usize
                {
                    let total = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const u32);
                    let delta = total.wrapping_sub(self.kernel_drops_seen);
                    // A u32 that wraps; an older value (never expected) is ignored.
                    if delta < u32::MAX / 2 {
                        newly += delta as u64;
                        self.kernel_drops_seen = total;
                    }
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
        }
        newly
    }

    fn datagram(&self, i: usize) -> &[u8] {
        let len = (self.hdrs[i].msg_len as usize).min(SLOT);
        &self.bufs.as_slice()[i * SLOT..i * SLOT + len]
    }
}

impl DgramReceiver {
    /// Run until `stop` is set, then drain what the kernel still holds.
    /// The socket must have a receive timeout (so `stop` is seen promptly).
    pub fn run(self) {
        let mut slots = Slots::new();
        let errors = RateLimiter::default();
        let drops = RateLimiter::default();
        let mut watchdog = self.unlink.as_deref().and_then(Watchdog::new);
        let mut pauser = Pauser::new(self.pause);
        let mut kernel_drops = self.counters.kernel_drops.get();
        crate::sched::ask_short_slice_logged();
        while !self.stop.load(Ordering::Relaxed) {
            if let Some(w) = watchdog.as_mut() {
                self.rebind_if_deleted(w, &mut slots, &drops);
            }
            let called = pauser.enabled().then(std::time::Instant::now);
            match self.receive(&mut slots, libc::MSG_WAITFORONE) {
                Ok(Some(batch)) => {
                    // Timed before the hand-over, which may wait (`Buffer_Full wait`).
                    let waited = called.map(|c| c.elapsed());
                    let taken = batch.msgs.len();
                    let handed_over = self.hand_over(batch, &drops);
                    if let Some(waited) = waited {
                        let call = Call { taken, slots: SLOTS, waited, handed_over, dropped: false };
                        self.pause_if_flowing(&mut pauser, call, &mut kernel_drops);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    warn_limited!(errors, error = %e, "recvmmsg failed");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
        self.drain(&mut slots);
    }

    /// Let what arrives next pile up for a moment when traffic flows and the
    /// socket can hold it (see `pause.rs`); stop pausing for a while once
    /// the kernel drops datagrams.
    fn pause_if_flowing(&self, pauser: &mut Pauser, mut call: Call, seen_drops: &mut u64) {
        let drops = self.counters.kernel_drops.get();
        call.dropped = drops != *seen_drops;
        *seen_drops = drops;
        let (pause, turned_off) = pauser.after(call, std::time::Instant::now());
        if turned_off {
            tracing::warn!(
                backoff_s = super::pause::BACKOFF.as_secs(),
                "the kernel dropped UDP datagrams (receive buffer full): the receiver stops pausing between calls \
                 for a while; a larger Receive_Buffer_Size keeps more in reserve"
            );
        }
        if let Some(d) = pause {
            std::thread::sleep(d);
        }
    }

    /// Offer a batch to the pipeline; when it is full, wait or drop and count
    /// as `Buffer_Full` says. True when the pipeline took it at once.
    fn hand_over(&self, batch: Batch, drops: &RateLimiter) -> bool {
        let refused = match self.handoff.offer(batch) {
            Ok(()) => return true,
            Err(b) if self.wait_when_full => self.wait_for_room(b, drops),
            Err(b) => Some(b),
        };
        if let Some(refused) = refused {
            let n = refused.msgs.len() as u64;
            self.counters.dropped(InputDrop::BufferFull, n);
            warn_limited!(
                drops,
                dropped = n,
                "pipeline buffer full: dropping received messages (counted as buffer_full)"
            );
        }
        false
    }

    /// `Buffer_Full wait`: hold the batch until the pipeline takes it; the
    /// batch comes back only if gatelog is stopping meanwhile.
    fn wait_for_room(&self, mut batch: Batch, warn: &RateLimiter) -> Option<Batch> {
        self.counters.buffer_full_waits.inc();
        warn_limited!(warn, "pipeline buffer full: receiving paused until it has room (Buffer_Full wait); senders that do not block drop lines meanwhile");
        loop {
            if self.stop.load(Ordering::Relaxed) {
                // Draining: the pipeline keeps taking until every receiver hung up.
                self.handoff.send_blocking(batch);
                return None;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
            match self.handoff.offer(batch) {
                Ok(()) => return None,
                Err(b) => batch = b,
            }
        }
    }

    /// The socket file was deleted: bind a new socket at the path, forward
    /// what the old one still holds, then move the new one onto `self.fd`.
    fn rebind_if_deleted(&self, w: &mut Watchdog, slots: &mut Slots, drops: &RateLimiter) {
        let Some(new) = w.check() else { return };
        while let Ok(Some(batch)) = self.receive(slots, libc::MSG_DONTWAIT) {
            let _ = self.hand_over(batch, drops);
        }
        if let Err(e) = w.replace(self.fd, new) {
            tracing::error!(error = %e, "cannot switch to the re-created socket");
        }
    }

    /// Shutdown: stop new senders, then take everything already queued.
    fn drain(&self, slots: &mut Slots) {
        if let Some(path) = &self.unlink {
            let _ = std::fs::remove_file(path);
        }
        let mut drained = 0usize;
        while let Ok(Some(batch)) = self.receive(slots, libc::MSG_DONTWAIT) {
            drained += batch.msgs.len();
            if !self.handoff.send_blocking(batch) {
                break;
            }
        }
        tracing::debug!(drained, "receiver drained the kernel queue");
    }

    /// One `recvmmsg`; `Ok(None)` on timeout or when nothing is queued.
    fn receive(&self, slots: &mut Slots, flags: libc::c_int) -> std::io::Result<Option<Batch>> {
        slots.arm(self.want_peer);
        // SAFETY: hdrs holds SLOTS armed headers whose iovecs point into `bufs`,
        // which outlives the call.
        let n = unsafe {
            libc::recvmmsg(self.fd, slots.hdrs.as_mut_ptr(), SLOTS as libc::c_uint, flags, std::ptr::null_mut())
        };
        // The kernel stops at the first header it finds no datagram for;
        // after an error, every header is armed again.
        slots.dirty = if n < 0 { SLOTS } else { n as usize + 1 };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                _ => Err(e),
            };
        }
        let n = n as usize;
        let kernel_drops: u64 = (0..n).map(|i| slots.kernel_drops(i)).sum();
        if kernel_drops > 0 {
            self.counters.kernel_drops.add(kernel_drops);
        }
        let total: usize = (0..n).map(|i| slots.hdrs[i].msg_len as usize).sum();
        let mut batch = Batch::with_capacity(self.input, n, total);
        batch.received_at = Timestamp::now();
        let mut bytes = 0u64;
        for i in 0..n {
            let data = slots.datagram(i);
            bytes += slots.hdrs[i].msg_len as u64;
            if slots.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                self.counters.dropped(InputDrop::Oversize, 1);
                continue;
            }
            if data.is_empty() {
                self.counters.dropped(InputDrop::Empty, 1);
                continue;
            }
            let peer =
                if self.want_peer { peer_name(&slots.names[i], slots.hdrs[i].msg_hdr.msg_namelen) } else { None };
            batch.push(data, peer);
        }
        self.counters.received.add(n as u64);
        self.counters.bytes.add(bytes);
        Ok(if batch.is_empty() { None } else { Some(batch) })
    }
}

/// Format a UDP sender's address (`ip:port`); unix senders have none worth keeping.
fn peer_name(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<Box<str>> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    if len == 0 {
        return None;
    }
    match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))).to_string().into())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::from((ip, u16::from_be(a.sin6_port))).to_string().into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::handoff;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    fn start(
        limit: usize,
        batches: usize,
        wait_when_full: bool,
    ) -> (
        tempfile::TempDir,
        UnixDatagram,
        handoff::Intake,
        Arc<InputCounters>,
        Arc<AtomicBool>,
        std::thread::JoinHandle<()>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let (tx, rx) = handoff::channel(batches, limit);
        let counters = Arc::new(InputCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let r = DgramReceiver {
            fd: sock.as_raw_fd(),
            input: 0,
            handoff: tx,
            counters: counters.clone(),
            stop: stop.clone(),
            want_peer: false,
            wait_when_full,
            unlink: Some(path.clone()),
            pause: Duration::ZERO,
        };
        let h = std::thread::spawn(move || {
            r.run();
            drop(sock);
        });
        let client = UnixDatagram::unbound().unwrap();
        client.connect(&path).unwrap();
        (dir, client, rx, counters, stop, h)
    }

    fn collect(rx: &handoff::Intake) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Ok(b) = rx.recv_timeout(Duration::from_millis(300)) {
            out.extend(b.msgs.iter().map(|m| b.message(m).to_vec()));
            rx.done(&b);
        }
        out
    }

    #[test]
    fn datagrams_arrive_whole_and_empty_ones_are_counted() {
        let (_dir, client, rx, counters, stop, h) = start(1 << 20, 64, false);
        let big = vec![b'x'; 100_000]; // Fluent Bit would cut this at 32 KiB
        client.send(b"<190>one").unwrap();
        client.send(b"").unwrap();
        client.send(&big).unwrap();
        let got = collect(&rx);
        assert_eq!(got, vec![b"<190>one".to_vec(), big]);
        assert_eq!(counters.received.get(), 3);
        assert_eq!(counters.dropped_empty.get(), 1);
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
    }

    #[test]
    fn queued_datagrams_are_drained_at_stop_and_the_socket_file_removed() {
        let (dir, client, rx, counters, stop, h) = start(1 << 20, 64, false);
        stop.store(true, Ordering::Relaxed);
        // Sent after stop was requested but before the receiver saw it or
        // unlinked: whatever the kernel accepted must still come out.
        let mut sent = 0;
        for i in 0..5 {
            if client.send(format!("m{i}").as_bytes()).is_ok() {
                sent += 1;
            }
        }
        h.join().unwrap();
        let got = collect(&rx);
        assert_eq!(got.len(), sent);
        assert_eq!(counters.received.get() as usize, sent);
        assert!(!dir.path().join("r.sock").exists());
    }

    #[test]
    fn with_buffer_full_wait_a_blocking_sender_loses_nothing() {
        // A budget of one batch and a slow consumer: the receiver pauses,
        // the kernel queue fills, and the blocking sender waits.
        let (_dir, client, rx, counters, stop, h) = start(1, 1, true);
        let sender = std::thread::spawn(move || {
            for i in 0..300 {
                client.send(format!("m{i}").as_bytes()).unwrap();
            }
        });
        let mut got = Vec::new();
        while got.len() < 300 {
            let b = rx.recv_timeout(Duration::from_secs(5)).expect("receiver stalled");
            std::thread::sleep(Duration::from_millis(1));
            got.extend(b.msgs.iter().map(|m| b.message(m).to_vec()));
            rx.done(&b);
        }
        sender.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
        let expected: Vec<Vec<u8>> = (0..300).map(|i| format!("m{i}").into_bytes()).collect();
        assert_eq!(got, expected, "every message once, in order");
        assert_eq!(counters.dropped_buffer_full.get(), 0);
        assert!(counters.buffer_full_waits.get() > 0);
    }

    #[test]
    fn a_full_handoff_drops_and_counts_instead_of_waiting() {
        // Budget of one batch and nobody consuming: later batches are refused.
        let (_dir, client, rx, counters, stop, h) = start(1, 1, false);
        for i in 0..50 {
            client.send(format!("m{i}").as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        let got = collect(&rx);
        h.join().unwrap();
        let got = got.len() as u64 + collect(&rx).len() as u64;
        assert_eq!(counters.received.get(), 50);
        assert!(counters.dropped_buffer_full.get() > 0);
        assert_eq!(got + counters.dropped_buffer_full.get(), 50);
    }

    #[test]
    fn a_udp_receiver_that_may_pause_takes_a_paced_stream_in_fewer_calls() {
        // 600 datagrams 20 µs apart: a receiver that keeps up would take
        // them about one a call; pausing 250 µs after emptying the socket
        // gathers about a dozen a call, and loses none.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = sock.as_raw_fd();
        crate::input::socket::set_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 1 << 22).unwrap();
        crate::input::socket::enable_drop_reports(fd);
        sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(sock.local_addr().unwrap()).unwrap();
        let (tx, rx) = handoff::channel(4096, 1 << 26);
        let counters = Arc::new(InputCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let r = DgramReceiver {
            fd,
            input: 0,
            handoff: tx,
            counters: counters.clone(),
            stop: stop.clone(),
            want_peer: false,
            wait_when_full: false,
            unlink: None,
            pause: crate::input::pause::MAX_PAUSE,
        };
        let h = std::thread::spawn(move || {
            r.run();
            drop(sock);
        });
        const N: usize = 600;
        let start = std::time::Instant::now();
        for i in 0..N {
            let due = start + Duration::from_micros(20 * i as u64);
            while std::time::Instant::now() < due {
                std::hint::spin_loop();
            }
            client.send(format!("line {i}").as_bytes()).unwrap();
        }
        let (mut batches, mut got) = (0, Vec::new());
        while got.len() < N {
            let b = rx.recv_timeout(Duration::from_secs(5)).expect("every datagram arrives");
            batches += 1;
            got.extend(b.msgs.iter().map(|m| String::from_utf8(b.message(m).to_vec()).unwrap()));
            rx.done(&b);
        }
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
        assert_eq!(got, (0..N).map(|i| format!("line {i}")).collect::<Vec<_>>());
        assert_eq!(counters.kernel_drops.get(), 0);
        assert!(N / batches >= 4, "{N} datagrams came in {batches} batches");
    }

    #[test]
    fn udp_kernel_drops_are_counted_from_so_rxq_ovfl() {
        // The smallest receive buffer and nobody reading: the kernel drops
        // most of a burst and reports its running drop count with the next
        // datagram it queues.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = sock.as_raw_fd();
        // 1 byte is raised to the kernel's minimum.
        crate::input::socket::set_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 1).unwrap();
        crate::input::socket::enable_drop_reports(fd);
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(sock.local_addr().unwrap()).unwrap();
        const BURST: u64 = 200;
        for _ in 0..BURST {
            client.send(&[b'x'; 1000]).unwrap();
        }
        let (tx, _rx) = handoff::channel(16, 1 << 20);
        let counters = Arc::new(InputCounters::default());
        let r = DgramReceiver {
            fd,
            input: 0,
            handoff: tx,
            counters: counters.clone(),
            stop: Arc::new(AtomicBool::new(false)),
            want_peer: false,
            wait_when_full: false,
            unlink: None,
            pause: Duration::ZERO,
        };
        let mut slots = Slots::new();
        while let Ok(Some(_)) = r.receive(&mut slots, libc::MSG_DONTWAIT) {}
        assert_eq!(counters.kernel_drops.get(), 0, "no report before a datagram follows the drops");
        client.send(b"marker").unwrap();
        let mut marker = false;
        while !marker {
            let b = r.receive(&mut slots, libc::MSG_WAITFORONE).unwrap().expect("the marker datagram");
            marker = b.msgs.iter().any(|m| b.message(m) == b"marker");
        }
        let (received, dropped) = (counters.received.get(), counters.kernel_drops.get());
        assert!(dropped > 0 && received > 1, "received {received}, dropped {dropped}");
        assert_eq!(received + dropped, BURST + 1);
    }

    #[test]
    fn headers_reused_across_calls_of_every_size_give_whole_datagrams_and_peers() {
        // The receive headers are reused call after call: bursts of 1..=40
        // datagrams of varying length, from two senders, taken in calls of
        // every size, must each come out whole, in order, with its sender.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = sock.as_raw_fd();
        crate::input::socket::set_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 1 << 22).unwrap();
        crate::input::socket::enable_drop_reports(fd);
        let clients: Vec<std::net::UdpSocket> = (0..2)
            .map(|_| {
                let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                c.connect(sock.local_addr().unwrap()).unwrap();
                c
            })
            .collect();
        let (tx, _rx) = handoff::channel(16, 1 << 20);
        let r = DgramReceiver {
            fd,
            input: 0,
            handoff: tx,
            counters: Arc::new(InputCounters::default()),
            stop: Arc::new(AtomicBool::new(false)),
            want_peer: true,
            wait_when_full: false,
            unlink: None,
            pause: Duration::ZERO,
        };
        let mut slots = Slots::new();
        let mut next = crate::testing::xorshift(0xA4A4_0101);
        for round in 0..60 {
            let mut sent = Vec::new();
            for i in 0..1 + next() as usize % 40 {
                let c = &clients[(next() % 2) as usize];
                let body = format!("{round}.{i}.{}", "y".repeat(next() as usize % 3000)).into_bytes();
                c.send(&body).unwrap();
                sent.push((body, c.local_addr().unwrap().to_string()));
            }
            let mut got = Vec::new();
            while got.len() < sent.len() {
                let b = r.receive(&mut slots, libc::MSG_WAITFORONE).unwrap().expect("datagrams");
                for m in &b.msgs {
                    got.push((b.message(m).to_vec(), m.peer.as_deref().unwrap_or("").to_owned()));
                }
            }
            assert_eq!(got, sent, "round {round}");
        }
    }
}
