//! gatelog's benchmark: the Istio sidecar job and two simpler ones, over
//! unix_udp and udp, blocking and paced, each against the floor receiver in
//! the same run, and rsyslog doing job (b) when `rsyslogd` is installed.
//!
//!     cargo build --release && cargo run --release --example bench -- [options]
//!
//! (`-- --help` lists the options: [`USAGE`].)
//!
//! For each run it prints the receiver's CPU microseconds per message
//! written (user+sys from wait4), throughput, peak RSS, what was lost after
//! the kernel accepted it, duplicates, and the ratio to the floor's CPU per
//! message for the same transport and pacing, and the receiver's context
//! switches and minor page faults per 1,000 messages, and for gatelog the
//! pipeline thread's share of its CPU (the rest is the receiver). The receiver is pinned to CPU 0 and the
//! sender to CPU 1. With `--repeat K` every scenario runs K times, the jobs
//! interleaved, and each row is the run with the median CPU per message
//! (the ranges of CPU and peak RSS are printed beside it): these machines
//! are shared and noisy. `×fl/rnd` is then the median of each round's
//! ratio to the floor run of the same round, seconds apart, which slower
//! drift in the host's speed does not move. `floor2`, the hand-off floor
//! (`floor.rs`), is the least work with gatelog's design (a receive loop
//! that never waits on the disk); `×floor2` is the median of each round's
//! ratio to it, what gatelog costs beyond that design. `--via` and `--load` pick transports and loads;
//! `BENCH_KEEP_STDERR=prefix` keeps each receiver's log as `prefix.<job>`.
//! Paced sends are due in 1 ms slices (100 back to back at 100k/s);
//! `--slice-us 100` spreads them over 100 µs slices, closer to many nginx
//! workers each logging a request now and then.
//! `--baseline PATH` runs every gatelog job a second time with another
//! build (rows `a baseline` …), interleaved with the current one: an A/B
//! comparison that the machine's drift hits alike.
//!
//! Blocking runs measure throughput: gatelog's inputs get `Buffer_Full
//! wait` (the only change to the sidecar config besides paths), so the
//! sender is held back instead of gatelog dropping what the pipeline cannot
//! take yet. Paced runs use the configs as users have them (`drop`).

mod floor;
mod load;

use std::collections::HashSet;
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use load::{Pace, Target, Transport};

const SIDECAR: &str = "tests/fixtures/fluent-bit-sidecar";
const TEMPLATE: &str = "time:{time}\tmethod:{method}\turi:{uri}\tstatus:{status}\tvhost:{vhost}\tremote_addr:{remote_addr}\trequest_time:{request_time}\tuser_agent:{user_agent}";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Job {
    Floor,
    /// The hand-off floor: one thread receives, another writes (`floor.rs`).
    HandoffFloor,
    /// (a) the sidecar pipeline verbatim.
    Sidecar,
    /// (b) the same job with native dated paths and no Lua.
    Native,
    /// (c) raw lines to a file.
    Raw,
    /// rsyslog doing (b): imuxsock/imudp, mmjsonparse, a dated dynaFile and
    /// the same line template (a second reference, when rsyslogd is installed).
    Rsyslog,
}

impl Job {
    fn is_floor(self) -> bool {
        matches!(self, Job::Floor | Job::HandoffFloor)
    }

    fn name(self) -> &'static str {
        match self {
            Job::Floor => "floor",
            Job::HandoffFloor => "floor2",
            Job::Sidecar => "a sidecar",
            Job::Native => "b native",
            Job::Raw => "c raw",
            Job::Rsyslog => "rsyslog b",
        }
    }
}

impl Outcome {
    /// CPU microseconds per message written.
    fn per_msg(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.written.max(1) as f64
    }
}

