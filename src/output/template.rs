//! The `template` format: Fluent Bit 1.8.13's `{key}` substitution, compiled
//! once at config load into segments and rendered straight into the output
//! buffer.
//!
//! The scan is Fluent Bit's, quirks included, because users' templates were
//! written against it:
//! - `{` opens a placeholder; a second `{` before `}` emits the earlier `{…`
//!   literally and reopens (`{{x}` is `{` then the placeholder `{x}`);
//! - `}` closes it. A key that is a prefix of `time` (`time`, `t`, the empty
//!   key of `{}` …; Fluent Bit compares with `strncmp(key, "time", len)`)
//!   prints the event time as `%f`, so a record field named `time` can never
//!   be printed;
//! - any other key prints the first field with exactly that name: strings
//!   raw (no quoting or escaping, a tab stays a tab), everything else the
//!   `msgpack_object_print` way; a missing key prints the placeholder
//!   literally (`{uri}`);
//! - a `}` outside a placeholder and an unclosed `{…` at the end are
//!   literal; a newline ends every line.

use super::print::{push_object, push_time};
use crate::record::reads::Reads;
use crate::record::Record;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(Vec<u8>),
    Time,
    /// `raw` is the whole `{key}`, written when the record lacks `key`.
    Field {
        key: String,
        raw: String,
    },
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    pub const DEFAULT: &'static str = "{time} {message}";

    pub fn compile(text: &str) -> Template {
        let bytes = text.as_bytes();
        let mut segments = Vec::new();
        let mut lit: Vec<u8> = Vec::new();
        let mut open: Option<usize> = None;
        for (i, &b) in bytes.iter().enumerate() {
            match (b, open) {
                (b'{', Some(start)) => {
                    lit.extend_from_slice(&bytes[start..i]);
                    open = Some(i);
                }
                (b'{', None) => open = Some(i),
                (b'}', Some(start)) => {
                    if !lit.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut lit)));
                    }
                    // Braces are ASCII, so these slices are on char boundaries.
                    let key = &text[start + 1..i];
                    if b"time".starts_with(key.as_bytes()) {
                        segments.push(Segment::Time);
                    } else {
                        segments.push(Segment::Field { key: key.to_owned(), raw: text[start..=i].to_owned() });
                    }
                    open = None;
                }
                (_, Some(_)) => {}
                (_, None) => lit.push(b),
            }
        }
        if let Some(start) = open {
            lit.extend_from_slice(&bytes[start..]);
        }
        lit.push(b'\n');
        segments.push(Segment::Literal(lit));
        Template { segments }
    }

    /// The fields it prints (the event time is not a field).
    pub fn reads(&self) -> Reads {
        Reads::keys(self.segments.iter().filter_map(|s| match s {
            Segment::Field { key, .. } => Some(key.as_str()),
            _ => None,
        }))
    }

    /// Append one line for `rec`, newline included.
    pub fn render(&self, rec: &Record, out: &mut Vec<u8>) {
        for seg in &self.segments {
            match seg {
                Segment::Literal(bytes) => out.extend_from_slice(bytes),
                Segment::Time => push_time(out, rec.time),
                Segment::Field { key, raw } => match rec.fields.get_first(key) {
                    Some(crate::record::Value::Str(s)) => out.extend_from_slice(s.as_bytes()),
                    Some(v) => push_object(out, v),
                    None => out.extend_from_slice(raw.as_bytes()),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Map, Timestamp, Value};

    fn rec(pairs: &[(&str, Value)]) -> Record {
        let mut m = Map::new();
        for (k, v) in pairs {
            m.push(*k, v.clone());
        }
        Record::new("t".into(), Timestamp::new(1732379400, 0), m)
    }

    fn render(t: &str, r: &Record) -> String {
        let mut out = Vec::new();
        Template::compile(t).render(r, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn sidecar_template_with_real_tabs() {
        // §0.2: parsed JSON keys first, then the syslog keys (two `time`s).
        let r = rec(&[
            ("time", Value::from("2024-11-23T16:30:00+09:00")),
            ("vhost", Value::from("example.com")),
            ("method", Value::from("GET")),
            ("uri", Value::from("/a")),
            ("status", Value::from("200")),
            ("pri", Value::from("190")),
            ("time", Value::from("Nov 23 16:30:00")),
            ("ident", Value::from("istio-ingressgateway-7d9f-abcde")),
            ("message", Value::from("{\"time\":\"2024-11-23T16:30:00+09:00\"}")),
        ]);
        let t = "time:{time}\tmethod:{method}\turi:{uri}\tstatus:{status}\tvhost:{vhost}\tremote_addr:{remote_addr}\trequest_time:{request_time}\tuser_agent:{user_agent}";
        assert_eq!(
            render(t, &r),
            "time:1732379400.000000\tmethod:GET\turi:/a\tstatus:200\tvhost:example.com\tremote_addr:{remote_addr}\trequest_time:{request_time}\tuser_agent:{user_agent}\n"
        );
    }

    #[test]
    fn time_prefixes_print_the_event_time() {
        let r = rec(&[("time", Value::from("field")), ("t", Value::from("x")), ("timex", Value::from("y"))]);
        assert_eq!(
            render("{time}|{t}|{}|{tim}|{timex}|{ti me}", &r),
            "1732379400.000000|1732379400.000000|1732379400.000000|1732379400.000000|y|{ti me}\n"
        );
        let r = Record::new("t".into(), Timestamp::new(1, 500_000_000), Map::new());
        assert_eq!(render("{time}", &r), "1.500000\n");
    }

    #[test]
    fn braces_edge_cases() {
        let r = rec(&[("x", Value::from("X")), ("a", Value::from("A"))]);
        assert_eq!(render("{{x}", &r), "{X\n");
        assert_eq!(render("a{b{x}c", &r), "a{bXc\n");
        assert_eq!(render("}{x}}", &r), "}X}\n");
        assert_eq!(render("pre {unclosed", &r), "pre {unclosed\n");
        assert_eq!(render("{a}{missing}", &r), "A{missing}\n");
        assert_eq!(render("", &r), "\n");
        assert_eq!(render("é{x}日", &r), "éX日\n");
    }

    #[test]
    fn values_print_raw_or_msgpack_style_first_duplicate_wins() {
        let mut inner = Map::new();
        inner.push("k", Value::from("v"));
        let r = rec(&[
            ("s", Value::from("a\tb\nc")),
            ("i", Value::Int(-7)),
            ("f", Value::Float(0.25)),
            ("b", Value::Bool(false)),
            ("n", Value::Null),
            ("arr", Value::Array(vec![Value::from("a"), Value::Int(1)])),
            ("m", Value::Map(inner)),
            ("s", Value::from("second")),
        ]);
        assert_eq!(
            render("{s}|{i}|{f}|{b}|{n}|{arr}|{m}", &r),
            "a\tb\nc|-7|0.250000|false|nil|[\"a\", 1]|{\"k\"=>\"v\"}\n"
        );
    }

    #[test]
    fn default_template() {
        let r = rec(&[("message", Value::from("hello"))]);
        assert_eq!(render(Template::DEFAULT, &r), "1732379400.000000 hello\n");
    }
}
