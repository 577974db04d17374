//! The `rewrite_tag` filter: `Rule <KEY> <REGEX> <NEW_TAG> <KEEP>`, first
//! matching rule wins. A match emits a copy of the record under the new tag;
//! the copy re-enters the filter chain from the first filter (only filters
//! whose Match fits the new tag apply) and is routed by its new tag. With
//! KEEP false the original stops here.
//!
//! Where gatelog differs from Fluent Bit (reference §6): there is no emitter
//! queue to overflow (Fluent Bit lost 75% of a burst there); the pipeline
//! carries emitted records on in the same batch, and a rule that would
//! re-match its own output forever is cut after a few generations and
//! counted. A record that matches no rule keeps its tag whatever KEEP says
//! (1.8.13 applied KEEP to non-matching records too).

use std::sync::Arc;

use regex::{CaptureLocations, Regex};

use crate::config::schema::{check_keys, OptionSpec, COMMON_FILTER};
use crate::config::units::parse_bool;
use crate::config::{ConfigError, Property, Section};
use crate::record::accessor::Accessor;
use crate::record::reads::Reads;
use crate::record::{Record, Text, Value};
use crate::stats::FilterCounters;

const OPTIONS: &[OptionSpec] = &[
    OptionSpec { name: "Rule", default: None, desc: "KEY REGEX NEW_TAG KEEP; repeat for several, first match wins" },
    OptionSpec { name: "Emitter_Name", default: None, desc: "accepted for compatibility (no emitter queue)" },
    OptionSpec {
        name: "Emitter_Mem_Buf_Limit",
        default: Some("10M"),
        desc: "accepted for compatibility (no emitter queue)",
    },
    OptionSpec { name: "Emitter_Storage.type", default: Some("memory"), desc: "accepted for compatibility" },
];

/// One piece of a NEW_TAG.
#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Group(usize),
    Tag,
    TagPart(usize),
    Field(Accessor),
}

#[derive(Debug, Clone)]
pub struct TagTemplate {
    parts: Vec<Part>,
}

impl TagTemplate {
    pub fn parse(s: &str) -> Result<TagTemplate, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            lit.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (part, next) = if let Some(d) = after.chars().next().filter(char::is_ascii_digit) {
                (Part::Group(d as usize - '0' as usize), &after[1..])
            } else if let Some(t) = after.strip_prefix("TAG") {
                match t.strip_prefix('[') {
                    Some(r) => {
                        let close = r.find(']').ok_or_else(|| format!("unclosed '$TAG[' in '{s}'"))?;
                        let n =
                            r[..close].trim().parse().map_err(|_| format!("'$TAG[{}]' needs a number", &r[..close]))?;
                        (Part::TagPart(n), &r[close + 1..])
                    }
                    None => (Part::Tag, t),
                }
            } else {
                match Accessor::parse_prefix(after) {
                    Ok((a, next)) => (Part::Field(a), next),
                    Err(_) => {
                        // A lone `$` is literal.
                        lit.push('$');
                        rest = after;
                        continue;
                    }
                }
            };
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(part);
            rest = next;
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(TagTemplate { parts })
    }

    /// The literal text before the first record-derived part: the root a
    /// tag-as-path output confines this rule's files to.
    pub fn literal_prefix(&self) -> &str {
        match self.parts.first() {
            Some(Part::Lit(l)) => l,
            _ => "",
        }
    }

    fn render(&self, groups: &Groups<'_>, rec: &Record, out: &mut String) {
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                Part::Group(g) => out.push_str(groups.get(*g)),
                Part::Tag => out.push_str(&rec.tag),
                Part::TagPart(n) => out.push_str(rec.tag.split('.').nth(*n).unwrap_or("")),
                Part::Field(a) => {
                    if let Some(v) = a.get(&rec.fields) {
                        stringify(v, out);
                    }
                }
            }
        }
    }
}

