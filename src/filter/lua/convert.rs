//! Lua tables back to records, with Fluent Bit's type mapping (reference
//! §5.3, "Lua → msgpack") so the same script gives the same output: a number
//! with an integral value → `Int`, else `Float` (so JSON `1.0` comes back as
//! `1`); `type_int_key` keys (at any depth) → `Int`, truncated;
//! `type_array_key` keys → arrays, even when empty; a table whose keys are
//! all positive integers → array (holes → null, at most half of the slots
//! may be holes so a sparse `{[1e9]=1}` cannot balloon), any other table →
//! map, the empty table → empty map; `flb_null` → null; functions, userdata
//! and threads are dropped (Fluent Bit writes a corrupt map there); invalid
//! UTF-8 → U+FFFD. (The way in is [`super::push`].)
//!
//! Key order (gatelog's choice; Fluent Bit gives Lua's hash order): keys the
//! original map had keep its order (a duplicated key sits at its first
//! position), keys the script added follow, sorted bytewise, so the output is
//! deterministic. Nested maps are ordered the same way against the original
//! nested map.
//!
//! The common case of one flat record goes through [`super::reuse`], which
//! applies these rules on the raw stack while moving unchanged strings out
//! of the original record; this module, on mlua's typed values, handles the
//! rest: nested tables, non-string keys and split records.

use std::collections::HashMap;

use mlua::Table;

use crate::record::{lossy_text, Map, Text, Value};

/// Nesting deeper than this is refused (a table that contains itself would
/// otherwise recurse forever).
pub(crate) const MAX_DEPTH: usize = 64;

pub(crate) struct Converter {
    int_keys: Vec<String>,
    array_keys: Vec<String>,
}

/// The shape of a table read back from Lua.
pub(crate) enum Shape {
    /// Elements 1..n (nil holes included).
    Array(Vec<mlua::Value>),
    Map(Vec<(mlua::Value, mlua::Value)>),
}

impl Converter {
    pub(crate) fn new(int_keys: Vec<String>, array_keys: Vec<String>) -> Self {
        Converter { int_keys, array_keys }
    }

    /// The `type_int_key` names.
    pub(crate) fn int_keys(&self) -> &[String] {
        &self.int_keys
    }

    /// A table returned by the script as a record's fields, ordered against
    /// `hint` (the original fields).
    pub(crate) fn to_map(&self, t: &Table, hint: Option<&Map>) -> mlua::Result<Map> {
        match shape(t)? {
            Shape::Map(pairs) => self.map_from_pairs(t, pairs, hint),
            Shape::Array(items) => self.pairs_to_map(t, indexed(items), hint, 0),
        }
    }

    /// The pairs of a map-shaped table `t` (from [`shape`]) as a record's
    /// fields, ordered against `hint`.
    pub(crate) fn map_from_pairs(
        &self,
        t: &Table,
        pairs: Vec<(mlua::Value, mlua::Value)>,
        hint: Option<&Map>,
    ) -> mlua::Result<Map> {
        self.pairs_to_map(t, pairs, hint, 0)
    }

    fn pairs_to_map(
        &self,
        t: &Table,
        pairs: Vec<(mlua::Value, mlua::Value)>,
        hint: Option<&Map>,
        depth: usize,
    ) -> mlua::Result<Map> {
        let mut out: Vec<(Text, Value)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let Some(key) = key_string(&k) else { continue };
            let v = exact_number(t, &k, v)?;
            let sub_hint = match (&v, hint) {
                (mlua::Value::Table(_), Some(h)) => h.get_last(&key),
                _ => None,
            };
            if let Some(value) = self.to_value(v, Some(&key), sub_hint, depth)? {
                out.push((key, value));
            }
        }
        if let Some(h) = hint {
            out = sort_by_original(out, h);
        } else {
            out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(Map::from_pairs(out))
    }

    pub(crate) fn to_value(
        &self,
        v: mlua::Value,
        key: Option<&str>,
        hint: Option<&Value>,
        depth: usize,
    ) -> mlua::Result<Option<Value>> {
        let forced_int = || key.is_some_and(|k| self.int_keys.iter().any(|i| i == k));
        Ok(Some(match v {
            mlua::Value::Nil => Value::Null,
            mlua::Value::Boolean(b) => Value::Bool(b),
            mlua::Value::Integer(i) => Value::Int(i),
            mlua::Value::Number(f) if forced_int() => Value::Int(f as i64),
            mlua::Value::Number(f) => number(f),
            mlua::Value::String(s) => Value::Str(lossy_text(&s.as_bytes())),
            mlua::Value::LightUserData(p) if p.0.is_null() => Value::Null,
            mlua::Value::Table(t) => {
                if depth + 1 >= MAX_DEPTH {
                    return Err(too_deep());
                }
                let as_array = key.is_some_and(|k| self.array_keys.iter().any(|a| a == k));
                let sub_hint = match hint {
                    Some(Value::Map(m)) => Some(m),
                    _ => None,
                };
                if as_array {
                    Value::Array(self.sequence(&t, depth + 1)?)
                } else {
                    match shape(&t)? {
                        Shape::Array(items) => Value::Array(self.items(items, depth + 1)?),
                        Shape::Map(pairs) => Value::Map(self.pairs_to_map(&t, pairs, sub_hint, depth + 1)?),
                    }
                }
            }
            _ => return Ok(None),
        }))
    }

