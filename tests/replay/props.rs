//! The properties every fuzz target checks, shared by the cargo-fuzz
//! targets (`fuzz/fuzz_targets/*.rs` include this file by path) and by the
//! corpus replay in `cargo test` (`tests/replay/mod.rs`), so a property
//! broken by a change fails the normal test run without a fuzzer.
//!
//! Each `check_*` takes arbitrary bytes, must never panic on its own, and
//! asserts properties of what gatelog's public API returns; an assertion
//! failure is a finding. Only the public API is used.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatelog::config::{classic, Location, Property, Section};
use gatelog::filter::rewrite_tag::Rule;
use gatelog::filter::{BuildContext, Filter};
use gatelog::output::{Format, Output, OutputContext, Template};
use gatelog::parser::{KeyOrder, ParseContext, Parser, ParserRegistry};
use gatelog::record::accessor::{Accessor, Step};
use gatelog::record::{lossy_string, Map, Record, Timestamp, Value};
use gatelog::stats::{FilterCounters, OutputCounters};
use gatelog::zone::Zone;

/// A property check over arbitrary bytes.
pub type Check = fn(&[u8]);

/// The fuzz targets, by corpus directory name.
pub const TARGETS: &[(&str, Check)] = &[
    ("rfc3164", check_rfc3164),
    ("json", check_json),
    ("regex", check_regex),
    ("ltsv", check_ltsv),
    ("logfmt", check_logfmt),
    ("config", check_config),
    ("template", check_template),
    ("accessor", check_accessor),
    ("rewrite_rule", check_rewrite_rule),
    ("path_confinement", check_path_confinement),
    ("record_path", check_record_path),
    ("stock_syslog", check_stock_syslog),
];

/// 2024-11-23 16:30:00 UTC: a fixed clock, so year inference is deterministic.
const NOW: Timestamp = Timestamp::new(1_732_379_400, 0);

fn ctx() -> ParseContext {
    ParseContext { now: NOW, zone: Zone::Utc }
}

fn loc(line: u32) -> Location {
    Location { file: Arc::new(PathBuf::from("fuzz.conf")), line }
}

/// A section from `(key, value)` pairs, each on its own line.
pub fn section(name: &str, props: &[(&str, &str)]) -> Section {
    Section {
        name: name.to_owned(),
        loc: loc(1),
        props: props
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Property { key: (*k).to_owned(), value: (*v).to_owned(), loc: loc(i as u32 + 2) })
            .collect(),
    }
}

fn parser(props: &[(&str, &str)]) -> Option<Parser> {
    Parser::from_section(&section("PARSER", props)).ok()
}

fn json_parser() -> Parser {
    parser(&[("Name", "json"), ("Format", "json")]).expect("json parser builds")
}

fn record(tag: &str, fields: Map) -> Record {
    Record::new(Arc::from(tag), NOW, fields)
}

/// Render `fields` with the `plain` format (gatelog's JSON writer).
fn plain_json(fields: &Map) -> Vec<u8> {
    let format = Format::from_section(&section("OUTPUT", &[("Format", "plain")])).expect("plain");
    let mut out = Vec::new();
    format.render(&record("t", fields.clone()), &mut out);
    out
}

/// Equal, except floats may differ in the last digits (`%.16g` is not
/// always round-trip exact).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-14,
        // A literal beyond f64 (`1e999`) reads as infinity, which the writer
        // prints as `null` to stay valid JSON (documented in output/json.rs).
        (Value::Float(x), Value::Null) | (Value::Null, Value::Float(x)) => !x.is_finite(),
        // `%.16g` prints 1.9999999999999996 as `2`, which reads back as an
        // integer (Fluent Bit's rule, kept for compatibility).
        (Value::Float(x), Value::Int(i)) | (Value::Int(i), Value::Float(x)) => {
            x.fract() != 0.0 && (x - *i as f64).abs() <= x.abs() * 1e-14
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b)),
        (Value::Map(x), Value::Map(y)) => same_map(x, y),
        _ => a == b,
    }
}

