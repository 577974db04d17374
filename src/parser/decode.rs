//! `Decode_Field <decoder> <field> [try_next|do_next]` and
//! `Decode_Field_As …`: post-processing of one string field after parsing.
//!
//! Decoders: `json` (a string holding a JSON object), `escaped` (C-style
//! `\n \t …`, other `\x` → `x`), `escaped_utf8` (also `\uXXXX`, `\xHH`,
//! octal; leaves `\" \' \\ \/` for a following `escaped`, as Fluent Bit's
//! docker parser chains them), `mysql_quoted`. `Decode_Field_As` replaces the
//! value; `Decode_Field` with `json` keeps the field and appends the decoded
//! keys at the end of the record (Fluent Bit's "extra keys"). After a rule:
//! `do_next` continues with the next rule for the field on success,
//! `try_next` on failure; without an action the first rule that ran ends it.

use crate::config::{ConfigError, Property};
use crate::record::{Text, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoder {
    Json,
    Escaped,
    EscapedUtf8,
    MysqlQuoted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Stop,
    TryNext,
    DoNext,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeRule {
    field: String,
    decoder: Decoder,
    replace: bool,
    action: Action,
}

impl DecodeRule {
    /// From a `Decode_Field` (`replace` false) or `Decode_Field_As` property.
    pub fn from_property(p: &Property, replace: bool) -> Result<DecodeRule, ConfigError> {
        let words: Vec<&str> = p.value.split_whitespace().collect();
        let usage = || format!("write '{} <json|escaped|escaped_utf8|mysql_quoted> <field> [try_next|do_next]'", p.key);
        let (dec, field, action) = match words.as_slice() {
            [d, f] => (*d, *f, None),
            [d, f, a] => (*d, *f, Some(*a)),
            _ => {
                return Err(
                    ConfigError::at(&p.loc, format!("'{}' needs a decoder and a field", p.key)).with_hint(usage())
                )
            }
        };
        let decoder = match dec.to_ascii_lowercase().as_str() {
            "json" => Decoder::Json,
            "escaped" => Decoder::Escaped,
            "escaped_utf8" => Decoder::EscapedUtf8,
            "mysql_quoted" => Decoder::MysqlQuoted,
            _ => {
                return Err(ConfigError::at(&p.loc, format!("unknown decoder '{dec}' in '{}'", p.key))
                    .with_hint("decoders: json, escaped, escaped_utf8, mysql_quoted"))
            }
        };
        let action = match action.map(str::to_ascii_lowercase).as_deref() {
            None => Action::Stop,
            Some("try_next") => Action::TryNext,
            Some("do_next") => Action::DoNext,
            Some(other) => {
                return Err(
                    ConfigError::at(&p.loc, format!("unknown action '{other}' in '{}'", p.key)).with_hint(usage())
                )
            }
        };
        Ok(DecodeRule { field: field.to_owned(), decoder, replace, action })
    }
}

enum Out {
    Str(String),
    Map(Value),
}

fn run(dec: Decoder, s: &str) -> Option<Out> {
    match dec {
        Decoder::Json => {
            let parsed =
                super::json::parse_value(s.as_bytes()).or_else(|| super::json::parse_value(unescape(s).as_bytes()))?;
            matches!(parsed, Value::Map(_)).then_some(Out::Map(parsed))
        }
        Decoder::Escaped => Some(Out::Str(unescape(s))),
        Decoder::EscapedUtf8 => Some(Out::Str(unescape_utf8(s))),
        Decoder::MysqlQuoted => {
            let b = s.as_bytes();
            let q = *b.first()?;
            if b.len() < 2 || !(q == b'"' || q == b'\'') || b.last() != Some(&q) {
                return None;
            }
            Some(Out::Str(unescape(s.get(1..s.len() - 1)?)))
        }
    }
}

fn simple(c: char) -> Option<char> {
    Some(match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'v' => '\u{b}',
        'a' => '\u{7}',
        _ => return None,
    })
}

/// `escaped`: control escapes; any other `\x` is `x`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        if let Some(n) = it.next() {
            out.push(simple(n).unwrap_or(n));
        }
    }
    out
}