struct Outcome {
    cpu: Duration,
    /// Context switches (voluntary + involuntary) of the receiver.
    switches: i64,
    /// Minor page faults of the receiver (memory first touched, or touched
    /// again after the allocator gave it back).
    faults: i64,
    /// The pipeline thread's share of gatelog's CPU; the rest is the
    /// receiver (and idle threads).
    pipeline_share: Option<f64>,
    maxrss_kib: i64,
    accepted: u64,
    refused: u64,
    written: u64,
    distinct: u64,
    wall: Duration,
    startup: Option<Duration>,
}

/// The options, printed by `--help` and on a mistake.
const USAGE: &str = "usage: cargo run --release --example bench -- [--messages N] [--paced N] [--rate R] [--slice-us US] [--only floor,floor2,a,b,c,rsyslog] [--repeat K] [--buffer-limit SIZE] [--via unix_udp,udp] [--load blocking,paced] [--gatelog PATH] [--baseline PATH]";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // The floors run as `bench <job name> <transport> <address> <file>`.
    let floor: Option<floor::Run> = match args.get(1).map(String::as_str) {
        Some(n) if n == Job::Floor.name() => Some(floor::run),
        Some(n) if n == Job::HandoffFloor.name() => Some(floor::run_handoff),
        _ => None,
    };
    if let Some(floor) = floor {
        if let Err(e) = floor(&args[2], &args[3], &args[4]) {
            eprintln!("floor: {e}");
            std::process::exit(1);
        }
        return;
    }
    const OPTIONS: [&str; 11] = [
        "--messages",
        "--paced",
        "--rate",
        "--slice-us",
        "--only",
        "--repeat",
        "--buffer-limit",
        "--via",
        "--load",
        "--gatelog",
        "--baseline",
    ];
    // Every option takes a value: `--name value` pairs only.
    for pair in args[1..].chunks(2) {
        if pair.len() != 2 || !OPTIONS.contains(&pair[0].as_str()) {
            let help = pair[0] == "--help" || pair[0] == "-h";
            if !help {
                eprintln!("bench: unexpected argument '{}'", pair[0]);
            }
            eprintln!("{USAGE}");
            std::process::exit(if help { 0 } else { 2 });
        }
    }
    let opt = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let messages: u64 = opt("--messages").and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let paced: u64 = opt("--paced").and_then(|v| v.parse().ok()).unwrap_or(500_000);
    let rate: u64 = opt("--rate").and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let slice_us: u64 = opt("--slice-us").and_then(|v| v.parse().ok()).unwrap_or(1000).max(1);
    let slice = Duration::from_micros(slice_us);
    let repeat: usize = opt("--repeat").and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let buffer_limit = opt("--buffer-limit");
    let via = opt("--via").unwrap_or_else(|| "unix_udp,udp".into());
    let loads = opt("--load").unwrap_or_else(|| "blocking,paced".into());
    let rsyslogd = rsyslogd();
    let only = opt("--only").unwrap_or_else(|| {
        if rsyslogd.is_none() {
            println!("rsyslogd not found: the rsyslog reference is skipped (apt-get install rsyslog)");
        }
        if rsyslogd.is_some() { "floor,floor2,a,b,c,rsyslog" } else { "floor,floor2,a,b,c" }.into()
    });
    let gatelog = PathBuf::from(opt("--gatelog").unwrap_or_else(|| "target/release/gatelog".into()));
    let gatelog = gatelog.canonicalize().unwrap_or(gatelog);
    if !gatelog.exists() {
        eprintln!("build it first: cargo build --release ({} missing)", gatelog.display());
        std::process::exit(1);
    }
    // `cargo build --release --examples` does not rebuild the binary.
    if let (Some(bin), Some(src)) = (modified(&gatelog), newest(Path::new("src"))) {
        if bin < src {
            println!("warning: {} is older than the sources: cargo build --release", gatelog.display());
        }
    }
    // `--baseline PATH`: every gatelog job also runs with that binary,
    // interleaved with the current one (an A/B comparison in one run).
    let baseline = opt("--baseline").map(PathBuf::from).map(|p| p.canonicalize().unwrap_or(p));
    let jobs: Vec<(Job, &Path, String)> = [
        ("floor", Job::Floor),
        ("floor2", Job::HandoffFloor),
        ("a", Job::Sidecar),
        ("b", Job::Native),
        ("c", Job::Raw),
        ("rsyslog", Job::Rsyslog),
    ]
    .into_iter()
    .filter(|(k, _)| only.split(',').any(|o| o == *k))
    .flat_map(|(k, j)| {
        let base = match (&baseline, j) {
            (Some(b), Job::Sidecar | Job::Native | Job::Raw) => Some((j, b.as_path(), format!("{k} baseline"))),
            _ => None,
        };
        std::iter::once((j, gatelog.as_path(), j.name().to_owned())).chain(base)
    })
    .collect();
    println!("machine: {} cores, {}", num_cpus(), cpu_model());
    println!(
        "qlen: net.unix.max_dgram_qlen={}",
        std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen").unwrap_or_default().trim()
    );
    println!(
        "{:<10} {:<8} {:<14} {:>9} {:>7} {:>10} {:>8} {:>10} {:>9} {:>9} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9} {:>6} {:>12}",
        "job",
        "via",
        "load",
        "accepted",
        "refused",
        "written",
        "lost",
        "µs/msg",
        "msg/s",
        "peakRSS",
        "dups",
        "×floor",
        "×fl/rnd",
        "×floor2",
        "cs/1kmsg",
        "flt/1kmsg",
        "pipe%",
        if repeat > 1 { "range: µs/msg  peakRSS" } else { "" }
    );
    for transport in [Transport::UnixUdp, Transport::Udp] {
        if !via.split(',').any(|v| v == transport.name()) {
            continue;
        }
        for (pace, n, label) in [
            (Pace::Blocking, messages, format!("blocking {}k", messages / 1000)),
            (
                Pace::Rate { rate, slice },
                paced,
                if slice_us == 1000 {
                    format!("paced {}k/s", rate / 1000)
                } else {
                    format!("paced {}k/{}µs", rate / 1000, slice_us)
                },
            ),
        ] {
            let kind = if matches!(pace, Pace::Blocking) { "blocking" } else { "paced" };
            if !loads.split(',').any(|l| l == kind) {
                continue;
            }
            // Jobs interleaved `repeat` times, so drift in the machine's load
            // hits every job alike; each row is the run with the median CPU.
            // `×fl/rnd` is the median of each round's ratio to the floor run
            // of the same round, seconds apart: slower drift cancels out.
            let mut runs: Vec<Vec<Option<Outcome>>> = jobs.iter().map(|_| Vec::new()).collect();
            for _ in 0..repeat {
                for (k, (job, bin, name)) in jobs.iter().enumerate() {
                    // One retry: the UDP port is picked free, then bound by the
                    // receiver, and another process may take it in between.
                    let once = || run(*job, transport, pace, n, bin, buffer_limit.as_deref());
                    let outcome = once().or_else(|e| {
                        println!("{:<10} {:<8} {:<14} failed, retrying: {e}", name, transport.name(), label);
                        once()
                    });
                    if let Err(e) = &outcome {
                        println!("{:<10} {:<8} {:<14} failed: {e}", name, transport.name(), label);
                    }
                    runs[k].push(outcome.ok());
                }
            }
            let paired = |to: Job| -> Vec<Option<f64>> {
                let floor_runs = jobs.iter().position(|(job, _, _)| *job == to).map(|f| &runs[f]);
                runs.iter()
                    .map(|job_runs| {
                        let floor_runs = floor_runs?;
                        let mut ratios: Vec<f64> = job_runs
                            .iter()
                            .zip(floor_runs)
                            .filter_map(|(j, f)| Some(j.as_ref()?.per_msg() / f.as_ref()?.per_msg()))
                            .collect();
                        ratios.sort_by(f64::total_cmp);
                        ratios.get(ratios.len() / 2).copied()
                    })
                    .collect()
            };
            let (paired, paired2) = (paired(Job::Floor), paired(Job::HandoffFloor));
            let mut floor_cpu = None;
            for (k, (job, _, name)) in jobs.iter().enumerate() {
                let job = *job;
                let mut all: Vec<&Outcome> = runs[k].iter().flatten().collect();
                if all.is_empty() {
                    continue;
                }
                all.sort_by(|x, y| x.per_msg().total_cmp(&y.per_msg()));
                let (rss_lo, rss_hi) =
                    all.iter().fold((i64::MAX, 0), |(lo, hi), o| (lo.min(o.maxrss_kib), hi.max(o.maxrss_kib)));
                let spread = format!(
                    "{:.2}–{:.2}  {:.1}–{:.1}Mi",
                    all[0].per_msg(),
                    all[all.len() - 1].per_msg(),
                    rss_lo as f64 / 1024.0,
                    rss_hi as f64 / 1024.0
                );
                let o = all[all.len() / 2];
                let per = o.per_msg();
                if job == Job::Floor {
                    floor_cpu = Some(per);
                }
                let ratio = floor_cpu.map(|f| format!("{:.2}", per / f)).unwrap_or_else(|| "-".into());
                let per_round = match paired[k] {
                    Some(r) if repeat > 1 && job != Job::Floor => format!("{r:.2}"),
                    _ => "-".into(),
                };
                let to_handoff = match paired2[k] {
                    Some(r) if !job.is_floor() => format!("{r:.2}"),
                    _ => "-".into(),
                };
                println!(
                    "{:<10} {:<8} {:<14} {:>9} {:>7} {:>10} {:>8} {:>10.2} {:>9.0} {:>7.1}Mi {:>6} {:>8} {:>8} {:>8} {:>9.0} {:>9.0} {:>6} {:>12}",
                    name,
                    transport.name(),
                    label,
                    o.accepted,
                    o.refused,
                    o.written,
                    o.accepted.saturating_sub(o.distinct),
                    per,
                    o.written as f64 / o.wall.as_secs_f64(),
                    o.maxrss_kib as f64 / 1024.0,
                    o.written.saturating_sub(o.distinct),
                    ratio,
                    per_round,
                    to_handoff,
                    o.switches as f64 * 1000.0 / o.written.max(1) as f64,
                    o.faults as f64 * 1000.0 / o.written.max(1) as f64,
                    o.pipeline_share.map(|p| format!("{:.0}", p * 100.0)).unwrap_or_else(|| "-".into()),
                    if all.len() > 1 { spread } else { String::new() }
                );
                if let Some(s) = o.startup {
                    println!("{:<10} start-up to socket ready: {:.1} ms", "", s.as_secs_f64() * 1e3);
                }
            }
        }
    }
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The newest modification time of the files under `dir`.
fn newest(dir: &Path) -> Option<std::time::SystemTime> {
    let mut stack = vec![dir.to_path_buf()];
    let mut best = None;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                best = best.max(modified(&p));
            }
        }
    }
    best
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).unwrap_or(5140)
}

fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, applied to this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % num_cpus(), &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The input section of a job, for a transport.
fn input(transport: Transport, dir: &Path, port: u16, parser: &str, tag: &str) -> String {
    match transport {
        Transport::UnixUdp => format!(
            "[INPUT]\n    Name syslog\n    Tag {tag}\n    Path {}/sys-log.sock\n    Parser {parser}\n    Mode unix_udp\n",
            dir.display()
        ),
        Transport::Udp => format!(
            "[INPUT]\n    Name syslog\n    Tag {tag}\n    Mode udp\n    Listen 127.0.0.1\n    Port {port}\n    Receive_Buffer_Size 4M\n    Parser {parser}\n"
        ),
    }
}

/// Write the job's config into `dir`; returns the config path.
/// Which gatelog settings a run changes besides the job's own config.
#[derive(Clone, Copy)]
struct Tweaks<'a> {
    /// `Buffer_Full wait` on every input (blocking runs).
    wait: bool,
    /// `Buffer_Limit` for the `[SERVICE]` section (`--buffer-limit`).
    buffer_limit: Option<&'a str>,
}

fn config(job: Job, transport: Transport, dir: &Path, port: u16, tweaks: Tweaks<'_>) -> std::io::Result<PathBuf> {
    let out = dir.join("out");
    std::fs::create_dir_all(&out)?;
    let conf = dir.join("gatelog.conf");
    let text = match job {
        Job::Sidecar => {
            for f in ["parsers.conf", "create-log-file-path.lua"] {
                std::fs::copy(Path::new(SIDECAR).join(f), dir.join(f))?;
            }
            let original = std::fs::read_to_string(Path::new(SIDECAR).join("fluent-bit.conf"))?;
            let mut text = original
                .replace("/tmp/sidecar-nginx/sys-log.sock", &format!("{}/sys-log.sock", dir.display()))
                .replace("/log/output/path/", &format!("{}/", out.display()))
                .replace("HTTP_Server         On", "HTTP_Server         Off");
            if transport == Transport::Udp {
                text = text.replace(
                    &format!("    Path                {}/sys-log.sock\n", dir.display()),
                    &format!("    Listen              127.0.0.1\n    Port                {port}\n    Receive_Buffer_Size 4M\n"),
                );
                text = text.replace("Mode                unix_udp", "Mode                udp");
            }
            text
        }
        Job::Native => format!(
            "[SERVICE]\n    Flush 1\n    Grace 120\n{}[FILTER]\n    Name parser\n    Match kube.*\n    Key_Name message\n    Preserve_Key true\n    Reserve_Data true\n    Parser json\n[OUTPUT]\n    Name file\n    Match *\n    Path {}/%Y-%m%d\n    File istio-ingressgateway-access.log\n    Format template\n    Template {TEMPLATE}\n",
            input(transport, dir, port, "rfc3164", "kube.*"),
            out.display()
        ),
        Job::Raw => format!(
            "[SERVICE]\n    Flush 1\n    Grace 120\n{}[OUTPUT]\n    Name file\n    Match *\n    Path {}\n    File raw.log\n    Format template\n    Template {{message}}\n",
            input(transport, dir, port, "raw", "raw"),
            out.display()
        ),
        Job::Floor | Job::HandoffFloor | Job::Rsyslog => String::new(),
    };
    let text = if tweaks.wait { text.replace("[INPUT]\n", "[INPUT]\n    Buffer_Full wait\n") } else { text };
    let text = match tweaks.buffer_limit {
        Some(v) => text.replacen("[SERVICE]\n", &format!("[SERVICE]\n    Buffer_Limit {v}\n"), 1),
        None => text,
    };
    std::fs::write(&conf, text)?;
    Ok(conf)
}

