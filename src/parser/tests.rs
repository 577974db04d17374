//! Cross-format tests: sections built by hand (the classic reader is tested
//! on its own), the stock Fluent Bit parsers users keep in their parsers
//! files, and the sidecar's nginx syslog lines through both the native
//! rfc3164 decoder and the stock `syslog-rfc3164-local` regex.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::config::{Location, Property, Section};

/// A minimal classic-format reader for fixtures: `[NAME]` headers and
/// `Key value` lines; `#` comments and blank lines skipped.
fn sections(text: &str, file: &str) -> Vec<Section> {
    let file = Arc::new(PathBuf::from(file));
    let mut out: Vec<Section> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let loc = Location { file: file.clone(), line: n as u32 + 1 };
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            out.push(Section { name: name.to_ascii_uppercase(), loc, props: Vec::new() });
            continue;
        }
        let (k, v) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        out.last_mut().unwrap().props.push(Property { key: k.into(), value: v.trim().into(), loc });
    }
    out
}

fn section(props: &[(&str, &str)]) -> Section {
    let text: String = std::iter::once("[PARSER]".to_owned())
        .chain(props.iter().map(|(k, v)| format!("    {k} {v}")))
        .collect::<Vec<_>>()
        .join("\n");
    sections(&text, "test.conf").remove(0)
}

fn fixture(name: &str) -> ParserRegistry {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parsers").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut reg = ParserRegistry::new();
    let errors = reg.load_sections(&sections(&text, name));
    assert!(errors.is_empty(), "{errors:?}");
    reg
}