/// `escaped_utf8`: control, octal, `\xHH`, `\uXXXX` (pairs combined),
/// `\UXXXXXXXX`; the JSON escapes `\" \' \\ \/` are left as written.
fn unescape_utf8(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let hex = |from: usize, max: usize| -> (u32, usize) {
        let mut v = 0u32;
        let mut n = 0;
        while n < max {
            match chars.get(from + n).and_then(|c| c.to_digit(16)) {
                Some(d) => v = v * 16 + d,
                None => break,
            }
            n += 1;
        }
        (v, n)
    };
    while let Some(&c) = chars.get(i) {
        i += 1;
        let Some(&n) = chars.get(i).filter(|_| c == '\\') else {
            out.push(c);
            continue;
        };
        match n {
            '"' | '\'' | '\\' | '/' => {
                out.push('\\');
                out.push(n);
                i += 1;
            }
            '0'..='7' => {
                let mut v = 0u32;
                let mut k = 0;
                while k < 3 {
                    match chars.get(i + k).and_then(|c| c.to_digit(8)) {
                        Some(d) => v = v * 8 + d,
                        None => break,
                    }
                    k += 1;
                }
                i += k;
                out.push(char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            'x' | 'u' | 'U' => {
                let max = match n {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let (mut v, k) = hex(i + 1, max);
                if k == 0 {
                    out.push(n);
                    i += 1;
                    continue;
                }
                i += 1 + k;
                if n == 'u'
                    && (0xD800..0xDC00).contains(&v)
                    && chars.get(i) == Some(&'\\')
                    && chars.get(i + 1) == Some(&'u')
                {
                    let (lo, k2) = hex(i + 2, 4);
                    if k2 == 4 && (0xDC00..0xE000).contains(&lo) {
                        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                out.push(char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            other => {
                out.push(simple(other).unwrap_or(other));
                i += 1;
            }
        }
    }
    out
}

/// Apply `rules` (in config order) to `fields`.
pub(crate) fn apply(fields: &mut Vec<(Text, Value)>, rules: &[DecodeRule]) {
    if rules.is_empty() {
        return;
    }
    let mut extra = Vec::new();
    for (key, value) in fields.iter_mut() {
        let mut decoded_as_map = false;
        for rule in rules.iter().filter(|r| &r.field == key) {
            let Value::Str(s) = &*value else { break };
            if decoded_as_map {
                break;
            }
            let ok = match run(rule.decoder, s) {
                Some(Out::Str(new)) => {
                    *value = Value::Str(new.into());
                    true
                }
                Some(Out::Map(m)) if rule.replace => {
                    *value = m;
                    decoded_as_map = true;
                    true
                }
                Some(Out::Map(Value::Map(m))) => {
                    extra.extend(m.into_pairs());
                    true
                }
                Some(Out::Map(_)) => false,
                None => false,
            };
            let next = match rule.action {
                Action::DoNext => ok,
                Action::TryNext => !ok,
                Action::Stop => false,
            };
            if !next {
                break;
            }
        }
    }
    fields.extend(extra);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Location;
    use crate::record::Map;
    use std::sync::Arc;

    fn rule(key: &str, v: &str) -> Result<DecodeRule, ConfigError> {
        let p =
            Property { key: key.into(), value: v.into(), loc: Location { file: Arc::new("p.conf".into()), line: 3 } };
        DecodeRule::from_property(&p, key.eq_ignore_ascii_case("decode_field_as"))
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    #[test]
    fn json_as_replaces_and_plain_appends() {
        let rules = [rule("Decode_Field_As", "json log").unwrap()];
        let mut f = vec![("log".into(), s(r#"{"a":1}"#)), ("x".into(), s("y"))];
        apply(&mut f, &rules);
        let mut m = Map::new();
        m.push("a", Value::Int(1));
        assert_eq!(f[0].1, Value::Map(m));

        let rules = [rule("Decode_Field", "json log").unwrap()];
        let mut f = vec![("log".into(), s(r#"{\"a\":\"b\"}"#)), ("x".into(), s("y"))];
        apply(&mut f, &rules);
        assert_eq!(f.len(), 3);
        assert_eq!(f[2], ("a".into(), s("b")));

        let mut f = vec![("log".into(), s("not json"))];
        apply(&mut f, &rules);
        assert_eq!(f, vec![("log".into(), s("not json"))]);
    }

    #[test]
    fn docker_chain_escaped_utf8_then_escaped() {
        let rules = [
            rule("Decode_Field_As", "escaped_utf8 log do_next").unwrap(),
            rule("Decode_Field_As", "escaped log").unwrap(),
        ];
        let mut f = vec![("log".into(), s(r#"say \"hi\"\n\u00e9\ud83d\ude00"#))];
        apply(&mut f, &rules);
        assert_eq!(f[0].1, s("say \"hi\"\n\u{e9}\u{1F600}"));
    }

    #[test]
    fn mysql_quoted_and_config_errors() {
        let rules = [rule("Decode_Field_As", "mysql_quoted q").unwrap()];
        let mut f = vec![("q".into(), s(r#"'it\'s'"#))];
        apply(&mut f, &rules);
        assert_eq!(f[0].1, s("it's"));
        assert!(rule("Decode_Field", "base64 log").unwrap_err().to_string().contains("unknown decoder 'base64'"));
        assert!(rule("Decode_Field", "json").is_err());
        assert!(rule("Decode_Field", "json log sometimes").is_err());
    }
}
