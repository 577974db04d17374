//! The socket-file watchdog of a unix datagram input: when the socket file
//! is deleted (a cleanup job, a careless `rm`, a volume remounted) the
//! bound socket keeps receiving from senders already connected but no new
//! sender can find it, and nginx reconnects by path after every error. The
//! receiver thread calls [`Watchdog::check`] between receives; at most once
//! a second it compares the path with the inode it bound, and when the file
//! is gone (or is no longer ours) binds a fresh socket at the same path with
//! the same permissions and logs that it did.
//!
//! Invariants: the receiver's fd number never changes: the new socket is
//! moved onto it with `dup2` (which closes the old socket atomically), after
//! the receiver has drained the old queue, so the thread and its owner keep
//! one fd and close it once. A path held by something that is not a stale
//! socket (a regular file, another live receiver) is never replaced; that is
//! warned about (rate-limited) and retried.

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::socket;
use crate::ratelimit::RateLimiter;
use crate::warn_limited;

/// How often the path is looked at: one `lstat` a second.
const PERIOD: Duration = Duration::from_secs(1);

/// Socket options copied from the old socket to its replacement.
const COPIED: &[(libc::c_int, libc::c_int)] =
    &[(libc::SOL_SOCKET, libc::SO_RCVBUF), (libc::SOL_SOCKET, libc::SO_RXQ_OVFL)];

/// Watches one bound unix datagram socket file.
#[derive(Debug)]
pub struct Watchdog {
    path: PathBuf,
    perm: u32,
    /// `(dev, ino)` of the file we bound.
    id: (u64, u64),
    next: Instant,
    warn: RateLimiter,
}

impl Watchdog {
    /// Start watching `path` as it is now (just bound); `None` when it cannot
    /// be read (then there is nothing to compare against).
    pub fn new(path: &Path) -> Option<Watchdog> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        Some(Watchdog {
            path: path.to_path_buf(),
            perm: meta.mode() & 0o7777,
            id: (meta.dev(), meta.ino()),
            next: Instant::now() + PERIOD,
            warn: RateLimiter::default(),
        })
    }

    /// At most once per second: when the socket file is no longer the one
    /// we bound, bind a new socket at the path and return it. The caller
    /// drains its current socket, then calls [`Watchdog::replace`].
    pub fn check(&mut self) -> Option<OwnedFd> {
        let now = Instant::now();
        if now < self.next {
            return None;
        }
        self.next = now + PERIOD;
        let why = match std::fs::symlink_metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.id => return None,
            Ok(_) => "replaced by another file",
            Err(e) if e.kind() == io::ErrorKind::NotFound => "deleted",
            Err(e) => {
                warn_limited!(self.warn, path = %self.path.display(), error = %e, "cannot check the socket file");
                return None;
            }
        };
        match socket::bind_unix_dgram(&self.path, self.perm) {
            Ok(sock) => {
                if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
                    self.id = (meta.dev(), meta.ino());
                }
                tracing::warn!(path = %self.path.display(), why, "socket file was {why}; re-created the socket at the same path (senders reconnect to it)");
                Some(OwnedFd::from(sock))
            }
            Err(e) => {
                warn_limited!(self.warn, path = %self.path.display(), why, error = %e, "socket file was {why}; cannot re-create it, will retry every second");
                None
            }
        }
    }

    /// Move `new` onto the fd number `fd`, carrying over the receive timeout,
    /// buffer size and overflow reporting of the socket it replaces (which
    /// `dup2` closes).
    pub fn replace(&self, fd: RawFd, new: OwnedFd) -> io::Result<()> {
        copy_timeout(fd, new.as_raw_fd());
        for &(level, name) in COPIED {
            copy_int_opt(fd, new.as_raw_fd(), level, name);
        }
        let new = new.into_raw_fd();
        // SAFETY: both are open fds; dup2 atomically closes `fd`'s socket
        // and makes `fd` refer to the new one; `new` is closed right after.
        let r = unsafe { libc::dup2(new, fd) };
        let err = io::Error::last_os_error();
        // SAFETY: `new` came from into_raw_fd and is not used again.
        unsafe { libc::close(new) };
        if r < 0 {
            return Err(err);
        }
        Ok(())
    }
}

fn copy_timeout(from: RawFd, to: RawFd) {
    // SAFETY: all-zero is a valid timeval; getsockopt writes at most `len` bytes.
    let mut tv: libc::timeval = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    let p = &mut tv as *mut libc::timeval as *mut libc::c_void;
    // SAFETY: valid pointer and length for SO_RCVTIMEO.
    if unsafe { libc::getsockopt(from, libc::SOL_SOCKET, libc::SO_RCVTIMEO, p, &mut len) } == 0 {
        // SAFETY: same buffer, as read.
        unsafe { libc::setsockopt(to, libc::SOL_SOCKET, libc::SO_RCVTIMEO, p, len) };
    }
}

fn copy_int_opt(from: RawFd, to: RawFd, level: libc::c_int, name: libc::c_int) {
    let Ok(mut v) = socket::get_int_opt(from, level, name) else {
        return;
    };
    if name == libc::SO_RCVBUF {
        // The kernel reports twice the size it was asked for.
        v /= 2;
    }
    let _ = socket::set_int_opt(to, level, name, v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn a_deleted_socket_file_is_bound_again_on_the_same_fd_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sock");
        let sock = socket::bind_unix_dgram(&path, 0o640).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(250))).unwrap();
        let mut w = Watchdog::new(&path).unwrap();
        w.next = Instant::now();
        assert!(w.check().is_none(), "unchanged path");
        std::fs::remove_file(&path).unwrap();
        w.next = Instant::now();
        let new = w.check().expect("re-created");
        let timeout = sock.read_timeout().unwrap();
        w.replace(sock.as_raw_fd(), new).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        let c = UnixDatagram::unbound().unwrap();
        c.connect(&path).unwrap();
        c.send(b"after").unwrap();
        let mut buf = [0u8; 16];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"after");
        // Same timeout as before (the kernel rounds it to its tick).
        assert_eq!(sock.read_timeout().unwrap(), timeout);
    }

    #[test]
    fn a_regular_file_in_the_way_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sock");
        let _sock = socket::bind_unix_dgram(&path, 0o666).unwrap();
        let mut w = Watchdog::new(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"not a socket").unwrap();
        w.next = Instant::now();
        assert!(w.check().is_none());
        assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
    }
}
