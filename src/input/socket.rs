//! Opening the syslog input's socket: unix datagram and stream sockets with
//! stale-file handling and `Unix_Perm`, UDP with a large (forced) receive
//! buffer, TCP; and the start-up report of the kernel queue depth, which
//! decides how many lines nginx can have in flight before it drops them.

use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;

/// The kernel's per-namespace limit on queued unix datagrams.
pub const QLEN_SYSCTL: &str = "/proc/sys/net/unix/max_dgram_qlen";

/// A queue shallower than this loses lines under bursts (measured: at 10,
/// even a bare recvmmsg loop lost 4.6% under a real nginx with wrk).
const SHALLOW_QLEN: u64 = 512;

/// Remove a stale socket file at `path`; refuse to touch anything else, or a
/// socket another process is still receiving on.
pub fn clear_stale_socket(path: &Path, dgram: bool) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket; refusing to replace it", path.display()),
        ));
    }
    let live = if dgram {
        UnixDatagram::unbound().and_then(|s| s.connect(path)).is_ok()
    } else {
        std::os::unix::net::UnixStream::connect(path).is_ok()
    };
    if live {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is a live socket of another process", path.display()),
        ));
    }
    std::fs::remove_file(path)
}

fn chmod(path: &Path, perm: u32) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm & 0o7777))
}

pub fn bind_unix_dgram(path: &Path, perm: u32) -> io::Result<UnixDatagram> {
    clear_stale_socket(path, true)?;
    let sock = UnixDatagram::bind(path)?;
    chmod(path, perm)?;
    Ok(sock)
}

pub fn bind_unix_stream(path: &Path, perm: u32) -> io::Result<UnixListener> {
    clear_stale_socket(path, false)?;
    let l = UnixListener::bind(path)?;
    chmod(path, perm)?;
    Ok(l)
}

pub fn bind_udp(addr: &str, rcvbuf: Option<usize>) -> io::Result<UdpSocket> {
    let sock = UdpSocket::bind(addr)?;
    if let Some(size) = rcvbuf {
        set_rcvbuf(sock.as_raw_fd(), size);
    }
    enable_drop_reports(sock.as_raw_fd());
    Ok(sock)
}

/// Ask the kernel to report the socket's cumulative drop count with each
/// datagram (`SO_RXQ_OVFL`; the receiver adds it to `kernel_drops`). Unix
/// datagram sockets have no such counter: a full queue makes nginx's
/// `send()` fail, and its error log (`send() to syslog failed`) is the only
/// trace of those lines.
pub fn enable_drop_reports(fd: i32) {
    if let Err(error) = set_int_opt(fd, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1) {
        tracing::debug!(%error, "SO_RXQ_OVFL unavailable: kernel drops on this socket are not counted");
    }
}

/// `setsockopt` with an int value.
pub(crate) fn set_int_opt(fd: i32, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the option value is a c_int of `len` bytes; a bad fd is an error, not UB.
    let rc = unsafe { libc::setsockopt(fd, level, name, &v as *const libc::c_int as *const libc::c_void, len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `getsockopt` of an int value.
pub(crate) fn get_int_opt(fd: i32, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and len are valid for writes of their sizes.
    let rc = unsafe { libc::getsockopt(fd, level, name, &mut v as *mut libc::c_int as *mut libc::c_void, &mut len) };
    if rc == 0 {
        Ok(v)
    } else {
        Err(io::Error::last_os_error())
    }
}

pub fn bind_tcp(addr: &str) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// Ask for `size` bytes of receive buffer: `SO_RCVBUFFORCE` first (passes
/// `net.core.rmem_max` with CAP_NET_ADMIN), then plain `SO_RCVBUF`.
fn set_rcvbuf(fd: i32, size: usize) {
    let v = size.min(i32::MAX as usize) as libc::c_int;
    if set_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v).is_err() {
        // Reported by the start-up line on the size granted.
        let _ = set_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, v);
    }
}

/// The receive buffer the kernel granted (it doubles the request for its
/// bookkeeping).
pub fn granted_rcvbuf(fd: i32) -> Option<usize> {
    get_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF).ok().map(|v| v as usize)
}

/// `net.unix.max_dgram_qlen` of this network namespace.
pub fn unix_qlen() -> Option<u64> {
    std::fs::read_to_string(QLEN_SYSCTL).ok()?.trim().parse().ok()
}

/// The start-up line about the kernel queue: its depth, and the fix when it
/// is shallow.
pub fn unix_queue_report(path: &Path) {
    match unix_qlen() {
        Some(q) if q < SHALLOW_QLEN => tracing::warn!(
            socket = %path.display(),
            max_dgram_qlen = q,
            "kernel queue holds only {} datagrams: nginx drops lines (send() to syslog failed) when gatelog is \
             descheduled for a moment. Fix: sysctl -w net.unix.max_dgram_qlen=1024 before the socket is created \
             (in a pod: securityContext.sysctls, an allowed unsafe sysctl), or log over loopback UDP \
             (Mode udp, Receive_Buffer_Size 4M; nginx: access_log syslog:server=127.0.0.1:5140)",
            q + 1
        ),
        Some(q) => {
            tracing::info!(socket = %path.display(), max_dgram_qlen = q, "kernel queue depth")
        }
        None => {
            tracing::warn!(socket = %path.display(), "cannot read {QLEN_SYSCTL}: kernel queue depth unknown")
        }
    }
}

/// The start-up line about the UDP receive buffer; returns the pause the
/// receiver can afford with it (`pause.rs`).
pub fn udp_queue_report(sock: &UdpSocket, asked: Option<usize>) -> std::time::Duration {
    let granted = granted_rcvbuf(sock.as_raw_fd()).unwrap_or(0);
    let lines = granted / 2 / 1024;
    let pause = super::pause::udp_pause(granted);
    if granted < 2 * 1024 * 1024 {
        tracing::warn!(
            rcvbuf_bytes = granted,
            asked = asked.unwrap_or(0),
            "UDP receive buffer is {granted} bytes (about {lines} nginx lines of ~1 KiB): set Receive_Buffer_Size 4M \
             (gatelog forces it with CAP_NET_ADMIN, else it is capped by net.core.rmem_max)"
        );
    } else {
        tracing::info!(rcvbuf_bytes = granted, "UDP receive buffer (about {lines} nginx lines of ~1 KiB)");
    }
    if !pause.is_zero() {
        tracing::info!(
            pause_us = pause.as_micros() as u64,
            "while traffic flows, the receiver pauses up to {} µs after emptying the socket (fewer wake-ups)",
            pause.as_micros()
        );
    }
    pause
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_socket_is_replaced_but_a_regular_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        drop(UnixDatagram::bind(&sock).unwrap()); // leaves a stale socket file
        let s = bind_unix_dgram(&sock, 0o666).unwrap();
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);
        // A live socket is not stolen.
        assert_eq!(bind_unix_dgram(&sock, 0o666).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        drop(s);

        let file = dir.path().join("f");
        std::fs::write(&file, b"keep me").unwrap();
        assert!(bind_unix_dgram(&file, 0o666).is_err());
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    }
}
