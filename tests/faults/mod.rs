//! Faults through the real binary: the output directory vanishing or turning
//! into a file, a full disk, the socket file deleted, a burst far beyond the
//! buffer limit, SIGKILL mid-stream, a Lua script that fails now and then.
//! Each test asserts what the operator sees (log lines, the shutdown
//! summary's counters) and exactly what is lost. docs/robustness.md is the
//! table these tests back.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Syslog → json parser filter → one plain JSON line per record in
/// `{dir}/logs/out.log`, flushed every 0.2 s. `EXTRA` takes more sections.
const CONF: &str = "[SERVICE]
    Flush 0.2
    Grace 5
    SERVICE_EXTRA
[INPUT]
    Name syslog
    Mode unix_udp
    Path {dir}/g.sock
    Parser rfc3164
    Tag nginx
[FILTER]
    Name parser
    Match nginx
    Key_Name message
    Parser json
    Reserve_Data On
FILTER_EXTRA
[OUTPUT]
    Name file
    Match nginx
    Path {dir}/logs
    File out.log
    Format plain
";

fn conf(service: &str, filter: &str) -> String {
    CONF.replace("SERVICE_EXTRA", service).replace("FILTER_EXTRA", filter)
}

fn start(conf: &str, extra: &[(&str, &str)]) -> (Gatelog, PathBuf) {
    let mut files = vec![("f.conf", conf)];
    files.extend_from_slice(extra);
    let mut g = Gatelog::start(&files, &["-c", "{dir}/f.conf"], &[("TZ", "UTC")]);
    let sock = g.wait_for("g.sock");
    (g, sock)
}

fn lines(range: std::ops::Range<u64>) -> Vec<Vec<u8>> {
    range.map(|i| nginx_line(None, i, "example.com", "/f")).collect()
}