fn same_map(a: &Map, b: &Map) -> bool {
    a.len() == b.len() && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
}

fn strip_newline(input: &[u8]) -> &[u8] {
    input.strip_suffix(b"\r\n").or_else(|| input.strip_suffix(b"\n")).unwrap_or(input)
}

/// rfc3164: on success the message is the (lossy) tail of the input, the
/// PRI is 1–3 digits written as `<PRI>` at the start, and the JSON writer
/// turns the record into one line that parses back.
pub fn check_rfc3164(data: &[u8]) {
    let Ok(parsed) = Parser::rfc3164("rfc3164").parse(data, &ctx()) else { return };
    let body = strip_newline(data);
    let Some(Value::Str(message)) = parsed.fields.get_first("message") else {
        panic!("no message field: {:?}", parsed.fields);
    };
    let is_tail = (0..=body.len().min(message.len()))
        .any(|k| body.get(body.len() - k..).is_some_and(|tail| lossy_string(tail) == *message));
    assert!(is_tail, "message {message:?} is not a tail of {body:?}");
    if let Some(pri) = parsed.fields.get_first("pri") {
        let pri = pri.as_str().expect("pri is a string");
        assert!((1..=3).contains(&pri.len()) && pri.bytes().all(|b| b.is_ascii_digit()), "pri {pri:?}");
        assert!(data.starts_with(format!("<{pri}>").as_bytes()), "pri {pri:?} not at the start");
    }
    for (k, v) in parsed.fields.iter() {
        assert!(matches!(v, Value::Str(_)), "{k} is not a string: {v:?}");
    }
    let line = plain_json(&parsed.fields);
    assert_one_json_line(&line, &parsed.fields);
}

/// The `plain` line: valid UTF-8, one `\n` at the very end, and it parses
/// back (with gatelog's JSON parser) into `fields`.
fn assert_one_json_line(line: &[u8], fields: &Map) {
    let text = std::str::from_utf8(line).expect("JSON line is UTF-8");
    assert_eq!(text.find('\n'), Some(text.len() - 1), "one newline, at the end: {text:?}");
    let back = json_parser().parse(line, &ctx()).expect("JSON line parses back");
    assert!(same_map(&back.fields, fields), "round trip changed the record:\n{fields:?}\n{:?}", back.fields);
}