fn rsyslogd() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("rsyslogd")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path.into_iter().chain([PathBuf::from("/usr/sbin/rsyslogd")]).find(|p| p.is_file())
}

/// rsyslog configured for job (b): the header parsed by the rfc3164 parser
/// (hostname and timestamp kept), the JSON body by mmjsonparse, one file per
/// day of the record time, the bench's line template. Its main queue may
/// take two minutes to drain on SIGTERM, so nothing is dropped at shutdown.
fn rsyslog_config(transport: Transport, dir: &Path, port: u16) -> std::io::Result<PathBuf> {
    let out = dir.join("out");
    std::fs::create_dir_all(&out)?;
    let input = match transport {
        Transport::UnixUdp => format!(
            "module(load=\"imuxsock\" SysSock.Use=\"off\")\ninput(type=\"imuxsock\" Socket=\"{}/sys-log.sock\" UseSpecialParser=\"off\" ParseHostname=\"on\" IgnoreTimestamp=\"off\" UseSysTimeStamp=\"off\")\n",
            dir.display()
        ),
        Transport::Udp => format!(
            "module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" rcvbufSize=\"4m\")\n"
        ),
    };
    let line = TEMPLATE.replace('\t', "\\t");
    let line = ["time", "method", "uri", "status", "vhost", "remote_addr", "request_time", "user_agent"].iter().fold(
        line,
        |l, k| {
            let with = if *k == "time" { "%timereported:::date-unixtimestamp%".to_owned() } else { format!("%$!{k}%") };
            l.replacen(&format!("{{{k}}}"), &with, 1)
        },
    );
    let text = format!(
        "global(workDirectory=\"{d}\")\nmodule(load=\"mmjsonparse\")\n{input}main_queue(queue.timeoutShutdown=\"120000\")\n\
         template(name=\"path\" type=\"string\" string=\"{o}/%timereported:::date-year%-%timereported:::date-month%%timereported:::date-day%/istio-ingressgateway-access.log\")\n\
         template(name=\"line\" type=\"string\" string=\"{line}\\n\")\n\
         action(type=\"mmjsonparse\" cookie=\"\")\naction(type=\"omfile\" dynaFile=\"path\" template=\"line\")\n",
        d = dir.display(),
        o = out.display(),
    );
    let conf = dir.join("rsyslog.conf");
    std::fs::write(&conf, text)?;
    Ok(conf)
}