/// The sum of `key=N` over the log lines containing `what` (e.g. "output summary").
fn counter(log: &str, what: &str, key: &str) -> u64 {
    let pat = format!("{key}=");
    log.lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| l.split(&pat).nth(1))
        .filter_map(|v| {
            v.trim_start_matches(|c: char| !c.is_ascii_digit())
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// The `seq` of every line of `text`, and the lines that are not one
/// complete JSON object.
fn seqs(text: &str) -> (Vec<u64>, Vec<String>) {
    let json = json_line_parser();
    let ctx =
        gatelog::parser::ParseContext { now: gatelog::record::Timestamp::new(0, 0), zone: gatelog::zone::Zone::Utc };
    let mut seqs = Vec::new();
    let mut bad = Vec::new();
    for line in text.split_inclusive('\n') {
        match json.parse(line.as_bytes(), &ctx) {
            Ok(p) if line.ends_with('\n') => match p.fields.get_first("seq") {
                Some(gatelog::record::Value::Int(i)) => seqs.push(*i as u64),
                _ => bad.push(line.to_owned()),
            },
            _ => bad.push(line.to_owned()),
        }
    }
    (seqs, bad)
}

fn json_line_parser() -> gatelog::parser::Parser {
    gatelog::parser::Parser::from_section(&crate::replay::props::section(
        "PARSER",
        &[("Name", "json"), ("Format", "json")],
    ))
    .unwrap()
}

fn out_text(g: &Gatelog) -> String {
    String::from_utf8_lossy(&std::fs::read(g.path("logs/out.log")).unwrap_or_default()).into_owned()
}

/// Wait until `cond` holds (checked every 20 ms), failing after 15 s.
fn wait_until(what: &str, g: &Gatelog, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{}", g.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_seqs(g: &Gatelog, n: usize) {
    wait_until(&format!("{n} lines"), g, || seqs(&out_text(g)).0.len() >= n);
}

#[test]
fn output_dir_removed_is_recreated_and_a_file_in_its_place_drops_only_what_was_due_meanwhile() {
    let (mut g, sock) = start(&conf("", ""), &[]);
    send_all(&sock, &lines(0..10));
    wait_seqs(&g, 10);

    // Removed: the next write-out notices (the file is stat'ed before each
    // write), re-creates the directory (Mkdir on) and nothing is lost.
    std::fs::remove_dir_all(g.path("logs")).unwrap();
    send_all(&sock, &lines(10..20));
    wait_seqs(&g, 10);
    assert_eq!(seqs(&out_text(&g)).0, (10..20).collect::<Vec<_>>());

    // A regular file where the directory was (what "read-only" means for a
    // root process): every write-out fails and its records are dropped and
    // counted, with one rate-limited warning.
    std::fs::remove_dir_all(g.path("logs")).unwrap();
    std::fs::write(g.path("logs"), b"in the way").unwrap();
    send_all(&sock, &lines(20..30));
    wait_until("the open error", &g, || g.log_text().contains("could not open output file"));
    // Every record sent is past the pipeline after a few flush ticks.
    std::thread::sleep(Duration::from_millis(1000));

    // Restored: later records are written again.
    std::fs::remove_file(g.path("logs")).unwrap();
    send_all(&sock, &lines(30..40));
    wait_seqs(&g, 10);
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    let (got, bad) = seqs(&out_text(&g));
    assert_eq!(got, (30..40).collect::<Vec<_>>());
    assert!(bad.is_empty(), "{bad:?}");
    let log = &done.log;
    assert_eq!(counter(log, "output summary", "written"), 30, "{log}");
    assert_eq!(counter(log, "output summary", "dropped"), 10, "{log}");
    assert!(counter(log, "output summary", "errors") >= 1, "{log}");
    assert!(log.contains("Not a directory"), "{log}");
}

/// Unmounts (lazily) on drop, so a failing test leaves no mount behind.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `GATELOG_FAULTS_NO_MOUNT=1` forces the `RLIMIT_FSIZE` variant.
fn mount_tmpfs(dir: &Path, size: &str) -> Option<Mount> {
    std::fs::create_dir_all(dir).ok()?;
    if std::env::var_os("GATELOG_FAULTS_NO_MOUNT").is_some() {
        return None;
    }
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| Mount(dir.to_path_buf()))
}

/// Start with the logs on a 64 KiB tmpfs when this machine lets us mount
/// one, else under `RLIMIT_FSIZE` of 64 KiB (gatelog ignores SIGXFSZ, so
/// the write fails with EFBIG instead of killing it).
fn start_disk_limited(conf: &str) -> (Gatelog, PathBuf, Option<Mount>) {
    use std::os::unix::process::CommandExt;
    let dir = temp_files(&[("f.conf", conf)]);
    let mount = mount_tmpfs(&dir.path().join("logs"), "64k");
    let log = dir.path().join("gatelog.stderr");
    let mut cmd = std::process::Command::new(BIN);
    cmd.current_dir(dir.path())
        .arg("-c")
        .arg(dir.path().join("f.conf"))
        .env("TZ", "UTC")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    if mount.is_none() {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit { rlim_cur: 64 * 1024, rlim_max: 64 * 1024 };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = cmd.spawn().unwrap();
    let mut g = Gatelog { child: Some(child), dir, log };
    let sock = g.wait_for("g.sock");
    (g, sock, mount)
}

#[test]
fn disk_full_drops_and_counts_the_buffers_that_do_not_fit_and_keeps_running() {
    let (mut g, sock, mount) = start_disk_limited(&conf("", ""));
    // ~620 bytes a line: 400 lines are ~4 times what fits. Sent in small
    // chunks a flush tick apart, so the first buffers fit and a later one
    // hits the limit.
    for chunk in 0..16 {
        send_all(&sock, &lines(chunk * 25..chunk * 25 + 25));
        std::thread::sleep(Duration::from_millis(250));
    }
    wait_until("the write error", &g, || g.log_text().contains("could not write output file"));
    std::thread::sleep(Duration::from_millis(1000));
    let full = out_text(&g);
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    let log = &done.log;
    let written = counter(log, "output summary", "written");
    let dropped = counter(log, "output summary", "dropped");
    // Every record is either counted written or counted dropped.
    assert_eq!(written + dropped, 400, "{log}");
    assert!(written > 0 && dropped > 0, "{log}");
    assert!(counter(log, "output summary", "errors") >= 1, "{log}");
    let reason = if mount.is_some() { "No space left on device" } else { "File too large" };
    assert!(log.contains(reason), "{log}");
    // On disk: the written records, whole, plus at most the bytes of the one
    // buffer whose write was cut short (counted as dropped, not as written).
    // The file holds a prefix of the stream: what was counted written, then
    // possibly the part of the failing buffer that fit (counted dropped),
    // ending in at most one cut line.
    let (got, bad) = seqs(&full);
    assert!(got.len() as u64 >= written, "{} lines on disk, {written} counted written", got.len());
    assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>());
    assert!(bad.len() <= 1, "more than one cut line: {bad:?}");
    if let Some(b) = bad.first() {
        assert!(full.ends_with(b.as_str()), "the cut line is the last: {b:?}");
    }
    assert!(full.len() <= 64 * 1024);
    drop(mount);
}

#[test]
fn deleted_socket_file_is_recreated_and_new_senders_reach_it() {
    let (mut g, sock) = start(&conf("", ""), &[]);
    let old = client(&sock);
    old.send(&nginx_line(None, 0, "before.example", "/")).unwrap();
    wait_seqs(&g, 1);
    std::fs::remove_file(&sock).unwrap();
    wait_until("the socket file to come back", &g, || sock.exists());
    send_all(&sock, &lines(1..3));
    wait_seqs(&g, 3);
    // The old socket was closed when the new one took its place: a sender
    // still connected to it gets an error (nginx then reconnects by path).
    assert!(old.send(b"<190>Nov 23 16:30:00 nginx: {}").is_err());
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    assert_eq!(seqs(&out_text(&g)).0, vec![0, 1, 2]);
    assert!(done.log.contains("socket file was deleted; re-created the socket"), "{}", done.log);
    assert!(!sock.exists(), "socket removed on exit");
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn a_burst_far_beyond_the_buffer_limit_keeps_memory_bounded_and_counts_every_drop() {
    let (mut g, sock) = start(&conf("Buffer_Limit 100K", ""), &[]);
    let pid = g.child.as_ref().unwrap().id();
    // 40 MB of datagrams from four senders at once, 400 times the budget.
    let mut big = b"<190>Nov 23 16:30:00 nginx: {\"pad\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'x', 4000));
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let sock = sock.clone();
            let big = big.clone();
            std::thread::spawn(move || {
                let c = client(&sock);
                for i in 0..2500u64 {
                    let mut m = big.clone();
                    m.extend(format!("\",\"seq\":{}}}", t * 10_000 + i).as_bytes());
                    c.send(&m).unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let hwm = vm_hwm_kib(pid);
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    let log = &done.log;
    let received = counter(log, "input summary", "received");
    let records = counter(log, "input summary", "records");
    let buffer_full = counter(log, "input summary", "dropped_buffer_full");
    let other = counter(log, "input summary", "dropped_parse_failure")
        + counter(log, "input summary", "dropped_oversize")
        + counter(log, "input summary", "dropped_empty");
    let written = counter(log, "output summary", "written");
    let on_disk = seqs(&out_text(&g)).0.len() as u64;
    // Blocking sends: the kernel took every datagram; each one is written or
    // counted as dropped, exactly.
    assert_eq!(received, 10_000, "{log}");
    assert_eq!(received, records + buffer_full + other, "{log}");
    assert_eq!(other, 0, "{log}");
    assert_eq!(written, records, "{log}");
    assert_eq!(on_disk, written, "{log}");
    // 40 MB went through a 100 KB budget: resident memory stays far below.
    assert!(hwm < 64 * 1024, "VmHWM {hwm} KiB");
    eprintln!("burst: received={received} written={written} dropped_buffer_full={buffer_full} VmHWM={hwm}KiB");
}

#[test]
fn sigkill_mid_stream_keeps_every_flushed_line_and_at_most_a_final_partial_one() {
    let (mut g, sock) = start(&conf("", ""), &[]);
    send_all(&sock, &lines(0..1000));
    // Flushed: on disk (Flush 0.2).
    wait_seqs(&g, 1000);
    let streaming = {
        let sock = sock.clone();
        std::thread::spawn(move || {
            let c = client(&sock);
            let mut sent = 0u64;
            for i in 1000..200_000u64 {
                if c.send(&nginx_line(None, i, "example.com", "/f")).is_err() {
                    break;
                }
                sent += 1;
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_millis(700));
    g.signal(libc::SIGKILL);
    let killed = g.wait();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&killed.status), Some(libc::SIGKILL));
    let _ = streaming.join().unwrap();
    let text = out_text(&g);
    let (got, bad) = seqs(&text);
    // Every complete line is one valid JSON record; only the very last line
    // may be cut (a write interrupted by the kill).
    assert!(bad.len() <= 1, "{bad:?}");
    if let Some(b) = bad.first() {
        assert!(text.ends_with(b.as_str()) && !b.ends_with('\n'), "a cut line that is not the last: {b:?}");
    }
    // Everything flushed before the kill is there, in order, once.
    assert!(got.len() >= 1000);
    assert_eq!(&got[..1000], &(0..1000).collect::<Vec<_>>()[..]);
    let mut sorted = got.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), got.len(), "duplicated lines");

    // The socket file outlived the process; a new gatelog in the same
    // directory replaces the stale socket and appends after the cut line.
    assert!(sock.exists());
    let restart = std::process::Command::new(BIN)
        .current_dir(g.dir.path())
        .args(["-c"])
        .arg(g.path("f.conf"))
        .env("TZ", "UTC")
        .stderr(std::fs::File::create(g.path("restart.stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut r = Gatelog { child: Some(restart), dir: tempfile::tempdir().unwrap(), log: g.path("restart.stderr") };
    wait_until("the restart to bind", &g, || client_ok(&sock));
    send_all(&sock, &lines(500_000..500_001));
    wait_until("the line after restart", &g, || out_text(&g).contains("\"seq\":500000"));
    let done = r.stop();
    assert!(done.status.success(), "{}", done.log);
}

fn client_ok(sock: &Path) -> bool {
    std::os::unix::net::UnixDatagram::unbound().and_then(|c| c.connect(sock)).is_ok()
}

const LUA: &str = r#"
function every_thousandth_fails(tag, ts, record)
  if record["seq"] % 1000 == 0 then
    error("refusing seq " .. record["seq"])
  end
  record["lua"] = "ok"
  return 1, ts, record
end
"#;

#[test]
fn a_lua_error_on_one_record_in_a_thousand_passes_those_records_unchanged_and_counts_them() {
    let filter = "[FILTER]
    Name lua
    Match nginx
    script {dir}/f.lua
    call every_thousandth_fails
";
    let (mut g, sock) = start(&conf("", filter), &[("f.lua", LUA)]);
    send_all(&sock, &lines(0..3000));
    wait_seqs(&g, 3000);
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    let text = out_text(&g);
    let (got, bad) = seqs(&text);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(got, (0..3000).collect::<Vec<_>>());
    let failed: Vec<&str> = text.lines().filter(|l| !l.contains("\"lua\":\"ok\"")).collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    for (line, seq) in failed.iter().zip([0, 1000, 2000]) {
        assert!(line.contains(&format!("\"seq\":{seq}}}")) || line.contains(&format!("\"seq\":{seq},")), "{line}");
    }
    let log = &done.log;
    assert_eq!(counter(log, "filter summary", "errors"), 3, "{log}");
    assert_eq!(counter(log, "output summary", "written"), 3000, "{log}");
    assert!(log.contains("refusing seq 0; record passed unchanged"), "{log}");
}

/// Known defect, pinned: when a write-out fails half way (disk full), the
/// bytes that did land stay in the file, so once space is back the next
/// record is appended to a cut line and that line is no longer JSON. The
/// fix belongs in `output/cache.rs` (truncate back to the length before the
/// failed write); enable this test with it.
#[test]
fn disk_full_recovery_leaves_no_cut_line_glued_to_the_next_record() {
    let (mut g, sock, mount) = start_disk_limited(&conf("", ""));
    let Some(m) = mount else { return };
    for chunk in 0..16 {
        send_all(&sock, &lines(chunk * 25..chunk * 25 + 25));
        std::thread::sleep(Duration::from_millis(250));
    }
    wait_until("the write error", &g, || g.log_text().contains("could not write output file"));
    let remount = std::process::Command::new("mount").args(["-o", "remount,size=4m"]).arg(&m.0).status().unwrap();
    assert!(remount.success());
    send_all(&sock, &lines(1000..1010));
    wait_until("the lines after recovery", &g, || out_text(&g).contains("\"seq\":1009"));
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    let (got, bad) = seqs(&out_text(&g));
    assert!(bad.is_empty(), "cut lines left in the file: {bad:?}");
    assert_eq!(got.iter().filter(|s| **s >= 1000).count(), 10);
    drop(m);
}