/// json: a parsed object written by gatelog's JSON writer parses back equal.
/// And decoded for a pipeline that reads only some keys (`record::reads`),
/// it is accepted or refused alike and gives exactly the pairs with those
/// keys, in order.
pub fn check_json(data: &[u8]) {
    let p = json_parser();
    let full = p.parse(data, &ctx());
    let wanted: std::collections::BTreeSet<String> = match &full {
        Ok(parsed) => parsed.fields.iter().step_by(2).map(|(k, _)| k.to_string()).chain(["absent".into()]).collect(),
        Err(_) => ["a".into(), "b".into()].into(),
    };
    let keep = p.projection(&wanted).expect("a json parser decodes only what is read");
    let text = std::str::from_utf8(data).ok();
    // With a remembered key order: learned from this input and then hit on
    // the second decode, or learned from another record first.
    let mut order = KeyOrder::default();
    let mut other = KeyOrder::default();
    let _ = p.parse_keeping(br#"{"time":"t","a":1,"b":{"a":2}}"#, &ctx(), Some(&keep), Some(&mut other));
    let parts = [
        Some(p.parse_keeping(data, &ctx(), Some(&keep), None)),
        text.map(|t| p.parse_text(t, &ctx(), Some(&keep), None)),
        Some(p.parse_keeping(data, &ctx(), Some(&keep), Some(&mut order))),
        Some(p.parse_keeping(data, &ctx(), Some(&keep), Some(&mut order))),
        text.map(|t| p.parse_text(t, &ctx(), Some(&keep), Some(&mut other))),
        Some(p.parse_keeping(data, &ctx(), Some(&keep), Some(&mut other))),
    ];
    for part in parts.into_iter().flatten() {
        match (&full, &part) {
            (Ok(f), Ok(got)) => {
                let want: Vec<_> = f.fields.iter().filter(|(k, _)| wanted.contains(*k)).collect();
                assert_eq!(got.fields.iter().collect::<Vec<_>>(), want);
                assert_eq!(got.time, f.time);
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!("decoding everything gave {full:?}, decoding {wanted:?} gave {part:?}"),
        }
    }
    let Ok(parsed) = full else { return };
    let line = plain_json(&parsed.fields);
    assert_one_json_line(&line, &parsed.fields);
}

/// regex: first line = Onigmo pattern (compiled through the parser
/// builder), the rest = input. Every field is a substring of the (lossy)
/// input and named after a group of the pattern.
pub fn check_regex(data: &[u8]) {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let pattern = lossy_string(&data[..split]);
    let input = data.get(split + 1..).unwrap_or_default();
    let Some(p) = parser(&[("Name", "r"), ("Format", "regex"), ("Regex", &pattern), ("Skip_Empty_Values", "off")])
    else {
        return;
    };
    let Ok(parsed) = p.parse(input, &ctx()) else { return };
    let text = lossy_string(input);
    for (k, v) in parsed.fields.iter() {
        let s = v.as_str().expect("regex fields are strings");
        assert!(text.contains(s), "{k}={s:?} is not in the input");
        assert!(pattern.contains(k), "field {k:?} is not a group name of {pattern:?}");
    }
}

/// Fluent Bit's stock syslog regexes (parsers.conf), which gatelog matches
/// by hand instead of with the regex engine.
const STOCK_SYSLOG: [&str; 2] = [
    r"^\<(?<pri>[0-9]+)\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<host>[^ ]*) (?<ident>[a-zA-Z0-9_\/\.\-]*)(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? *(?<message>.*)$",
    r"^\<(?<pri>[0-9]+)\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<ident>[a-zA-Z0-9_\/\.\-]*)(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? *(?<message>.*)$",
];

/// stock_syslog: the hand matcher of the stock syslog regexes gives the
/// regex engine's fields. The same pattern behind an empty group `(?:)`
/// means the same but is not recognised, so it goes to the engine.
pub fn check_stock_syslog(data: &[u8]) {
    // (pattern, Skip_Empty_Values, matched by hand, by the regex engine), compiled once.
    static PARSERS: std::sync::OnceLock<Vec<(usize, &str, Parser, Parser)>> = std::sync::OnceLock::new();
    let parsers = PARSERS.get_or_init(|| {
        let regex = |p: &str, skip: &str| {
            parser(&[("Name", "s"), ("Format", "regex"), ("Regex", p), ("Skip_Empty_Values", skip)])
                .expect("the stock pattern compiles")
        };
        let mut all = Vec::new();
        for (i, pattern) in STOCK_SYSLOG.iter().enumerate() {
            for skip in ["on", "off"] {
                all.push((i, skip, regex(pattern, skip), regex(&format!("(?:){pattern}"), skip)));
            }
        }
        all
    });
    for (i, skip, fast, engine) in parsers {
        let got = fast.parse(data, &ctx()).map(|r| r.fields);
        let want = engine.parse(data, &ctx()).map(|r| r.fields);
        assert_eq!(got, want, "pattern {i}, Skip_Empty_Values {skip}, input {:?}", lossy_string(data));
    }
}

/// ltsv: the fields written back as `label:value` pairs parse back equal.
pub fn check_ltsv(data: &[u8]) {
    let p = parser(&[("Name", "l"), ("Format", "ltsv")]).expect("ltsv");
    let Ok(parsed) = p.parse(data, &ctx()) else { return };
    let mut line = Vec::new();
    for (i, (k, v)) in parsed.fields.iter().enumerate() {
        let v = v.as_str().expect("ltsv values are strings");
        assert!(!k.is_empty() && !k.contains([':', '\t', '\n']), "label {k:?}");
        assert!(!v.contains(['\t', '\n']), "value {v:?}");
        if i > 0 {
            line.push(b'\t');
        }
        line.extend_from_slice(format!("{k}:{v}").as_bytes());
    }
    // The parser removes one `\r` before the end of the line; give it one.
    line.extend_from_slice(b"\r\n");
    let back = p.parse(&line, &ctx()).expect("written back parses");
    assert_eq!(back.fields, parsed.fields);
}

/// logfmt: the fields written back (`k="v"` with `\"` `\\` escapes, bare
/// keys for `true`) parse back equal.
pub fn check_logfmt(data: &[u8]) {
    let p = parser(&[("Name", "l"), ("Format", "logfmt")]).expect("logfmt");
    let Ok(parsed) = p.parse(data, &ctx()) else { return };
    let mut line = String::new();
    for (k, v) in parsed.fields.iter() {
        assert!(!k.is_empty() && !k.contains([' ', '\t', '\n', '\r', '=', '"']), "key {k:?}");
        line.push_str(k);
        match v {
            Value::Bool(true) => {}
            Value::Str(s) => {
                line.push_str("=\"");
                line.push_str(&s.replace('\\', "\\\\").replace('"', "\\\""));
                line.push('"');
            }
            other => panic!("unexpected logfmt value {other:?}"),
        }
        line.push(' ');
    }
    let back = p.parse(line.as_bytes(), &ctx()).expect("written back parses");
    assert_eq!(back.fields, parsed.fields, "{line:?}");
}

/// The classic reader on arbitrary text never panics, and every error it
/// reports names the file and a line within the text. `@INCLUDE` is left
/// out: it reads arbitrary paths (`/dev/zero`), which is the operator's own
/// config, not untrusted input.
pub fn check_config(data: &[u8]) {
    let text = lossy_string(data);
    if text.to_ascii_lowercase().contains("include") {
        return;
    }
    let name = Path::new("fuzz.conf");
    let lines = text.split('\n').count() as u32;
    let base = std::env::temp_dir();
    let Err(errors) = classic::read_str(&text, name, &base) else { return };
    assert!(!errors.0.is_empty());
    for e in &errors.0 {
        let loc = e.loc.as_ref().unwrap_or_else(|| panic!("error without a location: {e}"));
        assert_eq!(loc.file.as_path(), name, "{e}");
        assert!((1..=lines).contains(&loc.line), "line {} outside 1..={lines}: {e}", loc.line);
    }
}

/// Keys the template renderer reads as the event time: prefixes of `time`.
const TIME_PLACEHOLDERS: [&str; 5] = ["{}", "{t}", "{ti}", "{tim}", "{time}"];

/// template: the line ends with exactly the one `\n` the renderer adds
/// (beyond those in the text and values); without time placeholders, a
/// record lacking every key prints the text unchanged, and a record whose
/// every key holds its own placeholder text prints the same.
pub fn check_template(data: &[u8]) {
    let text = lossy_string(data);
    let t = Template::compile(&text);
    let mut empty = Vec::new();
    t.render(&record("t", Map::new()), &mut empty);
    let empty = String::from_utf8(empty).expect("UTF-8");
    assert!(empty.ends_with('\n'));
    assert_eq!(empty.matches('\n').count(), text.matches('\n').count() + 1, "{text:?} → {empty:?}");
    if TIME_PLACEHOLDERS.iter().any(|p| text.contains(p)) {
        return;
    }
    assert_eq!(empty, format!("{text}\n"), "literal text changed");
    // Every `{key}` the text could name, filled with its own placeholder.
    let mut fields = Map::new();
    for (i, _) in text.match_indices('{') {
        if let Some(close) = text[i..].find('}') {
            let key = &text[i + 1..i + close];
            if !key.contains('{') {
                fields.push(key, Value::from(format!("{{{key}}}")));
            }
        }
    }
    let mut full = Vec::new();
    t.render(&record("t", fields), &mut full);
    assert_eq!(String::from_utf8(full).expect("UTF-8"), empty);
}

/// Accessor: a parsed accessor written back parses equal, and finds a
/// value placed at its path.
pub fn check_accessor(data: &[u8]) {
    let text = lossy_string(data);
    let Ok(a) = Accessor::parse(&text) else { return };
    assert!(!a.key.is_empty());
    let mut written = format!("${}", a.key);
    for step in &a.path {
        match step {
            Step::Key(k) => {
                assert!(!k.contains(']'), "{k:?}");
                written.push_str(&format!("['{k}']"));
            }
            Step::Index(i) => written.push_str(&format!("[{i}]")),
        }
    }
    assert_eq!(Accessor::parse(&written).as_ref(), Ok(&a), "{written:?}");
    if a.path.iter().any(|s| matches!(s, Step::Index(i) if *i > 64)) {
        return;
    }
    let mut v = Value::Str("found".into());
    for step in a.path.iter().rev() {
        v = match step {
            Step::Key(k) => {
                let mut m = Map::new();
                m.push(k.as_str(), v);
                Value::Map(m)
            }
            Step::Index(i) => {
                let mut items = vec![Value::Null; *i];
                items.push(v);
                Value::Array(items)
            }
        };
    }
    let mut fields = Map::new();
    fields.push(a.key.as_str(), v);
    assert_eq!(a.get(&fields), Some(&Value::Str("found".into())));
}

/// rewrite_tag `Rule`: never panics; an error points at the Rule line; a
/// rule that parses has four tokens, its KEEP is the fourth, and its
/// NEW_TAG's literal prefix (the confinement root) starts the third.
pub fn check_rewrite_rule(data: &[u8]) {
    let value = lossy_string(data);
    let p = Property { key: "Rule".into(), value: value.clone(), loc: loc(7) };
    match Rule::parse(&p) {
        Err(e) => assert_eq!(e.loc.as_ref().map(|l| l.line), Some(7), "{e}"),
        Ok(rule) => {
            let tokens: Vec<&str> = value.split_whitespace().collect();
            assert_eq!(tokens.len(), 4);
            let keep = gatelog::config::units::parse_bool(tokens[3]);
            assert_eq!(keep, Some(rule.keep()));
            assert!(tokens[2].starts_with(rule.new_tag().literal_prefix()));
        }
    }
}

/// Every file under `dir`, not following symlinks: (path, bytes).
fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => walk(&p, out),
            Ok(_) => out.push((p.clone(), std::fs::read(&p).unwrap_or_default())),
            Err(_) => {}
        }
    }
}

