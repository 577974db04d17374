//! The datagram receiver's place in the scheduler: the shortest time slice
//! Linux grants, so a datagram arriving while the pipeline thread runs
//! wakes the receiver at once rather than when the pipeline's slice ends.
//!
//! Why: in a pod with a fraction of a core, gatelog's receiver and pipeline
//! share one CPU. Linux's EEVDF scheduler (6.6 on) may let a running task
//! use up its slice before a woken one of the same weight runs: by default
//! about three quarters of a millisecond, scaled up with the number of
//! CPUs. A unix datagram socket queues 11
//! datagrams (`net.unix.max_dgram_qlen` 10), 110 µs of traffic at 100k
//! lines/s: nginx drops the rest. Since 6.12 a task may ask for its own
//! slice, 0.1 to 100 ms, with `sched_setattr`'s `sched_runtime` (no
//! privilege needed), and a woken task with a shorter slice than the
//! running one's may preempt it ("sched/eevdf: Allow shorter slices to
//! wakeup-preempt").
//!
//! Measured on Linux 6.18, job (b) paced at 100k/s in 100 µs slices over
//! unix_udp, gatelog pinned to one CPU (`perf sched timehist`): the
//! receiver's wake-ups that waited over 100 µs for the CPU went from 4% to
//! 0.1%, the mean wait from 24 µs to 8.5 µs. Lines the kernel refused
//! (bench, `--slice-us 100 --repeat 3`): (a) 16.5% → 1.3%, (b) 6.8% →
//! 0.4%, (c) 2.7% → 0.5%, the floor receiver 0.4%. See
//! docs/performance.md.
//!
//! Older kernels take the request and ignore it (CFS has no per-task
//! slice); a thread an operator moved to another policy (`chrt`) is left
//! alone.

use std::time::Duration;

/// The shortest slice Linux grants a normal task.
pub const SLICE: Duration = Duration::from_micros(100);

/// What the request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granted {
    /// The calling thread now has this slice.
    Yes(Duration),
    /// This kernel has no per-task slice for normal tasks (before 6.12).
    Unsupported,
    /// The thread is not under the normal policy (moved by an operator).
    OtherPolicy,
}

/// `struct sched_attr`, its first version (`SCHED_ATTR_SIZE_VER0`, 48 bytes).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// Ask for [`SLICE`] for the calling thread, keeping its policy and nice
/// value.
pub fn ask_short_slice() -> std::io::Result<Granted> {
    let mut attr = get()?;
    if attr.policy != libc::SCHED_OTHER as u32 {
        return Ok(Granted::OtherPolicy);
    }
    // `nice` as read, so the call changes nothing but the slice.
    attr.runtime = SLICE.as_nanos() as u64;
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    attr.flags = 0;
    // SAFETY: a valid, fully initialised sched_attr of the size it states,
    // for the calling thread (pid 0), flags 0.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let now = get()?;
    Ok(if now.runtime == attr.runtime { Granted::Yes(SLICE) } else { Granted::Unsupported })
}

/// The calling thread's scheduling attributes; a normal task's `runtime`
/// is its slice on kernels that have one, 0 before.
fn get() -> std::io::Result<SchedAttr> {
    let mut attr = SchedAttr::default();
    // SAFETY: `attr` is writable for the size passed; pid 0 = the caller.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &mut attr as *mut SchedAttr,
            std::mem::size_of::<SchedAttr>() as libc::c_uint,
            0,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(attr)
}

/// Ask, and say at debug level what came of it (nothing here needs the
/// user: on an older kernel there is nothing they could change).
pub fn ask_short_slice_logged() {
    match ask_short_slice() {
        Ok(Granted::Yes(d)) => {
            tracing::debug!(slice_us = d.as_micros() as u64, "receiver runs with a short scheduler slice")
        }
        Ok(Granted::Unsupported) => {
            tracing::debug!("this kernel has no per-task scheduler slice (Linux < 6.12); receiver keeps the default")
        }
        Ok(Granted::OtherPolicy) => {
            tracing::debug!("receiver thread is not under SCHED_OTHER; its scheduling is left alone")
        }
        Err(e) => tracing::debug!(error = %e, "receiver keeps the default scheduler slice"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kernel version (major, minor) from `uname -r`.
    fn kernel() -> (u32, u32) {
        let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut it = r.trim().split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse().ok());
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }

    #[test]
    fn the_calling_thread_gets_the_short_slice_and_keeps_its_nice_value() {
        std::thread::spawn(|| {
            // SAFETY: plain syscalls on the calling thread.
            let tid = unsafe { libc::gettid() } as libc::id_t;
            // Raising one's own nice value needs no privilege.
            assert_eq!(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 3) }, 0);
            let got = match ask_short_slice() {
                Ok(got) => got,
                // A seccomp profile may forbid the call: nothing to check here then.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOSYS)) => {
                    eprintln!("sched_setattr not allowed here ({e}): skipped");
                    return;
                }
                Err(e) => panic!("sched_setattr on oneself: {e}"),
            };
            if kernel() >= (6, 12) {
                assert_eq!(got, Granted::Yes(SLICE));
                assert_eq!(get().unwrap().runtime, SLICE.as_nanos() as u64);
            } else {
                assert!(matches!(got, Granted::Yes(_) | Granted::Unsupported), "{got:?}");
            }
            assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) }, 3, "nice value kept");
            assert_eq!(get().unwrap().policy, libc::SCHED_OTHER as u32, "policy kept");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_under_another_policy_is_left_alone() {
        std::thread::spawn(|| {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: a valid sched_param for the calling thread.
            assert_eq!(unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) }, 0);
            let Ok(before) = get().map(|a| a.runtime) else {
                eprintln!("sched_getattr not allowed here: skipped");
                return;
            };
            assert_eq!(ask_short_slice().unwrap(), Granted::OtherPolicy);
            assert_eq!(get().unwrap().runtime, before);
            assert_eq!(get().unwrap().policy, libc::SCHED_BATCH as u32);
        })
        .join()
        .unwrap();
    }
}
