//! Stream modes (`unix_tcp`, `tcp`): an accept thread and one thread per
//! connection, each framing its byte stream (newline or octet counting) into
//! batches. Unlike datagrams, a stream can push back without loss, so a
//! connection waits for room in the hand-off instead of dropping.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::framing::{Frame, Framer, Framing};
use super::handoff::{Batch, Handoff};
use crate::ratelimit::RateLimiter;
use crate::record::Timestamp;
use crate::stats::{InputCounters, InputDrop};
use crate::warn_limited;

const MAX_CONNECTIONS: usize = 256;
const POLL: Duration = Duration::from_millis(100);

pub enum Listener {
    Unix(std::os::unix::net::UnixListener),
    Tcp(std::net::TcpListener),
}

pub struct StreamServer {
    pub listener: Listener,
    pub input: usize,
    pub handoff: Handoff,
    pub counters: Arc<InputCounters>,
    pub stop: Arc<AtomicBool>,
    pub framing: Framing,
    pub max_frame: usize,
    pub want_peer: bool,
    pub unlink: Option<std::path::PathBuf>,
}

trait Conn: Read + Send {
    fn set_timeout(&self, d: Duration);
}

impl Conn for std::os::unix::net::UnixStream {
    fn set_timeout(&self, d: Duration) {
        let _ = self.set_read_timeout(Some(d));
    }
}

impl Conn for std::net::TcpStream {
    fn set_timeout(&self, d: Duration) {
        let _ = self.set_read_timeout(Some(d));
    }
}

impl StreamServer {
    /// Accept until `stop`; connections are then read to their end of data
    /// already sent (until the peer is idle) and closed.
    pub fn run(self) {
        let open = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        let limiter = RateLimiter::default();
        while !self.stop.load(Ordering::Relaxed) {
            if !readable(self.raw_fd(), POLL) {
                continue;
            }
            let (conn, peer): (Box<dyn Conn>, Option<Box<str>>) = match &self.listener {
                Listener::Unix(l) => match l.accept() {
                    Ok((s, _)) => (Box::new(s), None),
                    Err(e) => {
                        warn_limited!(limiter, error = %e, "accept failed");
                        continue;
                    }
                },
                Listener::Tcp(l) => match l.accept() {
                    Ok((s, a)) => {
                        let _ = s.set_nonblocking(false);
                        (Box::new(s), self.want_peer.then(|| a.to_string().into()))
                    }
                    Err(e) => {
                        warn_limited!(limiter, error = %e, "accept failed");
                        continue;
                    }
                },
            };
            if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                warn_limited!(limiter, "too many connections ({MAX_CONNECTIONS}); closing a new one");
                continue;
            }
            open.fetch_add(1, Ordering::Relaxed);
            let reader = ConnReader {
                input: self.input,
                handoff: self.handoff.clone(),
                counters: self.counters.clone(),
                stop: self.stop.clone(),
                framer: Framer::new(self.framing, self.max_frame),
                peer,
            };
            let open = open.clone();
            workers.retain(|h: &std::thread::JoinHandle<()>| !h.is_finished());
            match std::thread::Builder::new().name("gatelog-conn".into()).spawn(move || {
                reader.run(conn);
                open.fetch_sub(1, Ordering::Relaxed);
            }) {
                Ok(h) => workers.push(h),
                Err(e) => warn_limited!(limiter, error = %e, "cannot start a connection thread"),
            }
        }
        if let Some(p) = &self.unlink {
            let _ = std::fs::remove_file(p);
        }
        for w in workers {
            let _ = w.join();
        }
    }

    fn raw_fd(&self) -> i32 {
        match &self.listener {
            Listener::Unix(l) => l.as_raw_fd(),
            Listener::Tcp(l) => l.as_raw_fd(),
        }
    }
}

fn readable(fd: i32, timeout: Duration) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, timeout.as_millis() as libc::c_int) > 0 }
}

struct ConnReader {
    input: usize,
    handoff: Handoff,
    counters: Arc<InputCounters>,
    stop: Arc<AtomicBool>,
    framer: Framer,
    peer: Option<Box<str>>,
}

impl ConnReader {
    fn run(mut self, mut conn: Box<dyn Conn>) {
        conn.set_timeout(POLL);
        let mut buf = vec![0u8; 64 * 1024];
        let limiter = RateLimiter::default();
        let mut idle_after_stop = false;
        loop {
            match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.counters.bytes.add(n as u64);
                    self.framer.extend(&buf[..n]);
                    if !self.take_frames(&limiter) {
                        break;
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    // After stop, one idle period means the peer has nothing more in flight.
                    if self.stop.load(Ordering::Relaxed) {
                        if idle_after_stop {
                            break;
                        }
                        idle_after_stop = true;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn_limited!(limiter, error = %e, "connection read failed");
                    break;
                }
            }
        }
        if self.framer.pending() > 0 {
            tracing::debug!(bytes = self.framer.pending(), "connection closed with an unterminated message");
        }
    }

    /// Frame what was read into one batch and hand it over (waiting for room:
    /// a stream pushes back without loss). False when the stream is corrupt.
    fn take_frames(&mut self, limiter: &RateLimiter) -> bool {
        let mut batch = Batch::new(self.input);
        batch.received_at = Timestamp::now();
        let mut ok = true;
        while let Some(frame) = self.framer.next() {
            match frame {
                Frame::Message(m) => {
                    self.counters.received.inc();
                    if m.is_empty() {
                        self.counters.dropped(InputDrop::Empty, 1);
                    } else {
                        batch.push(m, self.peer.clone());
                    }
                }
                Frame::Oversize => {
                    self.counters.received.inc();
                    self.counters.dropped(InputDrop::Oversize, 1);
                    warn_limited!(limiter, "message over the size limit skipped (counted as oversize)");
                }
                Frame::Corrupt => {
                    warn_limited!(limiter, "invalid octet-counting frame header; closing the connection");
                    ok = false;
                    break;
                }
            }
        }
        if !batch.is_empty() && !self.handoff.send_blocking(batch) {
            return false;
        }
        ok
    }
}
