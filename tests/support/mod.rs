//! Shared helpers for the integration tests: run the real `gatelog` binary
//! in a temp dir, send it real datagrams, read the real files.

#![allow(dead_code)]

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_gatelog");

/// A running gatelog with its own temp dir; killed on drop if still running.
pub struct Gatelog {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
}

pub struct Finished {
    pub status: ExitStatus,
    pub log: String,
}

/// Write `files` (name, content; `{dir}` replaced by the temp dir) into a new
/// temp dir.
pub fn temp_files(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, content.replace("{dir}", &dir.path().display().to_string())).unwrap();
    }
    dir
}

impl Gatelog {
    /// Start `gatelog ARGS` in a temp dir holding `files`; `{dir}` in
    /// contents and args is the temp dir.
    pub fn start(files: &[(&str, &str)], args: &[&str], envs: &[(&str, &str)]) -> Gatelog {
        let dir = temp_files(files);
        let d = dir.path().display().to_string();
        let log = dir.path().join("gatelog.stderr");
        let mut cmd = Command::new(BIN);
        cmd.current_dir(dir.path())
            .args(args.iter().map(|a| a.replace("{dir}", &d)))
            .env_remove("GATELOG_SOCKET")
            .env_remove("GATELOG_LOGS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in envs {
            cmd.env(k, v.replace("{dir}", &d));
        }
        let child = cmd.spawn().unwrap();
        Gatelog { child: Some(child), dir, log }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Wait until `rel` exists (the socket is bound).
    pub fn wait_for(&mut self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !p.exists() {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("gatelog exited ({st}) before {rel} appeared:\n{}", self.log_text());
            }
            assert!(Instant::now() < deadline, "{rel} never appeared:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(10));
        }
        p
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(pid, sig) };
    }

    /// SIGTERM and wait for the exit.
    pub fn stop(&mut self) -> Finished {
        self.signal(libc::SIGTERM);
        self.wait()
    }

    pub fn wait(&mut self) -> Finished {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Finished { status, log: self.log_text() };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("gatelog did not exit:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Gatelog {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A client socket connected to gatelog's datagram socket.
pub fn client(sock: &Path) -> UnixDatagram {
    let c = UnixDatagram::unbound().unwrap();
    c.connect(sock).unwrap();
    c
}

/// Send each message as one datagram, blocking (so none is refused).
pub fn send_all(sock: &Path, msgs: &[Vec<u8>]) {
    let c = client(sock);
    for m in msgs {
        c.send(m).unwrap();
    }
}

/// Lines of every file under `dir` (recursively), keyed by path relative to `dir`.
pub fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<(String, String)>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.push((rel, String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Wait until the files under `dir` hold `n` lines in total; return them.
pub fn wait_lines(dir: &Path, n: usize) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let files = files_under(dir);
        let count: usize = files.iter().map(|(_, c)| c.lines().count()).sum();
        if count >= n || Instant::now() > deadline {
            return files;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An nginx-shaped syslog datagram (`json_access_format` of the sidecar).
pub fn nginx_line(header_host: Option<&str>, seq: u64, vhost: &str, uri: &str) -> Vec<u8> {
    let host = header_host.map(|h| format!("{h} ")).unwrap_or_default();
    format!(
        "<190>Nov 23 16:30:00 {host}nginx: {{\"time\":\"2026-11-23T16:30:00+09:00\",\"remote_addr\":\"10.0.0.1\",\
         \"x_forwarded_for\":\"\",\"vhost\":\"{vhost}\",\"method\":\"GET\",\"uri\":\"{uri}\",\"protocol\":\"HTTP/1.1\",\
         \"status\":200,\"body_bytes_sent\":612,\"referer\":\"\",\"user_agent\":\"curl/8.0\",\"request_time\":0.005,\
         \"upstream_addr\":\"\",\"upstream_status\":\"\",\"upstream_response_time\":\"\",\"request_id\":\"req-{seq}\",\"seq\":{seq}}}"
    )
    .into_bytes()
}

/// `gatelog --dry-run -c CONFIG`: the exit code and what it printed on stderr.
pub fn dry_run(config: &Path) -> (Option<i32>, String) {
    let out = Command::new(BIN).args(["--dry-run", "-c"]).arg(config).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}
