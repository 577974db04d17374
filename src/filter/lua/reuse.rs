//! The fast way back for the common case (one flat record returned): read
//! the Lua table once with `lua_next` and rebuild the record *in place*,
//! moving the original's key and value strings wherever Lua still holds the
//! same bytes. In the sidecar pipeline every field but the added one is
//! unchanged, so the result costs one allocation (the new field) instead of
//! two per field.
//!
//! Two phases keep the original intact until success: [`walk`] reads the
//! table into a [`Plan`] (one slot per original position, plus the new
//! fields) and may give up; [`materialize`] then rewrites the original's
//! field vector and cannot fail.
//!
//! Rules (those of [`super::convert`]): a key is an original one when its
//! interned address is in [`Origins`] (or, for keys pushed uninterned, by
//! bytes); it keeps its first position and gets the value Lua holds, which
//! is the original *last* value's string moved when the bytes are equal
//! (compared, not trusted from the address: the GC may have reused it), or
//! converted otherwise. New keys follow, sorted bytewise. A number with an
//! integral value becomes `Int` (`type_int_key`: truncated), `flb_null`
//! null, functions and other userdata are dropped. Valid UTF-8 is copied
//! once; invalid bytes become U+FFFD. A nested table or a non-string key
//! makes the walk give up ([`Walked::Other`]).

use std::collections::HashMap;

use super::convert::number;
use super::keys::{Origin, Origins};
use super::stack::{Kind, Stack};
use crate::record::{lossy_text, Text, Value};

enum Slot {
    Absent,
    /// The original value at this index, moved.
    Keep(usize),
    New(Value),
}

/// Where each output field comes from; reused between records.
#[derive(Default)]
pub(crate) struct Plan {
    /// Indexed by the original key's first position.
    slots: Vec<Slot>,
    /// Keys the original did not have.
    added: Vec<(Text, Value)>,
    /// Instead of `slots`, when `edited`: the original fields with these
    /// edits (see [`Plan::start_edits`]).
    edits: Edits,
    edited: bool,
}

/// Edits of the original fields, applied in this order.
#[derive(Default)]
struct Edits {
    /// `(first, last)`: the value at `last` moves to `first`.
    moves: Vec<(usize, usize)>,
    set: Vec<(usize, Value)>,
    /// Positions removed.
    drop: Vec<usize>,
}

impl Plan {
    /// Start a plan over `n` original fields, all absent.
    pub(crate) fn start(&mut self, n: usize) {
        self.edited = false;
        self.slots.clear();
        self.slots.resize_with(n, || Slot::Absent);
        self.added.clear();
    }

    /// Start a plan that keeps the original fields, edited: for the table
    /// the script was given, where most fields stay where they are.
    pub(crate) fn start_edits(&mut self) {
        self.edited = true;
        self.edits.moves.clear();
        self.edits.set.clear();
        self.edits.drop.clear();
        self.added.clear();
    }

    /// Edit: the value at `last` moves to `first` (a duplicated key).
    #[inline]
    pub(crate) fn edit_move(&mut self, first: usize, last: usize) {
        self.edits.moves.push((first, last));
    }

    /// Edit: the field at `i` gets `v`.
    #[inline]
    pub(crate) fn edit_set(&mut self, i: usize, v: Value) {
        self.edits.set.push((i, v));
    }

    /// Edit: the field at `i` goes.
    #[inline]
    pub(crate) fn edit_drop(&mut self, i: usize) {
        self.edits.drop.push(i);
    }

    /// A field the original did not have.
    #[inline]
    pub(crate) fn add(&mut self, key: Text, v: Value) {
        self.added.push((key, v));
    }

    /// Whether the plan adds keys to the original.
    pub(crate) fn has_added(&self) -> bool {
        !self.added.is_empty()
    }

    /// Keys the plan adds to the original.
    pub(crate) fn added_keys(&self) -> impl Iterator<Item = &str> {
        self.added.iter().map(|(k, _)| k.as_str())
    }
}

/// How the walk ended.
pub(crate) enum Walked {
    /// The plan holds the record.
    Record,
    /// No field survived (Fluent Bit: "invalid table returned").
    Empty,
    /// The table needs the general conversion.
    Other,
}

