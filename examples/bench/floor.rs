//! The floor receiver: the least work that receives a datagram and appends
//! it to a file (batched `recvmmsg`, one buffered file, a newline after each
//! message). Every gatelog figure is quoted as a ratio to this one, measured
//! in the same run on the same machine.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SLOTS: usize = 64;
const SLOT: usize = 64 * 1024;

pub fn run(transport: &str, addr: &str, out: &str) -> std::io::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    let (fd, _keep): (i32, Box<dyn std::any::Any>) = if transport == "udp" {
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
        (s.as_raw_fd(), Box::new(s))
    } else {
        let _ = std::fs::remove_file(addr);
        let s = std::os::unix::net::UnixDatagram::bind(addr)?;
        s.set_read_timeout(Some(Duration::from_millis(100)))?;
        (s.as_raw_fd(), Box::new(s))
    };
    let mut file = std::io::BufWriter::with_capacity(64 * 1024, std::fs::File::create(out)?);
    let mut bufs = vec![0u8; SLOTS * SLOT];
    // SAFETY: all-zero is a valid iovec/mmsghdr.
    let mut iovs: Vec<libc::iovec> = vec![unsafe { std::mem::zeroed() }; SLOTS];
    let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; SLOTS];
    let mut recv = |flags: i32, file: &mut std::io::BufWriter<std::fs::File>| -> isize {
        for i in 0..SLOTS {
            iovs[i] = libc::iovec { iov_base: bufs[i * SLOT..].as_mut_ptr() as *mut libc::c_void, iov_len: SLOT };
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: headers point at live iovecs over `bufs`.
        let n = unsafe { libc::recvmmsg(fd, hdrs.as_mut_ptr(), SLOTS as u32, flags, std::ptr::null_mut()) };
        for i in 0..n.max(0) as usize {
            let len = hdrs[i].msg_len as usize;
            let _ = file.write_all(&bufs[i * SLOT..i * SLOT + len]);
            let _ = file.write_all(b"\n");
        }
        n as isize
    };
    while !stop.load(Ordering::Relaxed) {
        recv(libc::MSG_WAITFORONE, &mut file);
    }
    while recv(libc::MSG_DONTWAIT, &mut file) > 0 {}
    file.flush()?;
    if transport != "udp" {
        let _ = std::fs::remove_file(addr);
    }
    Ok(())
}