fn run(
    job: Job,
    transport: Transport,
    pace: Pace,
    n: u64,
    gatelog: &Path,
    buffer_limit: Option<&str>,
) -> std::io::Result<Outcome> {
    let dir = tempfile::Builder::new().prefix("gatelog-bench").tempdir()?;
    let port = free_udp_port();
    let sock = dir.path().join("sys-log.sock");
    let mut cmd = if job.is_floor() {
        let mut c = Command::new(std::env::current_exe()?);
        let addr = match transport {
            Transport::UnixUdp => sock.display().to_string(),
            Transport::Udp => format!("127.0.0.1:{port}"),
        };
        std::fs::create_dir_all(dir.path().join("out"))?;
        c.args([job.name(), transport.name(), &addr]).arg(dir.path().join("out/floor.log"));
        c
    } else if job == Job::Rsyslog {
        let conf = rsyslog_config(transport, dir.path(), port)?;
        let mut c = Command::new(rsyslogd().ok_or_else(|| std::io::Error::other("rsyslogd not installed"))?);
        c.arg("-n").arg("-f").arg(conf).arg("-i").arg(dir.path().join("rsyslog.pid")).env("TZ", "Asia/Tokyo");
        c
    } else {
        let tweaks = Tweaks { wait: matches!(pace, Pace::Blocking), buffer_limit };
        let conf = config(job, transport, dir.path(), port, tweaks)?;
        let mut c = Command::new(gatelog);
        c.arg("-c").arg(conf).env("TZ", "Asia/Tokyo");
        c
    };
    cmd.current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr"))?);
    // SAFETY: pre_exec runs only async-signal-safe sched_setaffinity.
    unsafe {
        cmd.pre_exec(|| {
            pin(0);
            Ok(())
        });
    }
    let spawned = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id() as i32;
    let startup = match wait_ready(transport, &sock, port, spawned, &mut child) {
        Ok(s) => s,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
            let last = log.lines().last().unwrap_or("(no output)");
            return Err(std::io::Error::other(format!("{e}; its last log line: {last}")));
        }
    };
    let target = match transport {
        Transport::UnixUdp => Target::Unix(sock.clone()),
        Transport::Udp => Target::Udp(port),
    };
    let sender = std::thread::spawn(move || {
        pin(1);
        load::send(&target, n, pace)
    });
    let sent = sender.join().map_err(|_| std::io::Error::other("sender panicked"))??;
    // Give the receiver a moment to take what is queued, then ask it to drain and exit.
    std::thread::sleep(Duration::from_millis(200));
    // gatelog's pipeline thread's share of its CPU so far (the final drain
    // after SIGTERM is left out; it is small).
    let pipeline_share = (!job.is_floor() && job != Job::Rsyslog).then(|| pipeline_share(pid)).flatten();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let mut status = 0;
    // SAFETY: zeroed rusage is valid; waiting on our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // Peak RSS is the child's own VmHWM, read until it exits: wait4's
    // ru_maxrss carries over the forked parent's size across exec.
    let mut hwm_kib = vm_hwm_kib(pid);
    loop {
        // SAFETY: as above, without blocking.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r != 0 {
            break;
        }
        hwm_kib = hwm_kib.max(vm_hwm_kib(pid));
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = spawned.elapsed() - startup.unwrap_or_default();
    std::mem::forget(child);
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    let (written, distinct) = count(&dir.path().join("out"))?;
    if status != 0 {
        let log = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
        eprintln!(
            "{} exited with status {status}:\n{}",
            job.name(),
            log.lines().rev().take(10).collect::<Vec<_>>().join("\n")
        );
    }
    if let Ok(to) = std::env::var("BENCH_KEEP_STDERR") {
        let _ = std::fs::copy(dir.path().join("stderr"), format!("{to}.{}", job.name().replace(' ', "-")));
    }
    Ok(Outcome {
        cpu,
        switches: usage.ru_nvcsw + usage.ru_nivcsw,
        faults: usage.ru_minflt,
        pipeline_share,
        maxrss_kib: hwm_kib,
        accepted: sent.accepted,
        refused: sent.refused,
        written,
        distinct,
        wall,
        startup: (transport == Transport::UnixUdp).then_some(startup).flatten(),
    })
}

