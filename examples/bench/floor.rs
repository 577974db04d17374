//! The floor receivers: the least work that receives a datagram and appends
//! it to a file (batched `recvmmsg`, a newline after each message). Every
//! gatelog figure is quoted as a ratio to the first one, measured in the
//! same run on the same machine.
//!
//! - [`run`], the floor: one thread receives and writes (a buffered file):
//!   between two receive calls it may wait on the disk.
//! - [`run_handoff`], the hand-off floor: the least work with the design
//!   gatelog needs, a receive loop that never waits on the disk (nginx drops
//!   a line the moment an 11-deep unix socket queue is full). One thread
//!   receives and appends each datagram to a shared buffer; a second takes
//!   that buffer every millisecond and writes it. It never wakes the writer.
//!   gatelog's figures divided by this one's are what gatelog costs beyond
//!   its architecture.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SLOTS: usize = 64;
const SLOT: usize = 64 * 1024;

/// A floor's entry: transport, address, output file.
pub type Run = fn(&str, &str, &str) -> std::io::Result<()>;

/// A bound socket (kept alive by the box) and its descriptor.
type Bound = (i32, Box<dyn std::any::Any>);

fn bind(transport: &str, addr: &str) -> std::io::Result<Bound> {
    if transport == "udp" {
        let s = std::net::UdpSocket::bind(addr)?;
        let v: libc::c_int = 4 << 20;
        // SAFETY: valid socket and c_int option value.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &v as *const _ as *const libc::c_void,
                4,
            );
        }
        s.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok((s.as_raw_fd(), Box::new(s)))
    } else {
        let _ = std::fs::remove_file(addr);
        let s = std::os::unix::net::UnixDatagram::bind(addr)?;
        s.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok((s.as_raw_fd(), Box::new(s)))
    }
}

/// The datagrams one `recvmmsg` call returned.
struct Received<'a> {
    bufs: &'a [u8],
    hdrs: &'a [libc::mmsghdr],
}

impl<'a> Received<'a> {
    fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        let bufs = self.bufs;
        self.hdrs.iter().enumerate().map(move |(i, h)| &bufs[i * SLOT..i * SLOT + h.msg_len as usize])
    }
}

/// Receive on `fd` until SIGTERM, then drain; `take` gets each call's datagrams.
fn receive(fd: i32, mut take: impl FnMut(Received<'_>)) -> std::io::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    let mut bufs = vec![0u8; SLOTS * SLOT];
    // SAFETY: all-zero is a valid iovec/mmsghdr.
    let mut iovs: Vec<libc::iovec> = vec![unsafe { std::mem::zeroed() }; SLOTS];
    let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; SLOTS];
    let mut recv = |flags: i32| -> isize {
        for i in 0..SLOTS {
            iovs[i] = libc::iovec { iov_base: bufs[i * SLOT..].as_mut_ptr() as *mut libc::c_void, iov_len: SLOT };
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: headers point at live iovecs over `bufs`.
        let n = unsafe { libc::recvmmsg(fd, hdrs.as_mut_ptr(), SLOTS as u32, flags, std::ptr::null_mut()) };
        take(Received { bufs: &bufs, hdrs: &hdrs[..n.max(0) as usize] });
        n as isize
    };
    while !stop.load(Ordering::Relaxed) {
        recv(libc::MSG_WAITFORONE);
    }
    while recv(libc::MSG_DONTWAIT) > 0 {}
    Ok(())
}

/// The floor: receive and write on one thread.
pub fn run(transport: &str, addr: &str, out: &str) -> std::io::Result<()> {
    let (fd, _keep) = bind(transport, addr)?;
    let mut file = std::io::BufWriter::with_capacity(64 * 1024, std::fs::File::create(out)?);
    receive(fd, |got| {
        for msg in got.iter() {
            let _ = file.write_all(msg);
            let _ = file.write_all(b"\n");
        }
    })?;
    file.flush()?;
    if transport != "udp" {
        let _ = std::fs::remove_file(addr);
    }
    Ok(())
}

/// The hand-off floor: receive on one thread, write on another.
pub fn run_handoff(transport: &str, addr: &str, out: &str) -> std::io::Result<()> {
    let (fd, _keep) = bind(transport, addr)?;
    let mut file = std::fs::File::create(out)?;
    let shared = Arc::new(Mutex::new(Vec::<u8>::with_capacity(1 << 20)));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (shared, done) = (shared.clone(), done.clone());
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut mine = Vec::with_capacity(1 << 20);
            loop {
                let last = done.load(Ordering::Acquire);
                std::mem::swap(&mut mine, &mut *shared.lock().unwrap_or_else(|p| p.into_inner()));
                file.write_all(&mine)?;
                mine.clear();
                if last {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    receive(fd, |got| {
        let mut buf = shared.lock().unwrap_or_else(|p| p.into_inner());
        for msg in got.iter() {
            buf.extend_from_slice(msg);
            buf.push(b'\n');
        }
    })?;
    done.store(true, Ordering::Release);
    writer.join().map_err(|_| std::io::Error::other("writer panicked"))??;
    if transport != "udp" {
        let _ = std::fs::remove_file(addr);
    }
    Ok(())
}
