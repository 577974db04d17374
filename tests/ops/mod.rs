//! Operations: the HTTP endpoints of the real binary, scraped while traffic
//! flows; the counters must account for every datagram; the Prometheus text
//! must parse with a real exposition parser; probes must answer the way
//! Kubernetes expects while gatelog starts and while it drains.

use crate::support::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A port nobody listens on (bound and released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

/// One `GET` over a fresh connection; `None` while nothing listens.
fn get(port: u16, path: &str) -> Option<Answer> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut raw = String::new();
    c.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let content_type = head.lines().find_map(|l| l.strip_prefix("content-type: ")).unwrap_or("").to_owned();
    Some(Answer { status, content_type, body: body.to_owned() })
}

/// Poll `path` until the server answers (it is bound before the inputs).
fn first_answer(g: &mut Gatelog, port: u16, path: &str) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(a) = get(port, path) {
            return a;
        }
        if let Some(st) = g.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("gatelog exited ({st}):\n{}", g.log_text());
        }
        assert!(Instant::now() < deadline, "HTTP server never answered:\n{}", g.log_text());
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn scrape(port: u16) -> String {
    let a = get(port, "/api/v1/metrics/prometheus").expect("metrics endpoint answers");
    assert_eq!(a.status, 200);
    assert_eq!(a.content_type, "text/plain; version=0.0.4");
    a.body
}

/// The value of the sample whose name and labels are exactly `series`.
fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// The sum of every sample of family `name` (any labels).
fn sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// Feed `text` to the Python prometheus-client exposition parser. Skips
/// (returns false) only outside CI when the module is missing.
fn python_parses(text: &str) -> bool {
    let probe = std::process::Command::new("python3").args(["-c", "import prometheus_client"]).output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        if std::env::var_os("CI").is_none() {
            eprintln!(
                "SKIPPED the Prometheus parser check: python3 has no prometheus_client (pip install prometheus-client)"
            );
            return false;
        }
        panic!("CI must have python3 with prometheus_client (.ci/run installs it)");
    }
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\n\
             fams = list(p(sys.stdin.read()))\nprint(len(fams), sum(len(f.samples) for f in fams))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "parser refused the exposition: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    let counts = String::from_utf8_lossy(&out.stdout);
    let samples = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count();
    let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(counts.trim(), format!("{families} {samples}"), "every family and sample was read");
    true
}

const CONF: &str = "[SERVICE]
    Flush        0.2
    Grace        @GRACE@
    HTTP_Server  On
    HTTP_Listen  127.0.0.1
    HTTP_Port    @PORT@
    Health_Check On
    HC_Errors_Count 0
    HC_Period    60

[INPUT]
    Name         syslog
    Mode         unix_udp
    Path         {dir}/g.sock
    Parser       rfc3164
    Tag          nginx

[FILTER]
    Name         parser
    Match        nginx
    Key_Name     message
    Parser       json
    Reserve_Data On

[OUTPUT]
    Name         file
    Match        nginx
    Path         @OUT@
    File         access.log
    Format       plain
";

/// Start gatelog with [`CONF`] writing under `out` (relative to the temp dir).
fn start(out: &str, grace: u32, extra: &[(&str, &str)]) -> (Gatelog, u16) {
    let port = free_port();
    let conf = CONF
        .replace("@PORT@", &port.to_string())
        .replace("@GRACE@", &grace.to_string())
        .replace("@OUT@", &format!("{{dir}}/{out}"));
    let mut files = vec![("ops.conf", conf.as_str())];
    files.extend_from_slice(extra);
    let g = Gatelog::start(&files, &["-c", "{dir}/ops.conf"], &[("TZ", "UTC")]);
    (g, port)
}

fn hostile() -> Vec<Vec<u8>> {
    vec![
        b"".to_vec(),
        b"".to_vec(),
        b"garbage without a header".to_vec(),
        b"\x00\x01\x02".to_vec(),
        b"<190>Nov 23 16:30:00 h nginx: {\"broken\": ".to_vec(),
        b"<190>Nov 23 16:30:00 h nginx: {\"raw\":\"\xff\xfe\"}".to_vec(),
    ]
}

