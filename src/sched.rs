//! Which of gatelog's threads gets the CPU first: the datagram receivers.
//! A receiver that waits for the CPU while the kernel's queue of 11
//! datagrams fills loses lines at the sender, so both sides of the one
//! CPU they usually share are set here: the pipeline thread yields
//! ([`pipeline_yields`], `SCHED_BATCH`), and each receiver asks for the
//! shortest time slice Linux grants ([`ask_short_slice`]), so a datagram
//! arriving while the pipeline runs usually gets the receiver onto the CPU
//! at once rather than when the pipeline's slice ends.
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
//! Kernels before 6.12 take the request and ignore it (they have no
//! per-task slice for normal tasks), and gatelog says so at start-up; a
//! thread an operator moved to another policy (`chrt`) is left alone.

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

/// `SCHED_FLAG_RESET_ON_FORK`: kept as found (clearing it needs privilege).
const RESET_ON_FORK: u64 = 0x01;

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
    // `nice` and reset-on-fork as read, so the call changes nothing but the
    // slice (no `SCHED_FLAG_KEEP_PARAMS`: it would keep the slice too).
    attr.runtime = SLICE.as_nanos() as u64;
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    attr.flags &= RESET_ON_FORK;
    // SAFETY: a valid, fully initialised sched_attr of the size it states,
    // for the calling thread (pid 0), flags 0.
    let r = unsafe {
        libc::syscall(libc::SYS_sched_setattr, 0 as libc::pid_t, &attr as *const SchedAttr, 0 as libc::c_uint)
    };
    if r != 0 {
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
            0 as libc::pid_t,
            &mut attr as *mut SchedAttr,
            std::mem::size_of::<SchedAttr>() as libc::c_uint,
            0 as libc::c_uint,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(attr)
}

/// Put the pipeline thread under `SCHED_BATCH`: a wake-up of this thread
/// (a batch handed over) no longer preempts the receiver, which keeps
/// draining the socket until it is empty, so the kernel queue overflows
/// less. Measured with the bench (`--repeat 3`, paced 100k/s over
/// unix_udp, raw job): context switches 67 → 22 per 1,000 messages,
/// datagrams refused by the kernel 15,283 → 2,528 (the floor receiver:
/// 12,987). Needs no privilege; if refused, nothing changes but that.
pub fn pipeline_yields() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a valid sched_param for this thread (pid 0 = the caller).
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "pipeline thread stays on the default scheduling policy");
    }
}

/// Ask, and say what came of it: at info level when the receiver did not
/// get the slice (on one busy CPU it may then wait for the pipeline while
/// the kernel queue fills; see the README's kernel queue section).
pub fn ask_short_slice_logged() {
    const WHY: &str = "datagrams may wait in the kernel queue while the pipeline thread has the CPU";
    match ask_short_slice() {
        Ok(Granted::Yes(d)) => {
            tracing::debug!(slice_us = d.as_micros() as u64, "receiver runs with a short scheduler slice")
        }
        Ok(Granted::Unsupported) => {
            tracing::info!("this kernel gives no short scheduler slice to the receiver (Linux < 6.12): {WHY}")
        }
        Ok(Granted::OtherPolicy) => {
            tracing::debug!("receiver thread is not under SCHED_OTHER; its scheduling is left alone")
        }
        Err(e) => tracing::info!(error = %e, "the receiver keeps the default scheduler slice: {WHY}"),
    }
}

const _: () = assert!(std::mem::size_of::<SchedAttr>() == 48);

#[cfg(test)]
mod tests {
    use super::*;

    /// Kernel version (major, minor) from `uname -r`.
    fn kernel() -> (u32, u32) {
        let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut it = r.trim().split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse().ok());
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }

    /// Run `f` on a thread of its own (scheduling settings are per thread),
    /// unless a seccomp profile forbids reading them: then say so and skip.
    fn on_own_thread(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(move || {
            if get().is_err() {
                eprintln!("sched_getattr not allowed here (seccomp?): skipped");
                return;
            }
            f()
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_calling_thread_gets_the_short_slice_and_keeps_its_nice_value() {
        on_own_thread(|| {
            // SAFETY: plain syscalls on the calling thread.
            let tid = unsafe { libc::gettid() } as libc::id_t;
            // Raising one's own nice value needs no privilege.
            let nice = (unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) } + 1).min(19);
            assert_eq!(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) }, 0);
            let got = ask_short_slice().expect("sched_setattr on oneself");
            if kernel() >= (6, 12) {
                assert_eq!(got, Granted::Yes(SLICE));
                assert_eq!(get().unwrap().runtime, SLICE.as_nanos() as u64);
            } else {
                assert!(matches!(got, Granted::Yes(_) | Granted::Unsupported), "{got:?}");
            }
            assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) }, nice, "nice value kept");
            assert_eq!(get().unwrap().policy, libc::SCHED_OTHER as u32, "policy kept");
        });
    }

    #[test]
    fn reset_on_fork_is_kept() {
        on_own_thread(|| {
            let mut attr = get().unwrap();
            // Setting the flag needs no privilege (clearing it does).
            attr.flags = RESET_ON_FORK;
            attr.size = std::mem::size_of::<SchedAttr>() as u32;
            // SAFETY: a valid sched_attr for the calling thread.
            let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0 as libc::pid_t, &attr as *const SchedAttr, 0) };
            assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
            ask_short_slice().expect("sched_setattr on oneself");
            assert_eq!(get().unwrap().flags & RESET_ON_FORK, RESET_ON_FORK);
        });
    }

    #[test]
    fn a_thread_under_another_policy_is_left_alone() {
        on_own_thread(|| {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: a valid sched_param for the calling thread.
            assert_eq!(unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) }, 0);
            let before = get().unwrap().runtime;
            assert_eq!(ask_short_slice().unwrap(), Granted::OtherPolicy);
            assert_eq!(get().unwrap().runtime, before);
            assert_eq!(get().unwrap().policy, libc::SCHED_BATCH as u32);
        });
    }
}