/// Non-string values in a tag: ints in decimal, floats `%f`, bools, `null`,
/// arrays and maps as JSON.
fn stringify(v: &Value, out: &mut String) {
    use std::fmt::Write;
    match v {
        Value::Str(s) => out.push_str(s),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            let _ = write!(out, "{f:.6}");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(x, out);
            }
            out.push(']');
        }
        Value::Map(_) => json_value(v, out),
    }
}

fn json_value(v: &Value, out: &mut String) {
    match v {
        Value::Str(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(&Value::Str(Text::new(k)), out);
                out.push(':');
                json_value(x, out);
            }
            out.push('}');
        }
        other => stringify(other, out),
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    key: Accessor,
    pattern: Pattern,
    new_tag: TagTemplate,
    keep: bool,
}

/// How a rule's REGEX is matched.
#[derive(Debug, Clone)]
enum Pattern {
    /// `^(.*)$`, the usual "take the whole value" rule: in Onigmo syntax it
    /// matches every value at 0, `.*` stopping at the first `\n`, so group 1
    /// is the value's first line, found without running a regex.
    FirstLine,
    Regex(Regex),
}

impl Pattern {
    fn compile(src: &str) -> Result<Pattern, String> {
        if src == "^(.*)$" {
            return Ok(Pattern::FirstLine);
        }
        compile_rule_regex(src).map(Pattern::Regex)
    }

    /// The groups of a match in `v`, if it matches; `locs`: this pattern's
    /// reusable capture slots.
    fn groups<'a>(&self, v: &'a str, locs: &'a mut Option<CaptureLocations>) -> Option<Groups<'a>> {
        match self {
            Pattern::FirstLine => Some(Groups::FirstLine(v.split('\n').next().unwrap_or(v))),
            Pattern::Regex(re) => {
                let locs = locs.get_or_insert_with(|| re.capture_locations());
                re.captures_read(locs, v)?;
                Some(Groups::Regex(v, locs))
            }
        }
    }
}

/// The groups of one match.
enum Groups<'a> {
    /// Groups 0 and 1 are this text.
    FirstLine(&'a str),
    Regex(&'a str, &'a CaptureLocations),
}

impl Groups<'_> {
    /// Group `n`'s text, empty when it did not take part.
    fn get(&self, n: usize) -> &str {
        match *self {
            Groups::FirstLine(s) if n <= 1 => s,
            Groups::FirstLine(_) => "",
            Groups::Regex(text, locs) => locs.get(n).and_then(|(a, b)| text.get(a..b)).unwrap_or(""),
        }
    }
}

impl Rule {
    pub fn parse(p: &Property) -> Result<Rule, ConfigError> {
        let fail = |msg: String| {
            ConfigError::at(&p.loc, msg).with_hint("write 'Rule $KEY REGEX NEW_TAG KEEP', four tokens without spaces, e.g. 'Rule $vhost ^(.*)$ /logs/$1.log false'")
        };
        let tokens: Vec<&str> = p.value.split_whitespace().collect();
        let [key, regex, new_tag, keep] = tokens[..] else {
            return Err(fail(format!("Rule needs 4 tokens, got {}", tokens.len())));
        };
        let key = Accessor::parse(key).map_err(|e| fail(format!("bad KEY: {e}")))?;
        let pattern = Pattern::compile(regex).map_err(|e| fail(format!("bad REGEX: {e}")))?;
        let new_tag = TagTemplate::parse(new_tag).map_err(|e| fail(format!("bad NEW_TAG: {e}")))?;
        let keep = parse_bool(keep).ok_or_else(|| fail(format!("KEEP must be true or false, got '{keep}'")))?;
        Ok(Rule { key, pattern, new_tag, keep })
    }

    pub fn keep(&self) -> bool {
        self.keep
    }

    pub fn new_tag(&self) -> &TagTemplate {
        &self.new_tag
    }
}

/// Rule regexes are Onigmo syntax, read by group number (`$1`).
fn compile_rule_regex(src: &str) -> Result<Regex, String> {
    let pattern = crate::parser::onigmo::translate_numbered(src)?;
    Regex::new(&pattern).map_err(|e| e.to_string())
}