#[test]
fn counters_add_up_after_normal_and_hostile_traffic_and_the_text_parses() {
    let (mut g, port) = start("logs", 5, &[]);
    // Readiness answers before the socket even exists.
    assert_eq!(first_answer(&mut g, port, "/api/v1/metrics/prometheus").status, 200);
    let sock = g.wait_for("g.sock");
    const GOOD: u64 = 3000;
    let sender = {
        let sock = sock.clone();
        std::thread::spawn(move || {
            let msgs: Vec<Vec<u8>> = (0..GOOD).map(|i| nginx_line(None, i, "example.com", "/x")).collect();
            for chunk in msgs.chunks(100) {
                send_all(&sock, chunk);
            }
        })
    };
    // Scrape while the traffic flows: every answer is 200, parses, and the
    // received counter never goes backwards.
    let mut last = 0;
    let mut parsed = false;
    for _ in 0..5 {
        let text = scrape(port);
        parsed |= python_parses(&text);
        let received = value(&text, "gatelog_input_received_total{name=\"syslog.0\"}");
        assert!(received >= last, "{received} < {last}");
        last = received;
    }
    sender.join().unwrap();
    let bad = hostile();
    send_all(&sock, &bad);
    let sent = GOOD + bad.len() as u64;

    // Wait until everything sent was received and accounted for, and every
    // record reached the file (counters are live: messages in the hand-off
    // are received but not yet records or drops).
    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = scrape(port);
        let received = value(&text, "gatelog_input_received_total{name=\"syslog.0\"}");
        let records = value(&text, "fluentbit_input_records_total{name=\"syslog.0\"}");
        let dropped = sum(&text, "gatelog_input_dropped_records_total");
        let written = value(&text, "fluentbit_output_proc_records_total{name=\"file.0\"}");
        let settled = received == sent && records + dropped == received && written == records;
        if settled || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let received = value(&text, "gatelog_input_received_total{name=\"syslog.0\"}");
    let records = value(&text, "fluentbit_input_records_total{name=\"syslog.0\"}");
    let dropped = sum(&text, "gatelog_input_dropped_records_total");
    assert_eq!(received, sent, "{text}");
    assert_eq!(received, records + dropped, "received = records + dropped by reason:\n{text}");
    assert_eq!(value(&text, "gatelog_input_dropped_records_total{name=\"syslog.0\",reason=\"empty\"}"), 2);
    assert_eq!(value(&text, "gatelog_input_dropped_records_total{name=\"syslog.0\",reason=\"parse_failure\"}"), 2);
    assert_eq!(value(&text, "gatelog_input_dropped_records_total{name=\"syslog.0\",reason=\"buffer_full\"}"), 0);
    assert_eq!(records, GOOD + 2, "broken JSON keeps its syslog record");
    // Written equals what is in the files, and nothing was lost after the input.
    let written = value(&text, "fluentbit_output_proc_records_total{name=\"file.0\"}");
    let lines: usize = files_under(&g.path("logs")).iter().map(|(_, c)| c.lines().count()).sum();
    assert_eq!(written, lines as u64);
    assert_eq!(written, records);
    assert_eq!(value(&text, "fluentbit_output_dropped_records_total{name=\"file.0\"}"), 0);
    assert_eq!(value(&text, "gatelog_unrouted_records_total"), 0);
    assert_eq!(value(&text, "gatelog_output_open_files{name=\"file.0\"}"), 1);
    assert_eq!(value(&text, "gatelog_phase"), 1);
    assert_eq!(value(&text, "gatelog_buffer_limit_bytes"), 4_000_000);
    let bytes = value(&text, "fluentbit_input_bytes_total{name=\"syslog.0\"}");
    let file_bytes: usize = files_under(&g.path("logs")).iter().map(|(_, c)| c.len()).sum();
    assert_eq!(value(&text, "fluentbit_output_proc_bytes_total{name=\"file.0\"}"), file_bytes as u64);
    assert!(bytes > GOOD * 300, "{bytes}");
    // The JSON view agrees with the Prometheus one.
    let json = get(port, "/api/v1/metrics").unwrap();
    assert_eq!(json.content_type, "application/json");
    assert!(
        json.body.starts_with(&format!("{{\"input\":{{\"syslog.0\":{{\"records\":{records},\"bytes\":{bytes}}}}},")),
        "{}",
        json.body
    );
    assert!(json.body.contains(&format!("\"output\":{{\"file.0\":{{\"proc_records\":{written},")), "{}", json.body);
    parsed |= python_parses(&text);
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    if !parsed {
        eprintln!("(Prometheus text not checked with the Python parser)");
    }
}