/// The `gatelog-pipeline` thread's share of the CPU ticks of process
/// `pid`'s threads (`/proc/<pid>/task/*/stat`, user + system).
fn pipeline_share(pid: i32) -> Option<f64> {
    let (mut pipeline, mut all) = (0u64, 0u64);
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        // `pid (comm) state ...`: comm may hold spaces, so split after its `)`.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let comm = &stat[open + 1..close];
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime and stime are fields 14 and 15; `rest` starts at field 3.
        let ticks: u64 = rest.get(11..13).into_iter().flatten().filter_map(|v| v.parse::<u64>().ok()).sum();
        all += ticks;
        if comm == "gatelog-pipelin" {
            pipeline += ticks;
        }
    }
    (all > 0).then(|| pipeline as f64 / all as f64)
}

/// `VmHWM` of a live process, in KiB (0 once it is gone).
fn vm_hwm_kib(pid: i32) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// Wait until the receiver's socket is bound; the time since spawn for unix sockets.
fn wait_ready(
    transport: Transport,
    sock: &Path,
    port: u16,
    spawned: Instant,
    child: &mut std::process::Child,
) -> std::io::Result<Option<Duration>> {
    let deadline = spawned + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(std::io::Error::other(format!("receiver exited before binding its socket ({status})")));
        }
        let ready = match transport {
            Transport::UnixUdp => sock.exists(),
            // Bound once binding the port ourselves fails.
            Transport::Udp => std::net::UdpSocket::bind(("127.0.0.1", port)).is_err(),
        };
        if ready {
            return Ok(Some(spawned.elapsed()));
        }
        if Instant::now() > deadline {
            return Err(std::io::Error::other("receiver did not bind its socket within 10 s"));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Lines written under `dir` and distinct sequence numbers among them.
fn count(dir: &Path) -> std::io::Result<(u64, u64)> {
    let mut lines = 0u64;
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&p)?);
            for line in f.split(b'\n') {
                let line = line?;
                lines += 1;
                if let Some(i) = memchr::memmem::find(&line, b"seq=") {
                    let digits: Vec<u8> = line[i + 4..].iter().take_while(|b| b.is_ascii_digit()).copied().collect();
                    if let Ok(s) = std::str::from_utf8(&digits).unwrap_or("").parse::<u64>() {
                        seen.insert(s);
                    }
                }
            }
        }
    }
    Ok((lines, seen.len() as u64))
}