pub struct RewriteTag {
    rules: Vec<Rule>,
    /// Each rule's capture slots, reused from record to record.
    locs: Vec<Option<CaptureLocations>>,
    buf: String,
    /// The last tag built: consecutive records mostly get the same one (a
    /// dated path), which is then shared instead of allocated again.
    last: Option<Arc<str>>,
}

impl RewriteTag {
    pub fn from_section(s: &Section) -> Result<RewriteTag, Vec<ConfigError>> {
        let mut errors = check_keys(s, "rewrite_tag", &[COMMON_FILTER, OPTIONS]);
        let mut rules = Vec::new();
        for p in s.get_all("rule") {
            match Rule::parse(p) {
                Ok(r) => rules.push(r),
                Err(e) => errors.push(e),
            }
        }
        if s.get("rule").is_none() {
            errors.push(
                ConfigError::at(&s.loc, "rewrite_tag needs at least one Rule")
                    .with_hint("add 'Rule $KEY REGEX NEW_TAG KEEP'"),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(RewriteTag::new(rules))
    }

    fn new(rules: Vec<Rule>) -> RewriteTag {
        RewriteTag { locs: vec![None; rules.len()], rules, buf: String::new(), last: None }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules' KEYs and the fields their NEW_TAGs print.
    pub fn reads(&self) -> Reads {
        let mut keys = Vec::new();
        for r in &self.rules {
            keys.push(r.key.key.as_str());
            keys.extend(r.new_tag.parts.iter().filter_map(|p| match p {
                Part::Field(a) => Some(a.key.as_str()),
                _ => None,
            }));
        }
        Reads::keys(keys)
    }

    /// Push the record to `out` (it continues under its tag) and/or its
    /// re-tagged copy to `emitted` (it re-enters the chain).
    pub fn apply(&mut self, rec: Record, out: &mut Vec<Record>, emitted: &mut Vec<Record>, counters: &FilterCounters) {
        for (rule, locs) in self.rules.iter().zip(&mut self.locs) {
            let Some(Value::Str(v)) = rule.key.get(&rec.fields) else {
                continue;
            };
            let Some(groups) = rule.pattern.groups(v, locs) else {
                continue;
            };
            self.buf.clear();
            rule.new_tag.render(&groups, &rec, &mut self.buf);
            let tag = match &self.last {
                Some(t) if **t == *self.buf => t.clone(),
                _ => {
                    let t: Arc<str> = Arc::from(self.buf.as_str());
                    self.last = Some(t.clone());
                    t
                }
            };
            counters.emit_records.inc();
            if rule.keep {
                let mut rec = rec;
                emitted.push(Record::new(tag, rec.time, rec.fields.share()));
                out.push(rec);
            } else {
                emitted.push(Record { tag, ..rec });
            }
            return;
        }
        out.push(rec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Location;
    use crate::record::{Map, Timestamp};
    use std::path::PathBuf;

    fn prop(v: &str) -> Property {
        Property {
            key: "Rule".into(),
            value: v.into(),
            loc: Location { file: Arc::new(PathBuf::from("t.conf")), line: 7 },
        }
    }

    fn rec(tag: &str, pairs: &[(&str, Value)]) -> Record {
        let mut m = Map::new();
        for (k, v) in pairs {
            m.push(*k, v.clone());
        }
        Record::new(Arc::from(tag), Timestamp::new(1, 0), m)
    }

    fn run(rules: &[&str], r: Record) -> (Vec<Record>, Vec<Record>) {
        let mut f = RewriteTag::new(rules.iter().map(|x| Rule::parse(&prop(x)).unwrap()).collect());
        let (mut out, mut emitted) = (Vec::new(), Vec::new());
        f.apply(r, &mut out, &mut emitted, &FilterCounters::default());
        (out, emitted)
    }

    #[test]
    fn first_line_pattern_matches_what_the_regex_matches() {
        let re = Pattern::Regex(compile_rule_regex("^(.*)$").unwrap());
        assert!(matches!(Pattern::compile("^(.*)$").unwrap(), Pattern::FirstLine));
        let mut next = crate::testing::xorshift(0x5eed);
        let alphabet = ["a", "\n", "\r", "é", " ", "$", "\u{2028}", "\0"];
        for _ in 0..5_000 {
            let len = (next() % 8) as usize;
            let v: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let (mut a, mut b) = (None, None);
            let fast = Pattern::FirstLine.groups(&v, &mut a).expect("always matches");
            let slow = re.groups(&v, &mut b).expect("the regex matches every value");
            for n in 0..3 {
                assert_eq!(fast.get(n), slow.get(n), "{v:?} group {n}");
            }
        }
    }

    #[test]
    fn sidecar_rule_keeps_original_and_emits_dated_path() {
        let r = rec(
            "kube.*",
            &[
                ("vhost", Value::from("example.com")),
                ("log_file_path", Value::from("2024-1123/istio-ingressgateway-access.log")),
            ],
        );
        let (out, emitted) = run(&["vhost ^(.*)$ /log/output/path/$log_file_path true"], r);
        assert_eq!(&*out[0].tag, "kube.*");
        assert_eq!(&*emitted[0].tag, "/log/output/path/2024-1123/istio-ingressgateway-access.log");
        assert_eq!(emitted[0].fields, out[0].fields);
    }

    #[test]
    fn placeholders_groups_tag_parts_and_nested_fields() {
        let mut inner = Map::new();
        inner.push("ns", Value::from("prod"));
        let r = rec("app.web.1", &[("k", Value::Map(inner)), ("host", Value::from("a-b")), ("n", Value::Int(7))]);
        let (out, emitted) = run(&["$host ^(\\w)-(\\w)$ $TAG[1].$2.$1.$k['ns'].$n.$TAG.$9 false"], r);
        assert!(out.is_empty());
        assert_eq!(&*emitted[0].tag, "web.b.a.prod.7.app.web.1.");
    }

    #[test]
    fn no_match_missing_key_or_non_string_keeps_the_tag() {
        for r in [
            rec("t", &[("x", Value::from("a"))]),
            rec("t", &[("vhost", Value::Int(1))]),
            rec("t", &[("vhost", Value::from("zzz"))]),
        ] {
            let (out, emitted) = run(&["$vhost ^a$ new false"], r);
            assert_eq!((out.len(), emitted.len()), (1, 0));
            assert_eq!(&*out[0].tag, "t");
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let r = rec("t", &[("v", Value::from("abc"))]);
        let (_, emitted) = run(&["$v ^x one false", "$v ^a two false", "$v ^ab three false"], r);
        assert_eq!(&*emitted[0].tag, "two");
    }

    #[test]
    fn malformed_rules_are_refused_with_location() {
        for bad in ["$v ^a$ new", "$v ( new false", "$v ^a$ new maybe", "$v[x ^a$ new false"] {
            let e = Rule::parse(&prop(bad)).unwrap_err().to_string();
            assert!(e.starts_with("t.conf:7: "), "{e}");
        }
    }

    #[test]
    fn onigmo_syntax_in_rules() {
        // `\<` is a literal '<' in Onigmo; named groups make plain ones non-capturing.
        let r = rec("t", &[("m", Value::from("<190>x"))]);
        let (_, emitted) = run(&["$m ^\\<(\\d+)\\>(.)$ p.$1.$2 false"], r.clone());
        assert_eq!(&*emitted[0].tag, "p.190.x");
        let (_, emitted) = run(&["$m ^\\<(?<pri>\\d+)\\>(.)$ p.$1.$2 false"], r);
        assert_eq!(&*emitted[0].tag, "p.190.");
    }

    #[test]
    fn literal_prefix_is_the_confinement_root() {
        assert_eq!(
            TagTemplate::parse("/log/output/path/$log_file_path").unwrap().literal_prefix(),
            "/log/output/path/"
        );
        assert_eq!(TagTemplate::parse("$TAG.x").unwrap().literal_prefix(), "");
    }
}
