//! The load generator: nginx-shaped syslog datagrams (~650 bytes, 18 JSON
//! fields, a sequence number in the URI so every output format carries it),
//! sent blocking as fast as possible, or paced and non-blocking like nginx,
//! counting what the kernel refuses.

use std::io;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    UnixUdp,
    Udp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::UnixUdp => "unix_udp",
            Transport::Udp => "udp",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// Blocking sends, as fast as the receiver takes them.
    Blocking,
    /// Non-blocking sends at `rate` messages per second, due in slices of
    /// `slice` (what a slice is due is sent back to back, then the sender
    /// sleeps): 1 ms by default; a shorter one is smoother, more like many
    /// nginx workers each logging a request now and then.
    Rate { rate: u64, slice: Duration },
}

/// Where to send: a unix socket path or a UDP port on loopback.
pub enum Target {
    Unix(std::path::PathBuf),
    Udp(u16),
}

pub struct Sent {
    pub accepted: u64,
    pub refused: u64,
}

/// One datagram as nginx sends it (`<190>`, hostname, tag `nginx`).
pub fn message(seq: u64, buf: &mut Vec<u8>) {
    use std::io::Write;
    buf.clear();
    let _ = write!(
        buf,
        "<190>Nov 23 16:30:00 istio-ingressgateway-7d9f-abcde nginx: {{\"time\":\"2026-11-23T16:30:00+09:00\",\
         \"remote_addr\":\"10.20.30.40\",\"x_forwarded_for\":\"203.0.113.7, 10.0.0.1\",\"vhost\":\"shop.example.com\",\
         \"method\":\"GET\",\"uri\":\"/api/v1/catalog/items/4711?lang=ja&page=3&seq={seq}\",\"protocol\":\"HTTP/1.1\",\
         \"status\":200,\"body_bytes_sent\":5123,\"referer\":\"https://shop.example.com/catalog?page=2\",\
         \"user_agent\":\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\",\
         \"request_time\":0.012,\"upstream_addr\":\"10.1.2.3:8080\",\"upstream_status\":\"200\",\
         \"upstream_response_time\":\"0.011\",\"request_id\":\"5f1c9a0e7b2d4c3a9e8f7a6b5c4d{seq:08x}\",\
         \"bytes_sent\":5400,\"seq\":{seq}}}"
    );
}

enum Sock {
    Unix(UnixDatagram),
    Udp(UdpSocket),
}

impl Sock {
    fn send(&self, b: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Unix(s) => s.send(b),
            Sock::Udp(s) => s.send(b),
        }
    }
}

fn connect(target: &Target, nonblocking: bool) -> io::Result<Sock> {
    let s = match target {
        Target::Unix(p) => {
            let s = UnixDatagram::unbound()?;
            s.connect(p)?;
            s.set_nonblocking(nonblocking)?;
            Sock::Unix(s)
        }
        Target::Udp(port) => {
            let s = UdpSocket::bind("127.0.0.1:0")?;
            s.connect(("127.0.0.1", *port))?;
            s.set_nonblocking(nonblocking)?;
            Sock::Udp(s)
        }
    };
    Ok(s)
}

pub fn send(target: &Target, n: u64, pace: Pace) -> io::Result<Sent> {
    let sock = connect(target, matches!(pace, Pace::Rate { .. }))?;
    let mut buf = Vec::with_capacity(1024);
    let (mut accepted, mut refused) = (0u64, 0u64);
    let start = Instant::now();
    match pace {
        Pace::Blocking => {
            for seq in 0..n {
                message(seq, &mut buf);
                loop {
                    match sock.send(&buf) {
                        Ok(_) => break,
                        // ENOBUFS can happen on UDP loopback under pressure: retry.
                        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => std::thread::yield_now(),
                        Err(e) => return Err(e),
                    }
                }
                accepted += 1;
            }
        }
        Pace::Rate { rate, slice } => {
            // At 100k/s, 1 ms slices are bursts of 100 messages.
            let per_sec = rate as f64;
            let slice = slice.as_secs_f64();
            let mut seq = 0u64;
            while seq < n {
                let due = ((start.elapsed().as_secs_f64() + slice) * per_sec) as u64;
                while seq < due.min(n) {
                    message(seq, &mut buf);
                    match sock.send(&buf) {
                        Ok(_) => accepted += 1,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS) => {
                            refused += 1
                        }
                        Err(e) => return Err(e),
                    }
                    seq += 1;
                }
                let next = Duration::from_secs_f64(seq as f64 / per_sec);
                if let Some(wait) = next.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait.min(Duration::from_secs_f64(slice)));
                }
            }
        }
    }
    Ok(Sent { accepted, refused })
}
