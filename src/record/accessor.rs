//! Record accessors: `$key`, `$key['sub']['x']`, `$key[0]`, the paths Fluent
//! Bit's rewrite_tag (and other plugins) use to reach into a record. A bare
//! `key` without `$` names a top-level key, as Fluent Bit accepts it.
//! Lookups read the LAST top-level occurrence of a duplicated key, like
//! Fluent Bit's record accessor, which scans the map from the end.

use super::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accessor {
    pub key: String,
    pub path: Vec<Step>,
}

impl Accessor {
    /// Parse a whole accessor expression.
    pub fn parse(s: &str) -> Result<Accessor, String> {
        match Accessor::parse_prefix(s)? {
            (a, "") => Ok(a),
            (_, rest) => Err(format!("unexpected '{rest}' after the record accessor")),
        }
    }

    /// Parse an accessor at the start of `s` (after an optional `$`); the
    /// key name ends at `.`, space, `,`, `"`, `/`... or `[`. Returns the rest.
    pub fn parse_prefix(s: &str) -> Result<(Accessor, &str), String> {
        let body = s.strip_prefix('$').unwrap_or(s);
        let end = body.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '@')).unwrap_or(body.len());
        if end == 0 {
            return Err(format!("'{s}' does not start with a key name"));
        }
        let key = body[..end].to_owned();
        let mut rest = &body[end..];
        let mut path = Vec::new();
        while let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']').ok_or_else(|| format!("unclosed '[' in '{s}'"))?;
            let inner = r[..close].trim();
            let step = if let Some(q) = inner.strip_prefix('\'').and_then(|i| i.strip_suffix('\'')) {
                Step::Key(q.to_owned())
            } else if let Some(q) = inner.strip_prefix('"').and_then(|i| i.strip_suffix('"')) {
                Step::Key(q.to_owned())
            } else if let Ok(i) = inner.parse::<usize>() {
                Step::Index(i)
            } else {
                return Err(format!("'[{inner}]' in '{s}' is neither a quoted key nor an index"));
            };
            path.push(step);
            rest = &r[close + 1..];
        }
        Ok((Accessor { key, path }, rest))
    }

    pub fn get<'a>(&self, fields: &'a Map) -> Option<&'a Value> {
        let mut v = fields.get_last(&self.key)?;
        for step in &self.path {
            v = match (step, v) {
                (Step::Key(k), Value::Map(m)) => m.get_last(k)?,
                (Step::Index(i), Value::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Map {
        let mut inner = Map::new();
        inner.push("x", Value::from("deep"));
        let mut m = Map::new();
        m.push("vhost", Value::from("first"));
        m.push("k", Value::Map(inner));
        m.push("arr", Value::Array(vec![Value::Int(1), Value::from("two")]));
        m.push("vhost", Value::from("last"));
        m
    }

    #[test]
    fn bare_and_dollar_keys_read_the_last_duplicate() {
        let m = record();
        assert_eq!(Accessor::parse("vhost").unwrap().get(&m), Some(&Value::from("last")));
        assert_eq!(Accessor::parse("$vhost").unwrap().get(&m), Some(&Value::from("last")));
    }

    #[test]
    fn nested_paths() {
        let m = record();
        assert_eq!(Accessor::parse("$k['x']").unwrap().get(&m), Some(&Value::from("deep")));
        assert_eq!(Accessor::parse("$arr[1]").unwrap().get(&m), Some(&Value::from("two")));
        assert_eq!(Accessor::parse("$arr[5]").unwrap().get(&m), None);
        assert_eq!(Accessor::parse("$k['y']").unwrap().get(&m), None);
        assert!(Accessor::parse("$k[x]").is_err());
        assert!(Accessor::parse("$").is_err());
    }

    #[test]
    fn prefix_stops_at_path_separators() {
        let (a, rest) = Accessor::parse_prefix("$log_file_path/x.log").unwrap();
        assert_eq!(a.key, "log_file_path");
        assert_eq!(rest, "/x.log");
        let (a, rest) = Accessor::parse_prefix("$a['b'].c").unwrap();
        assert_eq!((a.key.as_str(), a.path.len(), rest), ("a", 1, ".c"));
    }
}