/// Read the table at `t` against the `original` fields.
pub(crate) fn walk(
    st: &mut Stack,
    t: i32,
    origins: &Origins,
    original: &[(Text, Value)],
    int_keys: &[String],
    plan: &mut Plan,
) -> Walked {
    plan.start(original.len());
    let mut lookup = Lookup { origins, original, by_bytes: None };
    let mut fields = 0usize;
    let base = st.top();
    st.push_nil();
    while st.next(t) {
        match read_pair(st, &mut lookup, int_keys) {
            Pair::Original(first, slot) => {
                if let Some(s) = plan.slots.get_mut(first) {
                    *s = slot;
                    fields += 1;
                }
            }
            Pair::New(k, v) => {
                plan.added.push((k, v));
                fields += 1;
            }
            Pair::Dropped => {}
            Pair::Other => {
                st.set_top(base);
                return Walked::Other;
            }
        }
        // Pop the value, keep the key for `next`.
        st.set_top(-2);
    }
    if fields == 0 {
        Walked::Empty
    } else {
        Walked::Record
    }
}

/// Rebuild the record in `fields` (the original, as read by [`walk`]):
/// original keys in their first-occurrence order, then the new ones sorted.
/// Works in place: the field written at index `w` comes from a key at index
/// `first >= w` and a value at `last >= first`, which no earlier step has
/// touched.
pub(crate) fn materialize(plan: &mut Plan, fields: &mut Vec<(Text, Value)>) {
    if plan.edited {
        apply_edits(&mut plan.edits, fields);
        plan.added.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        fields.append(&mut plan.added);
        return;
    }
    let mut w = 0;
    for first in 0..fields.len() {
        let value = match plan.slots.get_mut(first).map(|s| std::mem::replace(s, Slot::Absent)) {
            None | Some(Slot::Absent) => continue,
            // Already in place (every field before it was kept too).
            Some(Slot::Keep(last)) if last == first && w == first => {
                w += 1;
                continue;
            }
            Some(Slot::New(v)) => v,
            Some(Slot::Keep(last)) => match fields.get_mut(last) {
                Some(f) => std::mem::replace(&mut f.1, Value::Null),
                None => continue,
            },
        };
        let key = match fields.get_mut(first) {
            Some(f) => std::mem::take(&mut f.0),
            None => continue,
        };
        if let Some(slot) = fields.get_mut(w) {
            *slot = (key, value);
            w += 1;
        }
    }
    fields.truncate(w);
    plan.added.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    fields.append(&mut plan.added);
}

fn apply_edits(e: &mut Edits, fields: &mut Vec<(Text, Value)>) {
    for &(first, last) in &e.moves {
        if let Some(v) = fields.get_mut(last).map(|f| std::mem::replace(&mut f.1, Value::Null)) {
            if let Some(f) = fields.get_mut(first) {
                f.1 = v;
            }
        }
    }
    for (i, v) in e.set.drain(..) {
        if let Some(f) = fields.get_mut(i) {
            f.1 = v;
        }
    }
    if !e.drop.is_empty() {
        let mut i = 0;
        fields.retain(|_| {
            let keep = !e.drop.contains(&i);
            i += 1;
            keep
        });
    }
}

/// One key/value pair of the returned table.
enum Pair {
    /// An original key (by first position) and its value.
    Original(usize, Slot),
    New(Text, Value),
    /// A value with no record equivalent (function, userdata, thread).
    Dropped,
    /// Not for the fast path.
    Other,
}

/// Finds original keys: by interned address, then (only when some key was
/// pushed uninterned) by bytes through an index built on first use.
struct Lookup<'a> {
    origins: &'a Origins,
    original: &'a [(Text, Value)],
    by_bytes: Option<HashMap<&'a str, Origin>>,
}

