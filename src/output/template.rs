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
use crate::record::reads::{KeySet, Reads};
use crate::record::{Record, Value};

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(Vec<u8>),
    Time,
    /// `raw` is the whole `{key}`, written when the record lacks `key`.
    Field {
        key: String,
        raw: String,
        /// Index of `key` among the template's distinct keys.
        slot: usize,
    },
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    segments: Vec<Segment>,
    /// The distinct keys; a field's `slot` is its key's.
    keys: KeySet,
}

/// Distinct keys gathered in one pass over a record; a template with more
/// looks each one up on its own.
const GATHERED: usize = 16;

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
                        segments.push(Segment::Field { key: key.to_owned(), raw: text[start..=i].to_owned(), slot: 0 });
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
        let keys = KeySet::new(segments.iter().filter_map(|s| match s {
            Segment::Field { key, .. } => Some(key.as_str()),
            _ => None,
        }));
        for seg in &mut segments {
            if let Segment::Field { key, slot, .. } = seg {
                *slot = keys.slot(key.as_bytes()).unwrap_or_default();
            }
        }
        Template { segments, keys }
    }

    /// The fields it prints (the event time is not a field).
    pub fn reads(&self) -> Reads {
        Reads::keys(self.segments.iter().filter_map(|s| match s {
            Segment::Field { key, .. } => Some(key.as_str()),
            _ => None,
        }))
    }

    /// Append one line for `rec`, newline included.
    /// A placeholder prints the first value under its key (the record's
    /// fields are walked once for all of them when there are 2 to
    /// [`GATHERED`] distinct keys; one key is a walk on its own).
    pub fn render(&self, rec: &Record, out: &mut Vec<u8>) {
        let mut found: [Option<&Value>; GATHERED] = [None; GATHERED];
        let gathered = (2..=GATHERED).contains(&self.keys.len());
        if gathered {
            let mut missing = self.keys.len();
            for (k, v) in rec.fields.iter() {
                if let Some(slot) = self.keys.slot(k.as_bytes()) {
                    if found[slot].is_none() {
                        found[slot] = Some(v);
                        missing -= 1;
                        if missing == 0 {
                            break;
                        }
                    }
                }
            }
        }
        for seg in &self.segments {
            match seg {
                Segment::Literal(bytes) => out.extend_from_slice(bytes),
                Segment::Time => push_time(out, rec.time),
                Segment::Field { key, raw, slot } => {
                    let value = if gathered { found[*slot] } else { rec.fields.get_first(key) };
                    match value {
                        Some(Value::Str(s)) => out.extend_from_slice(s.as_bytes()),
                        Some(v) => push_object(out, v),
                        None => out.extend_from_slice(raw.as_bytes()),
                    }
                }
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
    fn first_value_wins_with_repeats_and_many_keys() {
        let r = rec(&[
            ("a", Value::from("1")),
            ("b", Value::Int(2)),
            ("a", Value::from("later")),
            ("bb", Value::from("x")),
        ]);
        assert_eq!(render("{a}{b}{a}{bb}{c}{b}", &r), "121x{c}2\n");
        // More distinct keys than one pass gathers: each is looked up alone.
        let keys: Vec<String> = (0..GATHERED + 3).map(|i| format!("k{i}")).collect();
        let pairs: Vec<(&str, Value)> = keys.iter().rev().map(|k| (k.as_str(), Value::from(k.as_str()))).collect();
        let r = rec(&pairs);
        let t: String = keys.iter().map(|k| format!("{{{k}}},")).collect();
        assert_eq!(
            render(&format!("{t}{{a}}"), &r),
            format!("{}{{a}}\n", keys.iter().map(|k| format!("{k},")).collect::<String>())
        );
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
