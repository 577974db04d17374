//! The fast way back for the common case (one record returned): build the
//! result by *moving* the original record's key and value strings wherever
//! Lua still holds the same bytes, instead of allocating copies. In the
//! sidecar pipeline every field but the added one is unchanged, so the
//! result costs one allocation instead of two per field.
//!
//! Two phases keep the original intact until success: [`plan`] reads the
//! Lua table and records, per output field, where its key and value come
//! from (an original slot or a new value) — it may fail; [`materialize`]
//! then consumes the original and cannot fail. Order and type rules are
//! those of [`super::convert`]: original keys in their first-occurrence
//! order, new keys after, sorted bytewise.

use std::collections::HashMap;

use super::convert::{key_string, Converter};
use crate::record::{Map, Value};

enum From<T> {
    Original(usize),
    New(T),
}

/// One output field.
struct Field {
    /// Sort rank: first position of the key in the original, or MAX.
    rank: usize,
    key: From<String>,
    value: From<Value>,
}

/// Where each output field comes from; see [`materialize`].
pub(crate) struct Plan(Vec<Field>);

impl Plan {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// For each original key: (first index, last index). Linear scans for the
/// usual small record, a hash map for a large one.
struct Positions<'a> {
    pairs: Vec<(&'a str, &'a Value)>,
    index: Option<HashMap<&'a str, (usize, usize)>>,
}

impl<'a> Positions<'a> {
    fn new(map: &'a Map) -> Self {
        let index = (map.len() > 32).then(|| {
            let mut m: HashMap<&str, (usize, usize)> = HashMap::with_capacity(map.len());
            for (i, (k, _)) in map.iter().enumerate() {
                m.entry(k).and_modify(|e| e.1 = i).or_insert((i, i));
            }
            m
        });
        Positions { pairs: map.iter().collect(), index }
    }

    fn find(&self, key: &[u8]) -> Option<(usize, usize)> {
        let key = std::str::from_utf8(key).ok()?;
        match &self.index {
            Some(m) => m.get(key).copied(),
            None => {
                let first = self.pairs.iter().position(|(k, _)| *k == key)?;
                let last = self.pairs.iter().rposition(|(k, _)| *k == key).unwrap_or(first);
                Some((first, last))
            }
        }
    }

    fn key(&self, i: usize) -> Option<&'a str> {
        self.pairs.get(i).map(|(k, _)| *k)
    }

    fn value(&self, i: usize) -> Option<&'a Value> {
        self.pairs.get(i).map(|(_, v)| *v)
    }
}

/// Read the returned map `pairs` against `original`.
pub(crate) fn plan(
    conv: &Converter,
    t: &mlua::Table,
    pairs: Vec<(mlua::Value, mlua::Value)>,
    original: &Map,
) -> mlua::Result<Plan> {
    let pos = Positions::new(original);
    let mut fields = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let found = match &k {
            mlua::Value::String(s) => pos.find(&s.as_bytes()),
            _ => None,
        };
        let v = super::convert::exact_number(t, &k, v)?;
        let Some((first, last)) = found else {
            let Some(key) = key_string(&k) else { continue };
            if let Some(value) = conv.to_value(v, Some(&key), None, 0)? {
                fields.push(Field { rank: usize::MAX, key: From::New(key), value: From::New(value) });
            }
            continue;
        };
        let old = pos.value(last);
        let value = match (&v, old) {
            (mlua::Value::String(s), Some(Value::Str(o))) if *s.as_bytes() == *o.as_bytes() => From::Original(last),
            _ => match conv.to_value(v, pos.key(first), old, 0)? {
                Some(value) => From::New(value),
                None => continue,
            },
        };
        fields.push(Field { rank: first, key: From::Original(first), value });
    }
    Ok(Plan(fields))
}

/// Build the record, moving strings out of `original`.
pub(crate) fn materialize(plan: Plan, original: Map) -> Map {
    let mut fields = plan.0;
    let mut slots: Vec<(Option<String>, Option<Value>)> =
        original.into_pairs().into_iter().map(|(k, v)| (Some(k), Some(v))).collect();
    let mut out: Vec<(String, Value)> = Vec::with_capacity(fields.len());
    // New keys (rank MAX) sort by name; originals by rank.
    fields.sort_unstable_by(|a, b| {
        a.rank.cmp(&b.rank).then_with(|| match (&a.key, &b.key) {
            (From::New(x), From::New(y)) => x.cmp(y),
            _ => std::cmp::Ordering::Equal,
        })
    });
    for f in fields {
        let key = match f.key {
            From::New(k) => k,
            From::Original(i) => slots.get_mut(i).and_then(|s| s.0.take()).unwrap_or_default(),
        };
        let value = match f.value {
            From::New(v) => v,
            From::Original(i) => slots.get_mut(i).and_then(|s| s.1.take()).unwrap_or(Value::Null),
        };
        out.push((key, value));
    }
    Map::from_pairs(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Lua;

    #[test]
    fn unchanged_strings_are_moved_changed_ones_converted() {
        let lua = Lua::new();
        let mut conv = Converter::new(Vec::new(), Vec::new(), false);
        let original = Map::from_pairs(vec![
            ("time".into(), Value::from("json")),
            ("uri".into(), Value::from("/a")),
            ("time".into(), Value::from("syslog")),
            ("n".into(), Value::Int(1)),
        ]);
        let uri_ptr = original.get_first("uri").and_then(Value::as_str).unwrap().as_ptr();
        let t = conv.to_table(&lua, &original).unwrap();
        t.raw_set("n", 2.5).unwrap();
        t.raw_set("added", "x").unwrap();
        let super::super::convert::Shape::Map(pairs) = super::super::convert::shape(&t).unwrap() else {
            panic!("not a map")
        };
        let plan = plan(&conv, &t, pairs, &original).unwrap();
        let out = materialize(plan, original);
        assert_eq!(
            out,
            Map::from_pairs(vec![
                ("time".into(), Value::from("syslog")),
                ("uri".into(), Value::from("/a")),
                ("n".into(), Value::Float(2.5)),
                ("added".into(), Value::from("x")),
            ])
        );
        // The same heap buffer: moved, not copied.
        assert_eq!(out.get_first("uri").and_then(Value::as_str).unwrap().as_ptr(), uri_ptr);
    }
}