impl Lookup<'_> {
    fn find(&mut self, key: &[u8]) -> Option<Origin> {
        if let Some(o) = self.origins.find(key.as_ptr()) {
            return Some(o);
        }
        if !self.origins.has_uncached() {
            return None;
        }
        let original = self.original;
        let index = self.by_bytes.get_or_insert_with(|| {
            let mut m: HashMap<&str, Origin> = HashMap::with_capacity(original.len());
            for (i, (k, _)) in original.iter().enumerate() {
                m.entry(k.as_str()).and_modify(|o| o.last = i).or_insert(Origin { first: i, last: i });
            }
            m
        });
        std::str::from_utf8(key).ok().and_then(|k| index.get(k).copied())
    }
}

/// The pair on top of the stack (key at -2, value at -1).
fn read_pair(st: &Stack, lookup: &mut Lookup<'_>, int_keys: &[String]) -> Pair {
    let Some(key) = st.bytes(-2) else { return Pair::Other };
    let kind = st.kind(-1);
    let Some(o) = lookup.find(key) else {
        let name = lossy_text(key);
        return match scalar(st, -1, kind, &name, int_keys) {
            Scalar::Value(v) => Pair::New(name, v),
            Scalar::Dropped => Pair::Dropped,
            Scalar::Table => Pair::Other,
        };
    };
    if let (Some((_, Value::Str(old))), Some(new)) = (lookup.original.get(o.last), st.bytes_of(-1, kind)) {
        if old.as_bytes() == new {
            return Pair::Original(o.first, Slot::Keep(o.last));
        }
    }
    let name = lookup.original.get(o.first).map_or("", |(k, _)| k.as_str());
    match scalar(st, -1, kind, name, int_keys) {
        Scalar::Value(v) => Pair::Original(o.first, Slot::New(v)),
        Scalar::Dropped => Pair::Dropped,
        Scalar::Table => Pair::Other,
    }
}

pub(crate) enum Scalar {
    Value(Value),
    Dropped,
    Table,
}

/// The value at `idx` (of type `kind`) under `key`, if it is not a table.
pub(crate) fn scalar(st: &Stack, idx: i32, kind: Kind, key: &str, int_keys: &[String]) -> Scalar {
    Scalar::Value(match kind {
        Kind::String => Value::Str(st.bytes_of(idx, kind).map(lossy_text).unwrap_or_default()),
        Kind::Number => lua_number(st.number(idx), key, int_keys),
        Kind::Boolean => Value::Bool(st.boolean(idx)),
        Kind::LightUserData if st.light_userdata(idx).is_null() => Value::Null,
        Kind::Table => return Scalar::Table,
        _ => return Scalar::Dropped,
    })
}

/// An original value the script did not change, as Lua gives it back.
pub(crate) enum Unchanged {
    Same,
    Becomes(Value),
    /// A null without `enable_flb_null` (`nil`: the key is gone).
    Gone,
}

/// How `v` under `key` comes back unchanged: a number as a Lua number
/// ([`lua_number`]), a null as `nil` or `flb_null`. `None` for a table
/// (the general conversion reads those).
#[inline(always)]
pub(crate) fn unchanged(v: &Value, key: &Text, int_keys: &[String], flb_null: bool) -> Option<Unchanged> {
    let plain = int_keys.is_empty();
    let number = |n: Value| if n == *v { Unchanged::Same } else { Unchanged::Becomes(n) };
    Some(match v {
        Value::Str(_) | Value::Bool(_) => Unchanged::Same,
        // What `lua_number` gives back for these is the value itself.
        Value::Int(n) if plain && n.unsigned_abs() <= 1 << 53 => Unchanged::Same,
        Value::Float(f) if plain && f.fract() != 0.0 => Unchanged::Same,
        Value::Int(n) => number(lua_number(*n as f64, key, int_keys)),
        Value::Float(f) => number(lua_number(*f, key, int_keys)),
        Value::Null if flb_null => Unchanged::Same,
        Value::Null => Unchanged::Gone,
        Value::Array(_) | Value::Map(_) => return None,
    })
}

/// A Lua number under `key` as a record value: truncated for a
/// `type_int_key`, else [`number`].
#[inline]
pub(crate) fn lua_number(f: f64, key: &str, int_keys: &[String]) -> Value {
    if int_keys.iter().any(|k| k == key) {
        Value::Int(f as i64)
    } else {
        number(f)
    }
}