    /// `t[1..#t]`, for `type_array_key`.
    fn sequence(&self, t: &Table, depth: usize) -> mlua::Result<Vec<Value>> {
        let n = t.raw_len();
        let mut items = Vec::with_capacity(n);
        for i in 1..=n {
            items.push(exact_number(t, &mlua::Value::Integer(i as i64), t.raw_get(i)?)?);
        }
        self.items(items, depth)
    }

    fn items(&self, items: Vec<mlua::Value>, depth: usize) -> mlua::Result<Vec<Value>> {
        let mut out = Vec::with_capacity(items.len());
        for v in items {
            if let Some(v) = self.to_value(v, None, None, depth)? {
                out.push(v);
            }
        }
        Ok(out)
    }
}

/// Reads a table's pairs once and decides array or map.
pub(crate) fn shape(t: &Table) -> mlua::Result<Shape> {
    let mut pairs = Vec::new();
    let mut max = 0usize;
    let mut all_indices = true;
    // `for_each` walks with one `lua_next` per pair; `pairs()` would re-push
    // the table and the previous key for every step.
    t.for_each(|k: mlua::Value, v: mlua::Value| {
        if all_indices {
            match positive_index(&k) {
                Some(i) => max = max.max(i),
                None => all_indices = false,
            }
        }
        pairs.push((k, v));
        Ok(())
    })?;
    if !all_indices || pairs.is_empty() || max > 2 * pairs.len() {
        return Ok(Shape::Map(pairs));
    }
    let mut items = vec![mlua::Value::Nil; max];
    for (k, v) in pairs {
        if let Some(slot) = positive_index(&k).and_then(|i| items.get_mut(i - 1)) {
            *slot = v;
        }
    }
    Ok(Shape::Array(items))
}

fn positive_index(k: &mlua::Value) -> Option<usize> {
    match *k {
        mlua::Value::Integer(i) if i >= 1 => usize::try_from(i).ok(),
        _ => None,
    }
}

/// Array elements as `(index, value)` pairs, for a top-level table that is
/// a sequence but must become a map.
fn indexed(items: Vec<mlua::Value>) -> Vec<(mlua::Value, mlua::Value)> {
    items
        .into_iter()
        .enumerate()
        .filter(|(_, v)| !v.is_nil())
        .map(|(i, v)| (mlua::Value::Integer(i as i64 + 1), v))
        .collect()
}

/// mlua reports any number within `f64::EPSILON` of an integer as that
/// integer, so a tiny float like `1e-20` arrives as `Integer(0)`; re-read
/// those as doubles to keep Fluent Bit's exact "integral value" rule.
pub(crate) fn exact_number(t: &Table, k: &mlua::Value, v: mlua::Value) -> mlua::Result<mlua::Value> {
    if !matches!(v, mlua::Value::Integer(0)) {
        return Ok(v);
    }
    let f: f64 = t.raw_get(k.clone())?;
    Ok(if f == 0.0 { v } else { mlua::Value::Number(f) })
}

/// A Lua number as a record value: integral → `Int`, else `Float`.
pub(crate) fn number(f: f64) -> Value {
    // 2^63 is exactly representable; the range is [-2^63, 2^63).
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f) {
        Value::Int(f as i64)
    } else {
        Value::Float(f)
    }
}

/// Map keys are strings; numeric and boolean keys are spelled out, other
/// key types are dropped.
pub(crate) fn key_string(k: &mlua::Value) -> Option<Text> {
    use compact_str::format_compact;
    match k {
        mlua::Value::String(s) => Some(lossy_text(&s.as_bytes())),
        mlua::Value::Integer(i) => Some(format_compact!("{i}")),
        mlua::Value::Number(f) => Some(format_compact!("{f}")),
        mlua::Value::Boolean(b) => Some(format_compact!("{b}")),
        _ => None,
    }
}

/// Original keys first in their (first-occurrence) order, then new keys
/// sorted bytewise.
fn sort_by_original(out: Vec<(Text, Value)>, hint: &Map) -> Vec<(Text, Value)> {
    // Linear lookups for the usual small record; a hash map when a large
    // record would make that quadratic.
    let index: Option<HashMap<&str, usize>> = (hint.len() > 32).then(|| {
        let mut m = HashMap::with_capacity(hint.len());
        for (i, (k, _)) in hint.iter().enumerate() {
            m.entry(k).or_insert(i);
        }
        m
    });
    let rank = |k: &str| match &index {
        Some(m) => m.get(k).copied().unwrap_or(usize::MAX),
        None => hint.iter().position(|(h, _)| h == k).unwrap_or(usize::MAX),
    };
    let mut ranked: Vec<(usize, (Text, Value))> = out.into_iter().map(|e| (rank(&e.0), e)).collect();
    ranked.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1 .0.cmp(&b.1 .0)));
    ranked.into_iter().map(|(_, e)| e).collect()
}

fn too_deep() -> mlua::Error {
    mlua::Error::runtime(too_deep_message())
}

pub(crate) fn too_deep_message() -> String {
    format!("record nested deeper than {MAX_DEPTH} levels (a table that contains itself?)")
}
