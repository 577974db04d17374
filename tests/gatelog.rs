//! Integration tests: the real binary, real sockets, real files.

mod support;

// Groups of tests owned by one area each; they share `support`.
mod faults;
mod nginx;
mod ops;
mod replay;

use support::*;

fn default_args() -> Vec<&'static str> {
    vec!["--socket", "{dir}/g.sock", "--logs", "{dir}/logs"]
}

#[test]
fn embedded_default_writes_nginx_lines_with_and_without_hostname_to_a_dated_file() {
    let mut g = Gatelog::start(&[], &default_args(), &[("TZ", "Asia/Tokyo")]);
    let sock = g.wait_for("g.sock");
    send_all(
        &sock,
        &[nginx_line(Some("ingress-7c9f"), 1, "example.com", "/a"), nginx_line(None, 2, "example.org", "/b")],
    );
    let files = wait_lines(&g.path("logs"), 2);
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    // Nov 23 16:30:00 read in Asia/Tokyo; the year is the one closest to now.
    assert_eq!(files.len(), 1, "{files:?}");
    let (name, content) = &files[0];
    assert!(name.starts_with("access-") && name.ends_with("-11-23.log"), "{name}");
    let lines: Vec<&str> = content.lines().collect();
    assert_eq!(lines.len(), 2, "{content}");
    // Parsed JSON fields first, in nginx's order, then the syslog fields.
    assert!(lines[0].starts_with(r#"{"time":"2026-11-23T16:30:00+09:00","remote_addr":"10.0.0.1","#), "{}", lines[0]);
    assert!(lines[0].contains(r#""vhost":"example.com""#), "{}", lines[0]);
    assert!(lines[0].contains(r#""status":200"#) && lines[0].contains(r#""request_time":0.005"#), "{}", lines[0]);
    assert!(lines[0].contains(r#""host":"ingress-7c9f","ident":"nginx""#), "{}", lines[0]);
    assert!(lines[1].contains(r#""vhost":"example.org""#) && lines[1].contains(r#""ident":"nginx""#), "{}", lines[1]);
    assert!(!lines[1].contains(r#""host":"#), "{}", lines[1]);
    assert!(done.log.contains("listening on unix_udp"), "{}", done.log);
    assert!(!g.path("g.sock").exists(), "socket file removed on exit");
}

#[test]
fn sigterm_drains_every_accepted_record() {
    let mut g = Gatelog::start(&[], &default_args(), &[("TZ", "UTC")]);
    let sock = g.wait_for("g.sock");
    let msgs: Vec<Vec<u8>> = (0..5000).map(|i| nginx_line(None, i, "example.com", "/x")).collect();
    send_all(&sock, &msgs);
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    let files = files_under(&g.path("logs"));
    let total: usize = files.iter().map(|(_, c)| c.lines().count()).sum();
    let dropped: u64 = done
        .log
        .lines()
        .filter(|l| l.contains("input summary"))
        .filter_map(|l| l.split("dropped_buffer_full=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    // Blocking sends: every datagram was accepted by the kernel; each one is
    // either written or counted as dropped, and with the default budget none is dropped.
    assert!(done.log.contains("input summary") && done.log.contains("received=5000"), "{}", done.log);
    assert_eq!(dropped, 0, "{}", done.log);
    assert_eq!(total, 5000, "{}", done.log);
    for i in [0, 2500, 4999] {
        assert!(files[0].1.contains(&format!("\"seq\":{i},")), "seq {i} missing");
    }
}

#[test]
fn hostile_datagrams_never_stop_the_next_good_record() {
    let mut g = Gatelog::start(&[], &default_args(), &[("TZ", "UTC")]);
    let sock = g.wait_for("g.sock");
    let mut hostile: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"garbage without a header".to_vec(),
        b"<190>".to_vec(),
        b"<99999999999999999999>Nov 23 16:30:00 h nginx: {}".to_vec(),
        b"<190>Nov 23 16:30:00 h nginx: {\"broken\": ".to_vec(),
        b"<190>Nov 23 16:30:00 h nginx: {\"nul\":\"a\\u0000b\",\"raw\":\"\xff\xfe\"}".to_vec(),
        b"<190>Nov 23 16:30:00 h nginx: \x00\x01\x02".to_vec(),
    ];
    let mut big = b"<190>Nov 23 16:30:00 h nginx: {\"big\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'x', 100_000));
    big.extend(b"\"}");
    hostile.push(big);
    hostile.push(nginx_line(None, 42, "good.example", "/after"));
    send_all(&sock, &hostile);
    let files = wait_lines(&g.path("logs"), 5);
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    let all: String = files.iter().map(|(_, c)| c.as_str()).collect();
    assert!(all.contains(r#""vhost":"good.example""#), "{all}");
    // Broken JSON keeps the syslog record unchanged.
    assert!(all.contains(r#""message":"{\"broken\": ""#), "{all}");
    // Invalid UTF-8 becomes replacement characters, NUL stays escaped; every line is JSON.
    assert!(all.contains(r#""raw":"\ufffd\ufffd""#) || all.contains("\"raw\":\"\u{fffd}\u{fffd}\""), "{all}");
    assert!(all.contains(r#""nul":"a\u0000b""#), "{all}");
    assert!(all.contains(&"x".repeat(100_000)), "100 KB datagram kept whole");
    assert!(done.log.contains("message did not parse"), "{}", done.log);
}

#[test]
fn dry_run_accepts_every_example() {
    let root = env!("CARGO_MANIFEST_DIR");
    for cfg in ["examples/default.conf", "examples/istio-sidecar/fluent-bit.conf"] {
        let out =
            std::process::Command::new(BIN).args(["--dry-run", "-c"]).arg(format!("{root}/{cfg}")).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{cfg}: {err}");
        assert!(err.contains("configuration test is successful"), "{cfg}: {err}");
    }
    let out = std::process::Command::new(BIN).arg("--dry-run").output().unwrap();
    assert!(out.status.success(), "embedded default: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn dry_run_reports_every_mistake_with_file_and_line() {
    let dir = temp_files(&[(
        "bad.conf",
        "[SERVICE]\n    Flush 1\n    Parsers_File missing-parsers.conf\n\n[INPUT]\n    Name syslog\n    Pth /tmp/x.sock\n\n[FILTER]\n    Name parsr\n    Match *\n\n[OUTPUT]\n    Name file\n    Match *\n    Format yaml\n",
    )]);
    let (code, err) = dry_run(&dir.path().join("bad.conf"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("bad.conf:3:"), "missing parsers file at line 3: {err}");
}

#[test]
fn dry_run_reports_plugin_mistakes_all_at_once() {
    let dir = temp_files(&[(
        "bad.conf",
        "[INPUT]\n    Name syslog\n    Pth /tmp/x.sock\n\n[FILTER]\n    Name parsr\n    Match *\n\n[OUTPUT]\n    Name file\n    Match *\n    Format yaml\n",
    )]);
    let (code, err) = dry_run(&dir.path().join("bad.conf"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("bad.conf:3: unknown key 'Pth'") && err.contains("did you mean 'Path'?"), "{err}");
    assert!(err.contains("bad.conf:6: unknown filter 'parsr'"), "{err}");
    assert!(err.contains("bad.conf:12:"), "bad Format at line 12: {err}");
}

const REWRITE_CONF: &str = "[SERVICE]
    Flush 0.2
[INPUT]
    Name syslog
    Path {dir}/g.sock
    Parser rfc3164
    Tag nginx
[FILTER]
    Name parser
    Match nginx
    Key_Name message
    Parser json
    Reserve_Data On
[FILTER]
    Name rewrite_tag
    Match nginx
    Rule $vhost ^(.*)$ {dir}/out/$vhost.log KEEP
[OUTPUT]
    Name file
    Match *
    Format template
    Template {vhost} {uri}
";

fn rewrite_run(keep: &str, vhosts: &[&str]) -> (Gatelog, Finished) {
    let conf = REWRITE_CONF.replace("KEEP", keep);
    let mut g = Gatelog::start(&[("rt.conf", &conf)], &["-c", "{dir}/rt.conf"], &[("TZ", "UTC")]);
    let sock = g.wait_for("g.sock");
    let msgs: Vec<Vec<u8>> = vhosts.iter().enumerate().map(|(i, v)| nginx_line(None, i as u64, v, "/u")).collect();
    send_all(&sock, &msgs);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    (g, done)
}

#[test]
fn hostile_vhosts_never_leave_the_rewrite_root() {
    let long = "a".repeat(300);
    let vhosts = ["good.example", "../../etc/evil", "/abs", "%2e%2e", &long, "nul\\u0000byte", "x/../../../y"];
    let (g, done) = rewrite_run("false", &vhosts);
    let out = files_under(&g.path("out"));
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["%2e%2e.log", "abs.log", "gatelog-refused.log", "good.example.log"], "{}", done.log);
    assert_eq!(out[0].1, "%2e%2e /u\n");
    let refused = &out[2].1;
    assert_eq!(refused.lines().count(), 4, "{refused}");
    assert!(refused.contains("../../etc/evil /u") && refused.contains("x/../../../y /u"), "{refused}");
    // Nothing was written anywhere else in the temp dir.
    let everything: Vec<String> = files_under(g.dir.path()).into_iter().map(|(n, _)| n).collect();
    assert!(
        everything.iter().all(|n| n.starts_with("out/") || n == "gatelog.stderr" || n == "rt.conf"),
        "{everything:?}"
    );
    assert!(done.log.contains("refused an output path"), "{}", done.log);
}

#[test]
fn rewrite_keep_true_also_writes_the_original_tag_file_and_warns() {
    let (g, done) = rewrite_run("true", &["a.example", "b.example"]);
    let out = files_under(&g.path("out"));
    assert_eq!(out.len(), 2, "{out:?}");
    // Fluent Bit's side file named after the original tag, in the working directory.
    let side = std::fs::read_to_string(g.path("nginx")).unwrap();
    assert_eq!(side, "a.example /u\nb.example /u\n");
    let (code, err) = dry_run(&g.path("rt.conf"));
    assert!(code == Some(0) && err.contains("every record is written twice"), "{err}");
    let _ = done;
}

#[test]
fn a_keep_copy_changed_after_re_tagging_gets_its_own_line() {
    // The output reuses the original's line for its KEEP copy while both
    // hold the same fields: a filter changing the copy must show.
    let lua = "[FILTER]
    Name lua
    Match *
    code function f(tag, ts, r) if tag == 'nginx' then return 0, ts, r end if r.vhost == 'b.example' then r.uri = '/changed' end return 1, ts, r end
    call f
[OUTPUT]";
    let conf = REWRITE_CONF.replace("KEEP", "true").replacen("[OUTPUT]", lua, 1);
    let mut g = Gatelog::start(&[("rt.conf", &conf)], &["-c", "{dir}/rt.conf"], &[("TZ", "UTC")]);
    let sock = g.wait_for("g.sock");
    let vhosts = ["a.example", "b.example", "c.example", "b.example"];
    let msgs: Vec<Vec<u8>> = vhosts.iter().enumerate().map(|(i, v)| nginx_line(None, i as u64, v, "/u")).collect();
    send_all(&sock, &msgs);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    let side = std::fs::read_to_string(g.path("nginx")).unwrap();
    assert_eq!(side, "a.example /u\nb.example /u\nc.example /u\nb.example /u\n");
    let out = files_under(&g.path("out"));
    let want = [("a.example.log", "a.example /u\n"), ("b.example.log", "b.example /changed\nb.example /changed\n")];
    assert_eq!(out[..2], want.map(|(n, c)| (n.to_string(), c.to_string())), "{}", done.log);
    assert_eq!(out[2], ("c.example.log".to_string(), "c.example /u\n".to_string()));
}

#[test]
fn rewrite_keep_false_writes_only_the_new_tag() {
    let (g, _) = rewrite_run("false", &["a.example"]);
    assert_eq!(files_under(&g.path("out")), vec![("a.example.log".to_string(), "a.example /u\n".to_string())]);
    assert!(!g.path("nginx").exists());
}

/// The production sidecar files, verbatim but for the socket and the output
/// root, moved into the test's temp dir.
fn sidecar_files() -> Vec<(&'static str, String)> {
    let fixture = |f: &str| {
        std::fs::read_to_string(format!("{}/tests/fixtures/fluent-bit-sidecar/{f}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
    };
    let conf = fixture("fluent-bit.conf")
        .replace("/tmp/sidecar-nginx/sys-log.sock", "{dir}/sys-log.sock")
        .replace("/log/output/path/", "{dir}/log/output/path/")
        .replace("HTTP_Server         On", "HTTP_Server         Off");
    vec![
        ("fluent-bit.conf", conf),
        ("parsers.conf", fixture("parsers.conf")),
        ("create-log-file-path.lua", fixture("create-log-file-path.lua")),
    ]
}

fn start_sidecar_pipeline() -> (Gatelog, std::path::PathBuf) {
    let files = sidecar_files();
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, c)| (*n, c.as_str())).collect();
    let mut g = Gatelog::start(&refs, &["-c", "{dir}/fluent-bit.conf"], &[("TZ", "Asia/Tokyo")]);
    let sock = g.wait_for("sys-log.sock");
    (g, sock)
}

fn at(header_time: &str, seq: u64) -> Vec<u8> {
    String::from_utf8(nginx_line(Some("istio-ingressgateway-7d9f-abcde"), seq, "example.com", &format!("/r{seq}")))
        .unwrap()
        .replace("Nov 23 16:30:00", header_time)
        .into_bytes()
}

#[test]
fn sidecar_pipeline_verbatim_dates_files_either_side_of_tokyo_midnight() {
    let (mut g, sock) = start_sidecar_pipeline();
    send_all(&sock, &[at("Nov 23 23:59:59", 1), at("Nov 24 00:00:01", 2), at("Nov  3 09:00:00", 3)]);
    let root = g.path("log/output/path");
    let files = wait_lines(&root, 3);
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    // The year is the one closest to now (2026 in this test's world when run in November).
    let year = files[0].0[..4].to_string();
    assert_eq!(
        names,
        vec![
            format!("{year}-1103/istio-ingressgateway-access.log"),
            format!("{year}-1123/istio-ingressgateway-access.log"),
            format!("{year}-1124/istio-ingressgateway-access.log")
        ]
    );
    // {time} is the true instant (the header read in Asia/Tokyo), not 9 hours late as in Fluent Bit.
    let line = files[1].1.trim_end();
    let fields: Vec<&str> = line.split('\t').collect();
    let epoch = chrono::NaiveDate::from_ymd_opt(year.parse().unwrap(), 11, 23)
        .unwrap()
        .and_hms_opt(14, 59, 59)
        .unwrap()
        .and_utc()
        .timestamp();
    assert_eq!(fields[0], format!("time:{epoch}.000000"));
    assert_eq!(&fields[1..4], &["method:GET", "uri:/r1", "status:200"]);
    assert_eq!(fields[4], "vhost:example.com");
    // Floats print as printf("%f"), byte-compatible with Fluent Bit.
    assert_eq!(fields[6], "request_time:0.005000");
    // KEEP true + Match *: Fluent Bit's side file named after the original tag, reproduced.
    let side = std::fs::read_to_string(g.path("kube.*")).unwrap();
    assert_eq!(side.lines().count(), 3);
}

#[test]
fn logrotate_rename_then_sighup_loses_no_line() {
    let (mut g, sock) = start_sidecar_pipeline();
    let c = client(&sock);
    let root = g.path("log/output/path");
    for i in 0..50 {
        c.send(&at("Nov 23 12:00:00", i)).unwrap();
    }
    let files = wait_lines(&root, 50);
    let (rel, _) = files[0].clone();
    let live = root.join(&rel);
    // logrotate: rename, then postrotate sends SIGHUP.
    std::fs::rename(&live, root.join(format!("{rel}.1"))).unwrap();
    for i in 50..100 {
        c.send(&at("Nov 23 12:00:00", i)).unwrap();
    }
    g.signal(libc::SIGHUP);
    for i in 100..150 {
        c.send(&at("Nov 23 12:00:00", i)).unwrap();
    }
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    let rotated = std::fs::read_to_string(root.join(format!("{rel}.1"))).unwrap();
    let current = std::fs::read_to_string(&live).unwrap();
    let mut seqs: Vec<u64> = rotated
        .lines()
        .chain(current.lines())
        .map(|l| l.split("uri:/r").nth(1).unwrap().split('\t').next().unwrap().parse().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..150).collect::<Vec<u64>>(), "every line exactly once across the two files");
    assert!(current.lines().count() >= 50, "lines after the SIGHUP are in the new file");
}

#[test]
fn buffer_full_is_checked_at_start_up() {
    let dir = temp_files(&[("b.conf", "[INPUT]\n    Name syslog\n    Path {dir}/s.sock\n    Buffer_Full sometimes\n")]);
    let (code, err) = dry_run(&dir.path().join("b.conf"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("b.conf:4: Buffer_Full must be drop or wait"), "{err}");
}

const RELOAD_CONF: &str = "[SERVICE]
    Flush 0.1
    Hot_Reload On
[INPUT]
    Name syslog
    Path {dir}/g.sock
    Tag nginx
[FILTER]
    Name parser
    Match nginx
    Key_Name message
    Parser json
[OUTPUT]
    Name file
    Match nginx
    Path {dir}/out
    File access.log
    Format template
    Template TEMPLATE
";

#[test]
fn hot_reload_swaps_filters_and_outputs_without_losing_a_record_and_refuses_a_broken_config() {
    let conf = |template: &str| RELOAD_CONF.replace("TEMPLATE", template);
    let mut g = Gatelog::start(&[("r.conf", &conf("v1 {uri}"))], &["-c", "{dir}/r.conf"], &[("TZ", "UTC")]);
    let sock = g.wait_for("g.sock");
    let c = client(&sock);
    let d = g.dir.path().display().to_string();
    let send = |range: std::ops::Range<u64>| {
        for i in range {
            c.send(&nginx_line(None, i, "example.com", &format!("/{i}"))).unwrap();
        }
    };
    send(0..100);
    wait_lines(&g.path("out"), 100);
    std::fs::write(g.path("r.conf"), conf("v2 {uri}").replace("{dir}", &d)).unwrap();
    g.signal(libc::SIGHUP);
    std::thread::sleep(std::time::Duration::from_millis(300));
    send(100..200);
    wait_lines(&g.path("out"), 200);
    // A broken config is refused; the running one goes on.
    std::fs::write(g.path("r.conf"), conf("v3 {uri}").replace("Name file", "Name fiel").replace("{dir}", &d)).unwrap();
    g.signal(libc::SIGHUP);
    std::thread::sleep(std::time::Duration::from_millis(300));
    send(200..300);
    let files = wait_lines(&g.path("out"), 300);
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    let lines: Vec<&str> = files[0].1.lines().collect();
    assert_eq!(lines.len(), 300, "{}", done.log);
    for (i, l) in lines.iter().enumerate() {
        let version = if i < 100 { "v1" } else { "v2" };
        assert_eq!(*l, format!("{version} /{i}"));
    }
    assert!(done.log.contains("configuration reloaded"), "{}", done.log);
    assert!(
        done.log.contains("new configuration refused") && done.log.contains("unknown output plugin 'fiel'"),
        "{}",
        done.log
    );
}

#[test]
fn every_file_format_through_the_binary() {
    let conf = "[SERVICE]\n    Flush 0.1\n[INPUT]\n    Name syslog\n    Path {dir}/g.sock\n    Tag app\n[FILTER]\n    Name parser\n    Match app\n    Key_Name message\n    Parser json\n"
        .to_string()
        + &[("out_file", ""), ("plain", ""), ("csv", ""), ("ltsv", ""), ("template", "    Template {time} {s} {i} {f} {b} {missing}\n")]
            .iter()
            .map(|(f, extra)| format!("[OUTPUT]\n    Name file\n    Match app\n    Path {{dir}}/out\n    File {f}.log\n    Format {f}\n{extra}"))
            .collect::<String>();
    let mut g = Gatelog::start(&[("f.conf", &conf)], &["-c", "{dir}/f.conf"], &[("TZ", "UTC")]);
    let sock = g.wait_for("g.sock");
    send_all(
        &sock,
        &[b"<13>Nov 23 16:30:00 host app: {\"s\":\"a\\\"b\",\"i\":-7,\"f\":0.5,\"b\":true,\"n\":null}".to_vec()],
    );
    let files = wait_lines(&g.path("out"), 5);
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    let year: i32 = chrono::Datelike::year(&chrono::Utc::now());
    let mut secs =
        chrono::NaiveDate::from_ymd_opt(year, 11, 23).unwrap().and_hms_opt(16, 30, 0).unwrap().and_utc().timestamp();
    // The year closest to now: this test may run in January.
    let now = chrono::Utc::now().timestamp();
    if secs - now > 183 * 86400 {
        secs = chrono::NaiveDate::from_ymd_opt(year - 1, 11, 23)
            .unwrap()
            .and_hms_opt(16, 30, 0)
            .unwrap()
            .and_utc()
            .timestamp();
    }
    let get = |name: &str| files.iter().find(|(n, _)| n == name).map(|(_, c)| c.clone()).unwrap();
    assert_eq!(
        get("out_file.log"),
        format!("app: [{secs}.000000000, {{\"s\":\"a\\\"b\",\"i\":-7,\"f\":0.5,\"b\":true,\"n\":null}}]\n")
    );
    assert_eq!(get("plain.log"), "{\"s\":\"a\\\"b\",\"i\":-7,\"f\":0.5,\"b\":true,\"n\":null}\n");
    assert_eq!(get("csv.log"), format!("{secs}.000000000,\"a\"b\",-7,0.500000,true,nil\n"));
    assert_eq!(
        get("ltsv.log"),
        format!("\"time\":{secs}.000000\t\"s\":\"a\"b\"\t\"i\":-7\t\"f\":0.500000\t\"b\":true\t\"n\":nil\n")
    );
    assert_eq!(get("template.log"), format!("{secs}.000000 a\"b -7 0.500000 true {{missing}}\n"));
}

#[test]
fn stream_modes_frame_newlines_and_octet_counting() {
    use std::io::Write;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n[INPUT]\n    Name syslog\n    Mode tcp\n    Listen 127.0.0.1\n    Port {port}\n    Tag t\n    Parser raw\n    Source_Address_Key peer\n[INPUT]\n    Name syslog\n    Mode unix_tcp\n    Path {{dir}}/s.sock\n    Tag u\n    Parser raw\n[OUTPUT]\n    Name file\n    Match *\n    Path {{dir}}/out\n    Format template\n    Template {{message}}|{{peer}}\n"
    );
    let mut g = Gatelog::start(&[("s.conf", &conf)], &["-c", "{dir}/s.conf"], &[]);
    let sock = g.wait_for("s.sock");
    let mut tcp = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    tcp.write_all(b"<13>one\r\n<13>tw").unwrap();
    tcp.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    tcp.write_all(b"o\n15 <13>three\nfour\n").unwrap();
    drop(tcp);
    let mut unix = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    unix.write_all(b"<13>five\n").unwrap();
    drop(unix);
    let files = wait_lines(&g.path("out"), 4);
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    let t = &files.iter().find(|(n, _)| n == "t").unwrap().1;
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 4, "{t}");
    assert!(lines[0].starts_with("<13>one|127.0.0.1:") && lines[1].starts_with("<13>two|127.0.0.1:"), "{t}");
    assert!(lines[2].starts_with("<13>three") && lines[3].starts_with("four|"), "{t}");
    assert_eq!(files.iter().find(|(n, _)| n == "u").unwrap().1, "<13>five|{peer}\n");
}

const LUA_SCRIPT: &str = r#"
function route(tag, ts, record)
  local u = record["uri"]
  if u == "/drop" then return -1, ts, record end
  if u == "/keep" then record["ignored"] = "x"; return 0, ts, record end
  if u == "/replace" then record["added"] = 1.0; return 1, 1700000000.5, record end
  if u == "/record-only" then record["n"] = 2.5; return 2, 0, record end
  if u == "/split" then return 1, ts, {{uri = "/split-a"}, {uri = "/split-b"}} end
  if u == "/error" then error("boom on " .. u) end
  if u == "/spin" then while true do end end
  return 0, ts, record
end
"#;

#[test]
fn lua_return_codes_split_errors_and_runaway_scripts_through_the_binary() {
    let conf = "[SERVICE]\n    Flush 0.1\n[INPUT]\n    Name syslog\n    Path {dir}/g.sock\n    Tag app\n[FILTER]\n    Name parser\n    Match app\n    Key_Name message\n    Parser json\n[FILTER]\n    Name lua\n    Match app\n    script route.lua\n    call route\n    instruction_limit 100000\n[OUTPUT]\n    Name file\n    Match app\n    Path {dir}/out\n    File lua.log\n    Format template\n    Template {time} {uri} {ignored} {added} {n}\n";
    let mut g =
        Gatelog::start(&[("l.conf", conf), ("route.lua", LUA_SCRIPT)], &["-c", "{dir}/l.conf"], &[("TZ", "UTC")]);
    let sock = g.wait_for("g.sock");
    let uris = ["/drop", "/keep", "/replace", "/record-only", "/split", "/error", "/spin", "/after"];
    let msgs: Vec<Vec<u8>> =
        uris.iter().map(|u| format!("<13>Nov 23 16:30:00 h app: {{\"uri\":\"{u}\"}}").into_bytes()).collect();
    send_all(&sock, &msgs);
    let files = wait_lines(&g.path("out"), 8);
    let done = g.stop();
    assert!(done.status.success(), "{}", done.log);
    let lines: Vec<String> = files[0].1.lines().map(|l| l.split_once(' ').unwrap().1.to_owned()).collect();
    assert_eq!(
        lines,
        vec![
            "/keep {ignored} {added} {n}", // 0: the original record, unchanged
            "/replace {ignored} 1 {n}",    // 1: 1.0 comes back as the integer 1, as in Fluent Bit
            "/record-only {ignored} {added} 2.500000",
            "/split-a {ignored} {added} {n}", // split: one record per element
            "/split-b {ignored} {added} {n}",
            "/error {ignored} {added} {n}", // protected mode: passes unchanged
            "/spin {ignored} {added} {n}",  // instruction limit: passes unchanged
            "/after {ignored} {added} {n}", // and the VM keeps working
        ],
        "{}",
        done.log
    );
    let time_of =
        |uri: &str| files[0].1.lines().find(|l| l.contains(uri)).unwrap().split(' ').next().unwrap().to_owned();
    assert_eq!(time_of("/replace"), "1700000000.500000", "code 1 replaces the time");
    assert_ne!(time_of("/record-only"), "0.000000", "code 2 keeps the time");
    assert!(done.log.contains("boom on /error") && done.log.contains("route.lua:9"), "{}", done.log);
    assert!(done.log.contains("drop_records=1") && done.log.contains("errors=2"), "{}", done.log);
}

#[test]
fn dry_run_names_the_file_and_line_of_a_broken_lua_script() {
    let conf = "[INPUT]\n    Name syslog\n    Path {dir}/g.sock\n[FILTER]\n    Name lua\n    Match *\n    script broken.lua\n    call f\n[OUTPUT]\n    Name null\n    Match *\n";
    let dir = temp_files(&[("b.conf", conf), ("broken.lua", "function f(tag, ts, r)\n  return 1, ts, r\nedn\n")]);
    let (code, err) = dry_run(&dir.path().join("b.conf"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("b.conf:7") && err.contains("broken.lua:"), "{err}");
}
