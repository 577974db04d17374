//! A real nginx for the end-to-end tests: configured like the ConfigMap's
//! (the `log_format` is read from istio/config/nginx.conf), run in the
//! foreground as the current user under a temp prefix, listening on free
//! loopback ports and logging over syslog to gatelog's socket. Stopped
//! gracefully (SIGQUIT) so every request is logged before it exits.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The nginx binary on PATH (or in the usual sbin), if any.
pub fn nginx_binary() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nginx")).collect::<Vec<_>>())
        .unwrap_or_default();
    from_path.into_iter().chain([PathBuf::from("/usr/sbin/nginx")]).find(|p| p.is_file())
}

/// `Some(nginx)`, or `None` after saying why the test is skipped. In CI
/// (`CI` set) a missing nginx is a failure: .ci/run installs it.
pub fn nginx_or_skip(test: &str) -> Option<PathBuf> {
    match nginx_binary() {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => panic!("{test}: nginx is not installed (.ci/run installs it)"),
        None => {
            eprintln!("{test}: skipped, no nginx binary (apt-get install nginx-light)");
            None
        }
    }
}

/// The `log_format json_access_format …;` statement of the ConfigMap's nginx.conf.
pub fn configmap_log_format() -> String {
    let conf = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/istio/config/nginx.conf")).unwrap();
    let start = conf.find("log_format json_access_format").expect("log_format in istio/config/nginx.conf");
    let end = start + conf[start..].find("';").expect("log_format ends with ';") + 2;
    conf[start..end].to_string()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One `server` block: a loopback port whose requests are logged over syslog.
pub struct Listener {
    pub port: u16,
    /// Extra syslog parameters after `server=…` (e.g. `,nohostname`).
    pub syslog_params: &'static str,
}

pub struct Nginx {
    child: Option<Child>,
    pub prefix: PathBuf,
}

impl Nginx {
    /// Start nginx under `prefix` (created) with `workers` workers, logging
    /// to `syslog:server=<target>` (`unix:/path` or `127.0.0.1:port`). Each
    /// request is also logged to `<prefix>/truth.log` (the same format, to a
    /// file) when `truth` is set.
    pub fn start(bin: &Path, prefix: &Path, target: &str, listeners: &[Listener], workers: u32, truth: bool) -> Nginx {
        std::fs::create_dir_all(prefix).unwrap();
        let p = prefix.display();
        // As root the master would hand the workers to `nobody`, who may not
        // enter the 0700 temp dir nor send to the 0644 socket: keep root, as
        // the pod's nginx does (`user root;` in the ConfigMap).
        // SAFETY: geteuid has no preconditions.
        let user = if unsafe { libc::geteuid() } == 0 { "user root;" } else { "" };
        let truth_log = if truth { format!("access_log {p}/truth.log json_access_format;") } else { String::new() };
        let servers: String = listeners
            .iter()
            .map(|l| {
                format!(
                    "    server {{\n        listen 127.0.0.1:{port};\n        \
                     access_log syslog:server={target}{params} json_access_format;\n        {truth_log}\n        \
                     location / {{ return 200 \"ok\\n\"; }}\n    }}\n",
                    port = l.port,
                    params = l.syslog_params,
                )
            })
            .collect();
        let conf = format!(
            "{user}\nworker_processes {workers};\npid {p}/nginx.pid;\nerror_log {p}/error.log info;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n    large_client_header_buffers 4 16k;\n    client_body_temp_path {p}/client_body;\n    \
             proxy_temp_path {p}/proxy;\n    {format}\n{servers}}}\n",
            format = configmap_log_format(),
        );
        std::fs::write(prefix.join("nginx.conf"), conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(prefix)
            .arg("-e")
            .arg(prefix.join("error.log"))
            .arg("-c")
            .arg(prefix.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            // nginx keeps TZ (and drops the rest of its environment): the
            // syslog header and $time_iso8601 are in Tokyo time.
            .env("TZ", "Asia/Tokyo")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(prefix.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let mut nginx = Nginx { child: Some(child), prefix: prefix.to_path_buf() };
        for l in listeners {
            nginx.wait_listening(l.port);
        }
        nginx
    }

    fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("nginx exited ({st}):\n{}", self.error_log());
            }
            assert!(Instant::now() < deadline, "nginx never listened on {port}:\n{}", self.error_log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn error_log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.prefix.join(f)).unwrap_or_default();
        read("error.log") + &read("stderr.log")
    }

    /// SIGQUIT (graceful: in-flight requests finish and are logged) and wait.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("nginx did not stop on SIGQUIT:\n{}", self.error_log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGQUIT reaches the workers through the master; SIGKILL would
            // orphan them.
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGQUIT) };
            let _ = c.wait();
        }
    }
}

/// Send one raw HTTP/1.1 request (`Connection: close`) and return the status.
pub fn request(port: u16, raw: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let mut resp = Vec::new();
    // nginx closes after the response; a reset after a 400 ends it too.
    let _ = s.read_to_end(&mut resp);
    let head = String::from_utf8_lossy(&resp[..resp.len().min(64)]).into_owned();
    head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status line in {head:?}"))
}