fn ctx(now: i64, zone: &str) -> ParseContext {
    ParseContext { now: Timestamp::new(now, 0), zone: Zone::parse(zone).unwrap() }
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

fn pairs(p: &Parsed) -> Vec<(&str, &Value)> {
    p.fields.iter().collect()
}

const JSON_BODY: &str = r#"{"time":"2024-11-03T16:30:00+09:00","vhost":"example.com","status":"200"}"#;

#[test]
fn nginx_lines_through_native_rfc3164() {
    let native = Parser::rfc3164("syslog");
    // Read 5 s after the event, in Asia/Tokyo (nginx's zone).
    let c = ctx(1730619005, "Asia/Tokyo");
    let line = format!("<190>Nov  3 16:30:00 web-1 nginx: {JSON_BODY}");
    let p = native.parse(line.as_bytes(), &c).unwrap();
    assert_eq!(
        pairs(&p),
        vec![
            ("pri", &s("190")),
            ("time", &s("Nov  3 16:30:00")),
            ("host", &s("web-1")),
            ("ident", &s("nginx")),
            ("message", &s(JSON_BODY)),
        ]
    );
    assert_eq!(p.time, Some(Timestamp::new(1730619000, 0)));

    let line = format!("<190>Nov  3 16:30:00 nginx: {JSON_BODY}");
    let p = native.parse(line.as_bytes(), &c).unwrap();
    assert_eq!(
        pairs(&p),
        vec![("pri", &s("190")), ("time", &s("Nov  3 16:30:00")), ("ident", &s("nginx")), ("message", &s(JSON_BODY)),]
    );
    assert_eq!(p.time, Some(Timestamp::new(1730619000, 0)));
    assert_eq!(native.parse(b"not syslog", &c).unwrap_err().reason(), "no_match");
}

#[test]
fn nginx_lines_through_stock_rfc3164_local_regex() {
    let reg = fixture("sidecar-parsers.conf");
    assert_eq!(reg.names(), vec!["nginx_access_log", "syslog-rfc3164-local", "json"]);
    let p = reg.get("syslog-rfc3164-local").unwrap();
    let c = ctx(1730619005, "Asia/Tokyo");

    // With hostname: the stock regex takes the host as `ident` (§3.2).
    let line = format!("<190>Nov  3 16:30:00 web-1 nginx: {JSON_BODY}");
    let r = p.parse(line.as_bytes(), &c).unwrap();
    assert_eq!(
        pairs(&r),
        vec![("pri", &s("190")), ("time", &s("Nov  3 16:30:00")), ("ident", &s("web-1")), ("message", &s(JSON_BODY)),]
    );
    // Read in TZ (gatelog), not as UTC (Fluent Bit).
    assert_eq!(r.time, Some(Timestamp::new(1730619000, 0)));

    let line = format!("<190>Nov  3 16:30:00 nginx: {JSON_BODY}");
    let r = p.parse(line.as_bytes(), &c).unwrap();
    assert_eq!(
        pairs(&r),
        vec![("pri", &s("190")), ("time", &s("Nov  3 16:30:00")), ("ident", &s("nginx")), ("message", &s(JSON_BODY)),]
    );

    // The JSON parser then reads the message; duplicates and order kept.
    let j = reg.get("json").unwrap().parse(JSON_BODY.as_bytes(), &c).unwrap();
    assert_eq!(
        pairs(&j),
        vec![("time", &s("2024-11-03T16:30:00+09:00")), ("vhost", &s("example.com")), ("status", &s("200")),]
    );
    assert_eq!(j.time, None);

    // The sidecar's CRI-style parser compiles and matches its shape.
    let n = reg.get("nginx_access_log").unwrap();
    let r = n.parse(b"2024-11-03T16:30:00+09:00 stdout F hello", &c).unwrap();
    assert_eq!(r.fields.get_first("message"), Some(&s("hello")));
}

#[test]
fn year_inference_across_new_year() {
    let native = Parser::rfc3164("syslog");
    // Tokyo: read at 2025-01-01T00:00:30+09:00; the line is from the old year.
    let c = ctx(1735657230, "Asia/Tokyo");
    let p = native.parse(b"<190>Dec 31 23:59:59 nginx: x", &c).unwrap();
    assert_eq!(p.time, Some(Timestamp::new(1735657199, 0)));
    let p = native.parse(b"<190>Jan  1 00:00:10 nginx: x", &c).unwrap();
    assert_eq!(p.time, Some(Timestamp::new(1735657210, 0)));
    // UTC: read at 2024-12-31T23:59:59Z, a sender slightly ahead is in 2025.
    let c = ctx(1735689599, "UTC");
    let p = native.parse(b"<190>Jan  1 00:00:01 nginx: x", &c).unwrap();
    assert_eq!(p.time, Some(Timestamp::new(1735689601, 0)));
    // Per-parser Time_Zone overrides the process zone.
    let tokyo =
        Parser::from_section(&section(&[("Name", "s"), ("Format", "rfc3164"), ("Time_Zone", "Asia/Tokyo")])).unwrap();
    let p = tokyo.parse(b"<190>Jan  1 08:59:59 nginx: x", &c).unwrap();
    assert_eq!(p.time, Some(Timestamp::new(1735689599, 0)));
    // RFC 3339 header with offset: exact, whatever the zone.
    let p = native.parse(b"<13>2024-11-23T16:30:00.123+09:00 host tag: msg", &c).unwrap();
    assert_eq!(p.time, Some(Timestamp::new(1732347000, 123_000_000)));
    assert_eq!(p.fields.get_first("time"), Some(&s("2024-11-23T16:30:00.123+09:00")));
}

#[test]
fn rfc3164_options() {
    let p = Parser::from_section(&section(&[
        ("Name", "s"),
        ("Format", "rfc3164"),
        ("Time_Keep", "off"),
        ("Types", "pri:integer pid:integer"),
    ]))
    .unwrap();
    let r = p.parse(b"<13>Nov 23 16:30:00 host sshd[42]: hi\n", &ctx(1732379400, "UTC")).unwrap();
    assert_eq!(
        pairs(&r),
        vec![
            ("pri", &Value::Int(13)),
            ("host", &s("host")),
            ("ident", &s("sshd")),
            ("pid", &Value::Int(42)),
            ("message", &s("hi")),
        ]
    );
    let e = Parser::from_section(&section(&[("Name", "s"), ("Format", "rfc3164"), ("Time_Format", "%b")])).unwrap_err();
    assert_eq!(e[0].to_string(), "test.conf:4: Time_Format does not apply to Format rfc3164 (fix: remove it: rfc3164 reads the BSD or RFC 3339 header time itself)");
}

#[test]
fn time_offset_types_and_keep() {
    let p = Parser::from_section(&section(&[
        ("Name", "app"),
        ("Format", "regex"),
        ("Regex", r"^(?<time>\S+ \S+) (?<code>\d+) (?<rt>\S+) (?<ok>\w+) (?<n>\S+)$"),
        ("Time_Format", "%Y-%m-%d %H:%M:%S"),
        ("Time_Offset", "+0900"),
        ("Types", "code:integer rt:float ok:bool n:integer"),
    ]))
    .unwrap();
    // The offset replaces the process zone (UTC here).
    let r = p.parse(b"2024-11-23 16:30:00 200 0.25 true abc", &ctx(0, "UTC")).unwrap();
    assert_eq!(r.time, Some(Timestamp::new(1732347000, 0)));
    assert_eq!(
        pairs(&r),
        vec![("code", &Value::Int(200)), ("rt", &Value::Float(0.25)), ("ok", &Value::Bool(true)), ("n", &s("abc"))]
    );
    // A time that does not match: record kept, time field kept, no event time.
    let r = p.parse(b"yesterday noon 200 0.25 true 1", &ctx(0, "UTC")).unwrap();
    assert_eq!(r.time, None);
    assert_eq!(r.fields.get_first("time"), Some(&s("yesterday noon")));
    assert_eq!(r.fields.get_first("n"), Some(&Value::Int(1)));
}

#[test]
fn json_parser_with_time() {
    let p = Parser::from_section(&section(&[
        ("Name", "j"),
        ("Format", "json"),
        ("Time_Key", "ts"),
        ("Time_Format", "%s.%L"),
    ]))
    .unwrap();
    let r = p.parse(br#"{"ts":1,"ts":"1732347000.5","a":"\u00e9"}"#, &ctx(0, "UTC")).unwrap();
    // The first `ts` holding a string is the time; it is removed (Time_Keep off).
    assert_eq!(r.time, Some(Timestamp::new(1732347000, 500_000_000)));
    assert_eq!(pairs(&r), vec![("ts", &Value::Int(1)), ("a", &s("\u{e9}"))]);
    assert_eq!(p.parse(b"[1]", &ctx(0, "UTC")), Err(ParseFailure::NotAnObject));
    assert_eq!(p.parse(b"{\"a\":1}{}", &ctx(0, "UTC")).unwrap_err().reason(), "invalid_json");
}

#[test]
fn ltsv_and_logfmt_with_time() {
    let l =
        Parser::from_section(&section(&[("Name", "l"), ("Format", "ltsv"), ("Time_Format", "%d/%b/%Y:%H:%M:%S %z")]))
            .unwrap();
    let r = l.parse(b"time:23/Nov/2024:16:30:00 +0900\thost:1.2.3.4\tstatus:200", &ctx(0, "UTC")).unwrap();
    assert_eq!(r.time, Some(Timestamp::new(1732347000, 0)));
    assert_eq!(pairs(&r), vec![("host", &s("1.2.3.4")), ("status", &s("200"))]);
    let f = Parser::from_section(&section(&[
        ("Name", "f"),
        ("Format", "logfmt"),
        ("Time_Key", "ts"),
        ("Time_Format", "%Y-%m-%dT%H:%M:%S%z"),
        ("Time_Keep", "on"),
    ]))
    .unwrap();
    let r = f.parse(b"ts=2024-11-23T07:30:00Z level=info quiet", &ctx(0, "UTC")).unwrap();
    assert_eq!(r.time, Some(Timestamp::new(1732347000, 0)));
    assert_eq!(
        pairs(&r),
        vec![("ts", &s("2024-11-23T07:30:00Z")), ("level", &s("info")), ("quiet", &Value::Bool(true))]
    );
}

#[test]
fn stock_fluent_bit_parsers_compile_and_parse() {
    let reg = fixture("stock-parsers.conf");
    assert_eq!(reg.names().len(), 14);
    let c = ctx(1732347000, "UTC");
    let parse = |name: &str, line: &str| reg.get(name).unwrap().parse(line.as_bytes(), &c).unwrap();

    let r = parse(
        "apache2",
        r#"192.168.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#,
    );
    assert_eq!(r.time, Some(Timestamp::new(971211336, 0)));
    assert_eq!(
        pairs(&r),
        vec![
            ("host", &s("192.168.0.1")),
            ("user", &s("frank")),
            ("method", &s("GET")),
            ("path", &s("/apache_pb.gif")),
            ("code", &s("200")),
            ("size", &s("2326")),
            ("referer", &s("http://www.example.com/start.html")),
            ("agent", &s("Mozilla/4.08 [en] (Win98; I ;Nav)")),
        ]
    );

    let r = parse(
        "nginx",
        r#"93.184.216.34 - - [23/Nov/2024:16:30:00 +0900] "GET /index.html HTTP/1.1" 200 612 "-" "curl/8.5.0""#,
    );
    assert_eq!(r.time, Some(Timestamp::new(1732347000, 0)));
    assert_eq!(
        pairs(&r),
        vec![
            ("remote", &s("93.184.216.34")),
            ("host", &s("-")),
            ("user", &s("-")),
            ("method", &s("GET")),
            ("path", &s("/index.html")),
            ("code", &s("200")),
            ("size", &s("612")),
            ("referer", &s("-")),
            ("agent", &s("curl/8.5.0")),
        ]
    );

    let r = parse(
        "syslog-rfc5424",
        r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event log entry"#,
    );
    assert_eq!(r.time, Some(Timestamp::new(1065910455, 3_000_000)));
    assert_eq!(
        pairs(&r),
        vec![
            ("pri", &s("165")),
            ("time", &s("2003-10-11T22:14:15.003Z")),
            ("host", &s("mymachine.example.com")),
            ("ident", &s("evntslog")),
            ("pid", &s("-")),
            ("msgid", &s("ID47")),
            ("extradata", &s(r#"[exampleSDID@32473 iut="3" eventSource="Application"]"#)),
            ("message", &s("An application event log entry")),
        ]
    );

    // The stock `/…/`-wrapped rfc3164 (host group); its second Time_Format is ignored.
    let r = reg
        .get("syslog-rfc3164")
        .unwrap()
        .parse(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8", &ctx(1728691200, "UTC"))
        .unwrap();
    assert_eq!(r.time, Some(Timestamp::new(1728684855, 0)));
    assert_eq!(
        pairs(&r),
        vec![
            ("pri", &s("34")),
            ("time", &s("Oct 11 22:14:15")),
            ("host", &s("mymachine")),
            ("ident", &s("su")),
            ("message", &s("'su root' failed for lonvick on /dev/pts/8")),
        ]
    );

    let r = parse("docker", r#"{"log":"hello \"world\"\n","stream":"stdout","time":"2024-11-23T07:30:00.123456789Z"}"#);
    assert_eq!(r.time, Some(Timestamp::new(1732347000, 123_456_789)));
    assert_eq!(
        pairs(&r),
        vec![
            ("log", &s("hello \"world\"\n")),
            ("stream", &s("stdout")),
            ("time", &s("2024-11-23T07:30:00.123456789Z"))
        ]
    );

    let r = parse("cri", "2024-11-23T16:30:00.123456789+09:00 stdout F hello cri");
    assert_eq!(r.time, Some(Timestamp::new(1732347000, 123_456_789)));
    assert_eq!(pairs(&r), vec![("stream", &s("stdout")), ("logtag", &s("F")), ("message", &s("hello cri"))]);

    let r = parse(
        "mongodb",
        "2014-11-03T18:28:32.450-0500 I NETWORK [initandlisten] waiting for connections on port 27017",
    );
    assert_eq!(r.time, Some(Timestamp::new(1415057312, 450_000_000)));
    assert_eq!(r.fields.get_first("message"), Some(&s("waiting for connections on port")));
    assert_eq!(r.fields.get_first("ms"), Some(&s("27017")));

    let r = parse(
        "apache_error",
        "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration: /export/home",
    );
    assert_eq!(
        pairs(&r),
        vec![
            ("time", &s("Oct 11 14:32:52 2000")),
            ("level", &s("error")),
            ("client", &s("127.0.0.1")),
            ("message", &s("client denied by server configuration: /export/home")),
        ]
    );

    let r = parse(
        "kube-custom",
        "kube.var.log.containers.apache-logs-annotated_default_apache-aeeccc7a9f00f6e4e066aeff0434cf80621215071f1b20a51e8340aa7c35eac6.log",
    );
    assert_eq!(r.fields.get_first("namespace_name"), Some(&s("default")));
    assert_eq!(r.fields.get_first("container_name"), Some(&s("apache")));
    assert_eq!(r.fields.get_first("pod_name"), Some(&s("var.log.containers.apache-logs-annotated")));
}

#[test]
fn config_errors_point_at_lines() {
    let errs = |props: &[(&str, &str)]| -> Vec<String> {
        Parser::from_section(&section(props)).unwrap_err().iter().map(|e| e.to_string()).collect()
    };
    assert_eq!(
        errs(&[("Name", "x"), ("Format", "csv")]),
        vec!["test.conf:3: unknown Format 'csv' for parser 'x' (fix: valid formats: regex, json, ltsv, logfmt, rfc3164, raw)"]
    );
    let e = errs(&[("Name", "x"), ("Format", "regex"), ("Regex", r"^(?<a>\w+)(?=;)")]);
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("test.conf:4: Regex of parser 'x': lookahead '(?=…)' is not supported"), "{}", e[0]);
    let e = errs(&[("Name", "x"), ("Format", "regex")]);
    assert_eq!(e, vec!["test.conf:3: parser 'x' has Format regex but no Regex (fix: add 'Regex ^(?<field>...)$')"]);
    let e = errs(&[("Format", "json"), ("Tme_Key", "t")]);
    assert_eq!(e.len(), 2);
    assert!(
        e[0].starts_with("test.conf:3: unknown key 'Tme_Key' for parser '?' (fix: did you mean 'Time_Key'?"),
        "{}",
        e[0]
    );
    assert!(e[1].starts_with("test.conf:1: [PARSER] section without a Name"), "{}", e[1]);
    let e =
        errs(&[("Name", "x"), ("Format", "json"), ("Time_Format", "%Q"), ("Time_Offset", "9"), ("Time_Keep", "maybe")]);
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].starts_with("test.conf:4: Time_Format '%Q': unsupported conversion '%Q'"));
    assert!(e[1].starts_with("test.conf:5: Time_Offset '9' is not an offset"));
    assert!(e[2].starts_with("test.conf:6: 'Time_Keep' must be a boolean"));
    let e = errs(&[("Name", "x"), ("Format", "json"), ("Time_Offset", "+09:00"), ("Time_Zone", "Asia/Tokyo")]);
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("test.conf:5: parser 'x' sets both Time_Offset (line 4) and Time_Zone"));
}

#[test]
fn registry_keeps_first_duplicate_and_skips_multiline() {
    let text = "[PARSER]\n Name a\n Format json\n[MULTILINE_PARSER]\n Name ml\n type regex\n[PARSER]\n Name a\n Format logfmt\n[PARSER]\n Name b\n Format nope\n";
    let mut reg = ParserRegistry::new();
    let errors = reg.load_sections(&sections(text, "p.conf"));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].loc.as_ref().unwrap().line, 12);
    assert_eq!(reg.names(), vec!["a"]);
    assert_eq!(reg.get("a").unwrap().format_name(), "json");
    assert!(reg.get("A").is_none());
    assert!(reg.insert(Parser::rfc3164("syslog")));
    assert!(!reg.insert(Parser::rfc3164("syslog")));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut reg = fixture("stock-parsers.conf");
    reg.insert(Parser::rfc3164("native"));
    for (name, fmt) in [("ltsv", "ltsv"), ("logfmt", "logfmt")] {
        reg.insert(
            Parser::from_section(&section(&[("Name", name), ("Format", fmt), ("Time_Format", "%b %e %T.%L%z")]))
                .unwrap(),
        );
    }
    let seeds: [&[u8]; 5] = [
        b"<190>Nov  3 16:30:00 web-1 nginx[12]: {\"a\":\"\\ud83d\\ude00\",\"b\":[1,2.5e3,{\"c\":null}]}",
        b"<13>2024-11-23T16:30:00.123+09:00 host tag: msg",
        b"time:Nov  3 16:30:00.5+0900\tk:v",
        b"time=\"Nov 3 16:30:00.1Z\" k=v bare",
        b"192.168.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 2326",
    ];
    // xorshift: deterministic mutations (truncation, byte flips, splices).
    let mut next = crate::testing::xorshift(0x9E37_79B9_7F4A_7C15);
    let c = ctx(1732347000, "Asia/Tokyo");
    let names = reg.names();
    for round in 0..3000 {
        let seed = seeds[round % seeds.len()];
        let mut input = seed[..(next() as usize % (seed.len() + 1))].to_vec();
        for _ in 0..(next() % 4) {
            if input.is_empty() {
                break;
            }
            let at = next() as usize % input.len();
            input[at] = match next() % 6 {
                0 => b'\\',
                1 => b'"',
                2 => 0xff,
                3 => b' ',
                4 => b'{',
                _ => next() as u8,
            };
        }
        for name in &names {
            let _ = reg.get(name).unwrap().parse(&input, &c);
        }
    }
}

#[test]
fn raw_format_keeps_the_whole_line_as_message() {
    let p = Parser::from_section(&section(&[("Name", "r"), ("Format", "raw")])).unwrap();
    let ctx = ParseContext { now: Timestamp::new(0, 0), zone: Zone::Utc };
    let got = p.parse(b"<13>any \xff line\n", &ctx).unwrap();
    assert_eq!(got.fields.get_first("message"), Some(&Value::from("<13>any \u{fffd} line")));
    assert_eq!(got.time, None);
}