#[test]
fn endpoints_answer_in_fluent_bits_formats_and_404_elsewhere() {
    let (mut g, port) = start("logs", 5, &[]);
    let root = first_answer(&mut g, port, "/");
    assert_eq!((root.status, root.content_type.as_str()), (200, "application/json"));
    assert!(
        root.body.starts_with(r#"{"fluent-bit":{"version":"1.8.13","edition":"Community","flags":["#),
        "{}",
        root.body
    );
    assert!(root.body.ends_with(&format!(r#"]}},"gatelog":{{"version":"{}"}}}}"#, env!("CARGO_PKG_VERSION"))));
    let up = get(port, "/api/v1/uptime").unwrap();
    assert_eq!((up.status, up.content_type.as_str()), (200, "application/json"));
    // Seconds since start: a fresh process has been up for under a minute.
    let secs: u64 = up.body.strip_prefix(r#"{"uptime_sec":"#).unwrap().split(',').next().unwrap().parse().unwrap();
    let plural = if secs > 1 { "s" } else { "" };
    assert_eq!(
        up.body,
        format!(
            r#"{{"uptime_sec":{secs},"uptime_hr":"Fluent Bit has been running:  0 day, 0 hour, 0 minute and {secs} second{plural}"}}"#
        )
    );
    for path in ["/api/v1/nope", "/metrics", "/api/v1/metrics/prometheus/x", "/api/v2/metrics"] {
        assert_eq!(get(port, path).unwrap().status, 404, "{path}");
    }
    let health = get(port, "/api/v1/health").unwrap();
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
}

#[test]
fn health_turns_500_after_output_errors() {
    // The output's Path is a regular file: every open fails.
    let (mut g, port) = start("not-a-dir", 5, &[("not-a-dir", "x")]);
    let first = first_answer(&mut g, port, "/api/v1/health");
    assert_eq!((first.status, first.body.as_str()), (200, "ok\n"));
    let sock = g.wait_for("g.sock");
    send_all(&sock, &[nginx_line(None, 1, "example.com", "/a")]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let failed = loop {
        let a = get(port, "/api/v1/health").unwrap();
        if a.status != 200 || Instant::now() > deadline {
            break a;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!((failed.status, failed.body.as_str()), (500, "error\n"));
    let text = scrape(port);
    assert!(value(&text, "fluentbit_output_errors_total{name=\"file.0\"}") >= 1, "{text}");
    assert_eq!(value(&text, "fluentbit_output_dropped_records_total{name=\"file.0\"}"), 1);
    assert_eq!(value(&text, "fluentbit_output_proc_records_total{name=\"file.0\"}"), 0);
    g.stop();
}

#[test]
fn probes_answer_while_starting_and_while_draining() {
    // The output file is a FIFO nobody reads yet: opening it blocks the
    // pipeline, so shutdown stays in its draining phase until we read.
    let (mut g, port) = start("logs", 60, &[]);
    std::fs::create_dir_all(g.path("logs")).unwrap();
    let fifo = g.path("logs/access.log");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: plain mkfifo(3) on a path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);

    // Polled right after spawn: the first answer of either probe is 200.
    let ready = first_answer(&mut g, port, "/api/v1/metrics/prometheus");
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert!(value(&ready.body, "gatelog_phase") <= 1);
    assert_eq!(get(port, "/").unwrap().status, 200);

    let sock = g.wait_for("g.sock");
    send_all(&sock, &[nginx_line(None, 7, "example.com", "/drain")]);
    g.signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    // The receiver takes the queued datagram in its final drain, which may
    // come just after the phase turns to draining.
    let received = "gatelog_input_received_total{name=\"syslog.0\"}";
    let draining = loop {
        let text = scrape(port);
        if (value(&text, "gatelog_phase") == 2 && value(&text, received) == 1) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(value(&draining, "gatelog_phase"), 2, "{draining}");
    // Liveness and readiness still answer, and the counters still count.
    assert_eq!(get(port, "/").unwrap().status, 200);
    assert_eq!(value(&draining, received), 1);
    assert_eq!(value(&draining, "fluentbit_output_proc_records_total{name=\"file.0\"}"), 0);

    // Reading the FIFO unblocks the pipeline; the record comes out and the
    // process exits cleanly, closing the server last.
    let mut line = String::new();
    std::fs::File::open(&fifo).unwrap().read_to_string(&mut line).unwrap();
    assert!(line.contains("\"uri\":\"/drain\""), "{line}");
    let done = g.wait();
    assert!(done.status.success(), "{}", done.log);
    assert!(get(port, "/").is_none(), "server stopped with the process");
}