/// Path confinement, through the real pieces: a record whose `vhost` is the
/// input goes through `rewrite_tag` (`$vhost ^(.*)$ <root>/$vhost.log`)
/// into a tag-as-path `file` output confined to `<root>`. Exactly one line
/// is written, and it is under `<root>` (nothing appears beside it).
pub fn check_path_confinement(data: &[u8]) {
    // Each `/` can be a directory to create and remove: deeper trees only
    // slow the fuzzer down without reaching new code.
    if data.iter().filter(|b| **b == b'/').count() > 24 {
        return;
    }
    // Memory-backed when available: a disk's metadata latency made this
    // target a hundred times slower than the others.
    let shm = Path::new("/dev/shm");
    let tmp = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    let base = tmp.join(format!("gatelog-confine-{}", std::process::id()));
    let root = base.join("a/b/root");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&root).expect("temp root");
    let root_s = root.display().to_string();
    let rule = format!("$vhost ^(.*)$ {root_s}/$vhost.log false");
    let filter_sec = section("FILTER", &[("Name", "rewrite_tag"), ("Match", "*"), ("Rule", &rule)]);
    let registry = ParserRegistry::new();
    let bctx = BuildContext { parsers: &registry, base_dir: &base, instance: "rewrite_tag.0" };
    let mut filter = Filter::from_section(&filter_sec, &bctx).expect("rule builds");
    let out_sec =
        section("OUTPUT", &[("Name", "file"), ("Match", "*"), ("Format", "template"), ("Template", "{vhost}")]);
    let octx = OutputContext { base_dir: &base, instance: "file.0", zone: Zone::Utc };
    let mut output = Output::from_section(&out_sec, &octx).expect("output builds");
    output.confine_tags_to(&[format!("{root_s}/")]);

    let mut fields = Map::new();
    fields.push("vhost", Value::from(lossy_string(data)));
    let (mut kept, mut emitted) = (Vec::new(), Vec::new());
    let fc = FilterCounters::default();
    filter.apply(record("nginx", fields), &mut kept, &mut emitted, &fc, &ctx());
    // `.` stops at a newline: then the rule does not match and nothing is
    // written (the record would go to its original tag, outside this test).
    let Some(rec) = emitted.pop() else { return };
    let oc = OutputCounters::default();
    output.write(&rec, &oc);
    output.close(&oc);

    let mut files = Vec::new();
    walk(&base, &mut files);
    for (p, _) in &files {
        assert!(p.starts_with(&root), "{p:?} written outside {root:?} for tag {:?}", rec.tag);
        let rel = p.strip_prefix(&root).expect("under root");
        assert!(rel.components().all(|c| matches!(c, std::path::Component::Normal(_))), "{rel:?}");
    }
    let lines: usize = files.iter().map(|(_, c)| c.iter().filter(|b| **b == b'\n').count()).sum();
    let dropped = oc.dropped_records.get() + oc.errors.get();
    assert!(lines + dropped as usize >= 1, "record neither written nor counted: {:?}", rec.tag);
    let _ = std::fs::remove_dir_all(&base);
}

