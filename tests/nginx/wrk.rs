//! nginx under wrk at full speed for a few seconds, logging to gatelog over
//! the unix socket and over loopback UDP: a report, not an assertion (loss
//! at the kernel queue depends on the machine). Prints requests served
//! (nginx's own file log), lines gatelog wrote, what nginx reported as
//! failed sends and what gatelog counted as dropped. Ignored by default:
//!
//!     cargo test --release --test gatelog nginx::wrk -- --ignored --nocapture

use std::process::Command;

use super::server::{free_port, nginx_or_skip, Listener, Nginx};
use super::{sidecar_files, ROOT};
use crate::support::*;

fn lines_in(files: &[(String, String)]) -> usize {
    files.iter().map(|(_, c)| c.lines().count()).sum()
}

/// `text` without ANSI colour sequences (`ESC [ … m`).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// Sum of `key=N` over gatelog's log lines.
fn summed(log: &str, key: &str) -> u64 {
    let pat = format!("{key}=");
    plain(log)
        .lines()
        .flat_map(|l| l.split(&pat).skip(1))
        .filter_map(|v| v.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok())
        .sum()
}

fn run(transport: &str) {
    let Some(nginx_bin) = nginx_or_skip("wrk") else { return };
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk: skipped, no wrk binary (apt-get install wrk)");
        return;
    }
    let mut files = sidecar_files(free_port());
    let udp_port = free_port();
    let target = if transport == "udp" {
        // istio/udp/fluent-bit.conf: the loopback UDP variant, on a free port.
        let udp = std::fs::read_to_string(format!("{ROOT}/istio/udp/fluent-bit.conf")).unwrap();
        let unix = &files[0].1;
        let input_of = |c: &str| c[c.find("[INPUT]").unwrap()..c.find("[FILTER]").unwrap()].to_string();
        let input = input_of(&udp).replace("Port                5140", &format!("Port                {udp_port}"));
        files[0].1 = unix.replace(&input_of(unix), &input);
        format!("127.0.0.1:{udp_port}")
    } else {
        "unix:{dir}/sys-log.sock".to_string()
    };
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, c)| (*n, c.as_str())).collect();
    let mut g = Gatelog::start(&refs, &["-c", "{dir}/fluent-bit.conf"], &[("TZ", "Asia/Tokyo")]);
    if transport == "udp" {
        // No socket file to wait for: give the receiver a moment to bind.
        std::thread::sleep(std::time::Duration::from_millis(500));
    } else {
        g.wait_for("sys-log.sock");
    }
    let target = target.replace("{dir}", &g.dir.path().display().to_string());
    let port = free_port();
    let mut nginx =
        Nginx::start(&nginx_bin, &g.path("nginx"), &target, &[Listener { port, syslog_params: "" }], 2, true);
    let out =
        Command::new("wrk").args(["-t2", "-c50", "-d3s", &format!("http://127.0.0.1:{port}/wrk")]).output().unwrap();
    nginx.stop();
    let served = std::fs::read_to_string(g.path("nginx/truth.log")).unwrap().lines().count();
    wait_lines(&g.path("out"), served);
    // Stop drains whatever gatelog still holds; count after it.
    let done = g.stop();
    let written = lines_in(&files_under(&g.path("out")));
    for l in plain(&done.log).lines().filter(|l| l.contains("summary")) {
        eprintln!("  gatelog: {l}");
    }
    let errors = nginx.error_log();
    let failed = errors.matches("send() to syslog failed").count();
    let qlen = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen").unwrap_or_default();
    let wrk_summary: Vec<&str> = std::str::from_utf8(&out.stdout)
        .unwrap_or("")
        .lines()
        .filter(|l| l.contains("Requests/sec") || l.contains("requests in"))
        .collect();
    let dropped = summed(&done.log, "dropped_buffer_full") as usize;
    eprintln!(
        "wrk report ({transport}, net.unix.max_dgram_qlen={}): served {served}, written {written}, missing {}, \
         nginx failed sends {failed}, gatelog dropped_buffer_full {dropped}, unexplained {}; wrk: {}",
        qlen.trim(),
        served.saturating_sub(written),
        served as i64 - written as i64 - failed as i64 - dropped as i64,
        wrk_summary.join(" / ").split_whitespace().collect::<Vec<_>>().join(" "),
    );
    assert!(done.status.success(), "{}", done.log);
    assert!(served > 0, "wrk served nothing:\n{}\n{errors}", String::from_utf8_lossy(&out.stderr));
}

#[test]
#[ignore = "load report: cargo test --release --test gatelog nginx::wrk -- --ignored --nocapture"]
fn wrk_full_speed_over_the_unix_socket_report() {
    run("unix");
}

#[test]
#[ignore = "load report: cargo test --release --test gatelog nginx::wrk -- --ignored --nocapture"]
fn wrk_full_speed_over_loopback_udp_report() {
    run("udp");
}
