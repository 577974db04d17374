//! `Types key:integer key2:float …`: casts applied to string fields after
//! parsing. A value that does not convert keeps its string (Fluent Bit logs
//! "cast error. save as string"; its `integer` uses `atoll`, which turns
//! `abc` into 0 — gatelog keeps `abc`).

use crate::config::{ConfigError, Property};
use crate::record::{Text, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cast {
    Integer,
    Float,
    Bool,
    Hex,
    String,
}

const NAMES: &str = "integer, float, bool, hex, string";

/// Parse a `Types` value.
pub(crate) fn parse_types(p: &Property) -> Result<Vec<(String, Cast)>, ConfigError> {
    let mut out = Vec::new();
    for item in p.value.split_whitespace() {
        let Some((key, ty)) = item.rsplit_once(':').filter(|(k, _)| !k.is_empty()) else {
            return Err(ConfigError::at(&p.loc, format!("Types entry '{item}' is not 'key:type'"))
                .with_hint(format!("write e.g. 'status:integer size:integer'; types: {NAMES}")));
        };
        let cast = match ty.to_ascii_lowercase().as_str() {
            "integer" | "int" => Cast::Integer,
            "float" | "double" => Cast::Float,
            "bool" | "boolean" => Cast::Bool,
            "hex" => Cast::Hex,
            "string" | "str" => Cast::String,
            _ => {
                return Err(ConfigError::at(&p.loc, format!("unknown type '{ty}' for key '{key}' in Types"))
                    .with_hint(format!("valid types: {NAMES}")))
            }
        };
        out.push((key.to_owned(), cast));
    }
    Ok(out)
}

fn cast(s: &str, to: Cast) -> Option<Value> {
    let t = s.trim();
    match to {
        Cast::String => None,
        Cast::Integer => t.parse::<i64>().ok().map(Value::Int),
        Cast::Float => t.parse::<f64>().ok().filter(|f| f.is_finite()).map(Value::Float),
        // Fluent Bit compares the first 4/5 bytes case-insensitively.
        Cast::Bool => {
            let b = t.as_bytes();
            if b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"true") {
                Some(Value::Bool(true))
            } else if b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"false") {
                Some(Value::Bool(false))
            } else {
                None
            }
        }
        Cast::Hex => {
            let h = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
            u64::from_str_radix(h, 16).ok().and_then(|v| i64::try_from(v).ok()).map(Value::Int)
        }
    }
}

/// Cast every string field named in `types`.
pub(crate) fn apply(fields: &mut [(Text, Value)], types: &[(String, Cast)]) {
    for (key, to) in types {
        for (k, v) in fields.iter_mut() {
            if k != key {
                continue;
            }
            if let Value::Str(s) = v {
                match cast(s, *to) {
                    Some(new) => *v = new,
                    None if *to != Cast::String => {
                        tracing::trace!(key = %k, "cast error, kept as string")
                    }
                    None => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Location;
    use std::sync::Arc;

    fn prop(v: &str) -> Property {
        Property { key: "Types".into(), value: v.into(), loc: Location { file: Arc::new("p.conf".into()), line: 7 } }
    }

    #[test]
    fn casts_and_failures_keep_strings() {
        let types = parse_types(&prop("code:integer size:integer rt:float ok:bool h:hex s:string")).unwrap();
        let s = |v: &str| Value::Str(v.into());
        let mut f = vec![
            ("code".into(), s("200")),
            ("size".into(), s("-")),
            ("rt".into(), s("0.25")),
            ("ok".into(), s("TRUE")),
            ("h".into(), s("0xff")),
            ("s".into(), s("1")),
            ("code".into(), s("404")),
        ];
        apply(&mut f, &types);
        assert_eq!(f[0].1, Value::Int(200));
        assert_eq!(f[1].1, s("-"));
        assert_eq!(f[2].1, Value::Float(0.25));
        assert_eq!(f[3].1, Value::Bool(true));
        assert_eq!(f[4].1, Value::Int(255));
        assert_eq!(f[5].1, s("1"));
        assert_eq!(f[6].1, Value::Int(404));
    }

    #[test]
    fn bad_types_are_config_errors() {
        let e = parse_types(&prop("code:number")).unwrap_err();
        assert_eq!(e.to_string(), "p.conf:7: unknown type 'number' for key 'code' in Types (fix: valid types: integer, float, bool, hex, string)");
        assert!(parse_types(&prop("code")).is_err());
    }
}