/// The whole record path: datagram → rfc3164 → `parser` filter (json,
/// `Reserve_Data On`) → template line. Never panics; the syslog record
/// parses back from its JSON line; after the filter the record is the
/// JSON fields then the syslog fields without `message` when the message
/// is a JSON object, else unchanged with the failure counted; the template
/// line is UTF-8 and ends with the renderer's `\n`.
pub fn check_record_path(data: &[u8]) {
    let Ok(parsed) = Parser::rfc3164("syslog").parse(data, &ctx()) else { return };
    let mut registry = ParserRegistry::new();
    registry.insert(json_parser());
    let base = std::env::temp_dir();
    let bctx = BuildContext { parsers: &registry, base_dir: &base, instance: "parser.0" };
    let sec = section(
        "FILTER",
        &[("Name", "parser"), ("Match", "nginx"), ("Key_Name", "message"), ("Parser", "json"), ("Reserve_Data", "On")],
    );
    let mut filter = Filter::from_section(&sec, &bctx).expect("parser filter builds");
    let rec = record("nginx", parsed.fields.clone());
    let (mut out, mut emitted) = (Vec::new(), Vec::new());
    let fc = FilterCounters::default();
    filter.apply(rec, &mut out, &mut emitted, &fc, &ctx());
    assert!(emitted.is_empty());
    assert_eq!(out.len(), 1);
    let after = &out[0];

    let message = parsed.fields.get_last("message").and_then(Value::as_str).unwrap_or("");
    match json_parser().parse(message.as_bytes(), &ctx()) {
        Ok(json) => {
            let mut expect = json.fields.clone();
            for (k, v) in parsed.fields.iter().filter(|(k, _)| *k != "message") {
                expect.push(k, v.clone());
            }
            assert!(same_map(&after.fields, &expect), "{:?}\n{expect:?}", after.fields);
            assert_eq!(fc.parse_failures.get(), 0);
        }
        Err(_) => {
            assert_eq!(after.fields, parsed.fields, "an unparsed message leaves the record unchanged");
            assert_eq!(fc.parse_failures.get(), 1);
        }
    }
    assert_one_json_line(&plain_json(&after.fields), &after.fields);
    let t = Template::compile("{time} {host} {vhost} {status} {message}");
    let mut line = Vec::new();
    t.render(after, &mut line);
    let line = String::from_utf8(line).expect("template line is UTF-8");
    assert!(line.ends_with('\n'));
}
