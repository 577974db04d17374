//! Records of a known shape cross through compiled Lua code.
//!
//! A source sends its records with the same keys in the same order (nginx's
//! `log_format` fixes them). For such a *shape* the filter compiles two
//! small Lua functions once:
//! - a constructor, `function(a1, …, an) return {["k1"]=a1, …, ["e1"]=nil} end`.
//!   LuaJIT builds that table by copying a template that already holds every
//!   key (its `TDUP` bytecode) and storing each value into its slot, instead
//!   of hashing and inserting n keys one C API call at a time. Keys the
//!   script added to earlier records of the shape (`e1`, …) are in the
//!   template without a value, so setting them again does not grow the table.
//! - a checker, `function(t, a1, …, an)`, run when the script returns that
//!   same table with code 1 or 2. It counts the table's keys and compares
//!   each key's value with the one passed in (strings are interned, so an
//!   unchanged string is the same object), and returns a bitmask of the
//!   changed keys, the key count, and the values of the learned added keys.
//!   Keys outside the shape are those the count has beyond the shape's
//!   present keys and the learned ones. The way back then reads only the
//!   changed and added values; unchanged strings are moved from the
//!   original record, and when nothing changed the original fields are
//!   kept and only edited (a duplicated key's last value moved, numbers as
//!   Lua returns them, nulls dropped unless `enable_flb_null`).
//!
//! The checker's call is laid out on the stack before the script runs (see
//! `crossing.rs`). Like the constructor (and everything outside the
//! script's own call, see `limits.rs`) it runs without the count hook,
//! which is safe because it runs no script code: since it reads a table without a metatable, and `==` between a
//! script's value and a scalar original calls no metamethod (Lua 5.1 only
//! asks `__eq` of two tables or two userdata, and LuaJIT is built without
//! the FFI, whose cdata would compare through theirs); and it allocates
//! nothing, so no collector step runs inside it.
//!
//! Both are compiled to machine code by LuaJIT's trace compiler, which is
//! otherwise off (see `vm.rs`): the first time a shape is used, its
//! constructor, and the first time its checker vouches, the checker, run
//! back to back on copies of the real call with the compiler on, past
//! LuaJIT's threshold for a hot function, and the compiler is switched off
//! again (`warm_up` in `crossing.rs`); the compiled code keeps running. Back
//! to back, because switching the compiler on resets LuaJIT's hot counters;
//! on copies of the real call, so the code is compiled for the value types
//! and the table the script really returns. No script code can be compiled
//! on the way: neither function calls anything but the builtin `next`, the
//! checker only runs on a table without a metatable, a `__gc` finalizer run
//! meanwhile is never compiled (LuaJIT starts no trace inside one), and a
//! Lua error that escapes with the compiler on switches it off before
//! anything else runs (`Entry::call`). A test records where every trace
//! starts. Measured with `examples/bench/instructions.sh`, a-sidecar
//! 33,453 → 31,788 instructions a record.
//!
//! What the checker cannot vouch for goes through the general walk of
//! [`super::reuse`], with the same result: another table returned, a
//! metatable set on the record (its `__index` must not run), keys beyond the
//! learned ones (learned for the next record, up to [`MAX_EXTRAS`]), a
//! changed value that is a table, or an instruction budget that ran out
//! inside the script. A differential test
//! runs both ways over random records and scripts.
//!
//! A shape is 1..=[`MAX_FIELDS`] keys (at most [`MAX_KEYS`] distinct ones),
//! all in the key cache, with scalar values only (a nested table can be
//! changed in place, which no comparison would see). A duplicated key is
//! set in order in the constructor, so its last value wins as in the
//! general push, and the checker compares it with that last value. A shape
//! is compiled when two records in a row have it; at most [`MAX_SHAPES`]
//! are kept (the least recently used is replaced) and at most
//! [`MAX_COMPILES`] compiled per VM, so a source whose shape keeps changing
//! costs one comparison per record, not a compile. A shape whose checker
//! gives up [`MAX_MISSES`] times in a row is retired: its records go the
//! general way, and neither it nor a shape with too many distinct keys is
//! compiled again.

use mlua::{Function, Lua, Table};

use super::keys::KeyCache;
use super::push::FIRST_SHAPE;
use crate::record::{Text, Value};
use crate::swar::same;

/// Distinct keys of a shape: the checker's bitmask is a Lua number, exact
/// below 2^53.
pub(crate) const MAX_KEYS: usize = 48;
/// Fields of a shape (the constructor's parameters).
pub(crate) const MAX_FIELDS: usize = 96;
/// Added keys a shape learns.
pub(crate) const MAX_EXTRAS: usize = 8;
const MAX_SHAPES: usize = 8;
const MAX_COMPILES: u32 = 64;
const MAX_MISSES: u32 = 16;

/// One compiled shape.
pub(crate) struct Shape {
    pub keys: Vec<Box<str>>,
    /// Key cache slot of each key.
    pub slots: Vec<u32>,
    /// First and last position of each distinct key, in first-position
    /// order (the checker's bit order).
    pub distinct: Vec<(usize, usize)>,
    /// Positions of a key seen before (a duplicate's later occurrences).
    pub later: Vec<usize>,
    /// Keys the script added before, in the checker's result order.
    pub extras: Vec<Box<str>>,
    /// Anchor slot of the constructor; the checker sits right after.
    pub anchor: i32,
    /// Unique among the VM's shapes: the number of its compile.
    pub id: u32,
    used: u64,
    misses: u32,
    /// The constructor, the checker, is still to be warmed up (see the
    /// module doc).
    cold_ctor: bool,
    cold_check: bool,
}

impl Shape {
    fn matches(&self, fields: &[(Text, Value)]) -> bool {
        self.keys.len() == fields.len()
            && self.keys.iter().zip(fields).all(|(k, (fk, v))| scalar(v) && same(k.as_bytes(), fk.as_bytes()))
    }

    pub(crate) fn checker_anchor(&self) -> i32 {
        self.anchor + 1
    }
}

/// The shapes of one VM.
#[derive(Default)]
pub(crate) struct Shapes {
    shapes: Vec<Shape>,
    /// Key slots of the last record that had no shape.
    candidate: Vec<u32>,
    /// Key slots of the last shape refused (too many distinct keys).
    refused: Vec<u32>,
    last: usize,
    tick: u64,
    compiles: u32,
    off: bool,
    /// Added keys to compile into a shape after this call.
    pending: Option<(usize, Vec<Box<str>>)>,
    /// Records the checker vouched for (for tests).
    pub checked: u64,
}

#[cfg(test)]
impl Shapes {
    pub(crate) fn compiles(&self) -> u32 {
        self.compiles
    }
}

impl Shapes {
    /// Turn the shaped crossing off (tests compare both ways).
    #[cfg(test)]
    pub(crate) fn disable(&mut self) {
        self.off = true;
    }

    /// The live shape of `fields`, if one is compiled.
    pub(crate) fn find(&mut self, fields: &[(Text, Value)]) -> Option<usize> {
        if self.shapes.is_empty() {
            return None;
        }
        let found = if self.shapes.get(self.last).is_some_and(|s| s.matches(fields)) {
            Some(self.last)
        } else {
            self.shapes.iter().position(|s| s.matches(fields))
        }?;
        self.last = found;
        self.tick += 1;
        let shape = self.shapes.get_mut(found)?;
        shape.used = self.tick;
        (shape.misses < MAX_MISSES).then_some(found)
    }

    pub(crate) fn get(&self, i: usize) -> Option<&Shape> {
        self.shapes.get(i)
    }

    /// Whether shape `i`'s constructor is still to be warmed up (once).
    pub(crate) fn warm_ctor(&mut self, i: usize) -> bool {
        self.shapes.get_mut(i).is_some_and(|s| std::mem::take(&mut s.cold_ctor))
    }

    /// Whether shape `i`'s checker is still to be warmed up (once).
    pub(crate) fn warm_check(&mut self, i: usize) -> bool {
        self.shapes.get_mut(i).is_some_and(|s| std::mem::take(&mut s.cold_check))
    }

    /// After a record crossed without a shape, with the key slots `seen`:
    /// compile its shape when the record before had the same one.
    pub(crate) fn observe(
        &mut self,
        lua: &Lua,
        anchors: &Table,
        keys: &KeyCache,
        seen: &[u32],
        fields: &[(Text, Value)],
    ) -> mlua::Result<()> {
        if self.off || self.compiles >= MAX_COMPILES {
            return Ok(());
        }
        let eligible = !seen.is_empty()
            && seen.len() <= MAX_FIELDS
            && seen.len() == fields.len()
            && !seen.contains(&u32::MAX)
            && fields.iter().all(|(_, v)| scalar(v));
        if !eligible {
            self.candidate.clear();
            return Ok(());
        }
        if self.candidate != seen {
            self.candidate.clear();
            self.candidate.extend_from_slice(seen);
            return Ok(());
        }
        self.candidate.clear();
        // Compiled already (and retired, or `find` would have found it), or
        // refused: not again.
        if self.refused == seen || self.shapes.iter().any(|s| s.slots == seen) {
            return Ok(());
        }
        if distinct(seen).len() > MAX_KEYS {
            self.refused.clear();
            self.refused.extend_from_slice(seen);
            return Ok(());
        }
        let Some(names) = seen.iter().map(|&s| keys.key(s).map(Box::from)).collect::<Option<Vec<Box<str>>>>() else {
            return Ok(());
        };
        let at = if self.shapes.len() < MAX_SHAPES {
            self.shapes.len()
        } else {
            self.shapes.iter().enumerate().min_by_key(|(_, s)| s.used).map_or(0, |(i, _)| i)
        };
        self.compile(lua, anchors, at, names, seen.to_vec(), Vec::new())
    }

    /// The checker of shape `i` gave up; `added`: keys the general walk
    /// found added (learned for the next record when there is room).
    pub(crate) fn missed<'a>(&mut self, i: usize, added: impl Iterator<Item = &'a str>) {
        let Some(shape) = self.shapes.get_mut(i) else { return };
        shape.misses += 1;
        let mut extras = shape.extras.clone();
        for k in added {
            // A key with U+FFFD may stand for other bytes in Lua.
            if !extras.iter().any(|e| **e == *k) && !k.contains('\u{FFFD}') && !shape.keys.iter().any(|e| **e == *k) {
                extras.push(k.into());
            }
        }
        if extras.len() > shape.extras.len() && extras.len() <= MAX_EXTRAS {
            self.pending = Some((i, extras));
        }
    }

    /// The checker of shape `i` vouched for a record.
    pub(crate) fn hit(&mut self, i: usize) {
        self.checked += 1;
        if let Some(s) = self.shapes.get_mut(i) {
            s.misses = 0;
        }
    }

    /// Compile what [`Shapes::missed`] learned.
    pub(crate) fn learn(&mut self, lua: &Lua, anchors: &Table) -> mlua::Result<()> {
        let Some((i, extras)) = self.pending.take() else { return Ok(()) };
        if self.compiles >= MAX_COMPILES {
            return Ok(());
        }
        let Some(s) = self.shapes.get(i) else { return Ok(()) };
        let (keys, slots) = (s.keys.clone(), s.slots.clone());
        self.compile(lua, anchors, i, keys, slots, extras)
    }

    fn compile(
        &mut self,
        lua: &Lua,
        anchors: &Table,
        at: usize,
        keys: Vec<Box<str>>,
        slots: Vec<u32>,
        extras: Vec<Box<str>>,
    ) -> mlua::Result<()> {
        let distinct = distinct(&slots);
        if distinct.len() > MAX_KEYS {
            return Ok(());
        }
        self.compiles += 1;
        let next: Function = lua.named_registry_value(super::vm::NEXT_KEY)?;
        let (ctor, check): (Function, Function) =
            lua.load(source(&keys, &distinct, &extras)).set_name("=gatelog shape").call(next)?;
        let anchor = FIRST_SHAPE + 2 * at as i32;
        anchors.raw_set(anchor, ctor)?;
        anchors.raw_set(anchor + 1, check)?;
        let later = (0..slots.len()).filter(|&i| slots[..i].contains(&slots[i])).collect();
        let shape = Shape {
            keys,
            slots,
            distinct,
            later,
            extras,
            anchor,
            id: self.compiles,
            used: self.tick,
            misses: 0,
            cold_ctor: true,
            cold_check: true,
        };
        match self.shapes.get_mut(at) {
            Some(s) => *s = shape,
            None => self.shapes.push(shape),
        }
        Ok(())
    }
}

/// First and last position of each distinct slot, by first position.
fn distinct(slots: &[u32]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (i, s) in slots.iter().enumerate() {
        match out.iter_mut().find(|(first, _)| slots.get(*first) == Some(s)) {
            Some(d) => d.1 = i,
            None => out.push((i, i)),
        }
    }
    out
}

fn scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Map(_))
}

/// The Lua chunk returning the constructor and the checker (see the module
/// doc). Keys are written as decimal-escaped string literals.
fn source(keys: &[Box<str>], distinct: &[(usize, usize)], extras: &[Box<str>]) -> String {
    use std::fmt::Write;
    let args: Vec<String> = (1..=keys.len()).map(|i| format!("a{i}")).collect();
    let args = args.join(",");
    let mut s = String::from("local next = ...\n");
    let _ = write!(s, "local function ctor({args}) return {{");
    for (i, k) in keys.iter().enumerate() {
        let _ = write!(s, "[{}]=a{},", literal(k), i + 1);
    }
    for e in extras {
        let _ = write!(s, "[{}]=nil,", literal(e));
    }
    s.push_str("} end\n");
    // The key count first, then one chain of comparisons for the usual
    // record where no value changed, else the bitmask.
    let _ = writeln!(s, "local function check(t,{args})\nlocal c=0 for _ in next,t do c=c+1 end");
    let mut extras_out = String::new();
    for e in extras {
        let _ = write!(extras_out, ",t[{}]", literal(e));
    }
    let compare = |(first, last): (usize, usize), op: &str| {
        format!("t[{}]{op}a{}", literal(keys.get(first).map_or("", |k| &**k)), last + 1)
    };
    let same: Vec<String> = distinct.iter().map(|d| compare(*d, "==")).collect();
    let _ = writeln!(s, "if {} then return 0,c{extras_out} end\nlocal m=0", same.join(" and "));
    for (bit, d) in distinct.iter().enumerate() {
        let _ = writeln!(s, "if {} then m=m+{} end", compare(*d, "~="), 1u64 << bit);
    }
    let _ = write!(s, "return m,c{extras_out}");
    s.push_str(" end\nreturn ctor,check\n");
    s
}

/// A Lua string literal for `k`: letters, digits and `_` as they are,
/// every other byte as a three-digit decimal escape.
fn literal(k: &str) -> String {
    let mut s = String::with_capacity(k.len() + 2);
    s.push('"');
    for b in k.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\{b:03}"));
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_code_handles_any_key_bytes() {
        let lua = super::super::vm::new_vm().unwrap();
        let keys: Vec<Box<str>> = vec!["a".into(), "é \"\\\n]]".into(), "1x".into(), "a".into()];
        let extras: Vec<Box<str>> = vec!["new key".into()];
        let next: Function = lua.named_registry_value(super::super::vm::NEXT_KEY).unwrap();
        let d = distinct(&[7, 8, 9, 7]);
        assert_eq!(d, [(0, 3), (1, 1), (2, 2)]);
        let (ctor, check): (Function, Function) = lua.load(source(&keys, &d, &extras)).call(next).unwrap();
        let t: Table = ctor.call(("x", "y", 3, "last")).unwrap();
        assert_eq!(t.get::<String>("é \"\\\n]]").unwrap(), "y");
        assert_eq!(t.get::<i64>("1x").unwrap(), 3);
        // A duplicated key: the last value wins.
        assert_eq!(t.get::<String>("a").unwrap(), "last");
        // Unchanged: nothing changed, no extra key.
        let (m, count, e): (f64, f64, Option<String>) = check.call((&t, "x", "y", 3, "last")).unwrap();
        assert_eq!((m, count, e), (0.0, 3.0, None));
        // Key 2 changed, key 3 removed, the learned key and an unknown one added.
        t.set("é \"\\\n]]", "z").unwrap();
        t.set("1x", mlua::Value::Nil).unwrap();
        t.set("new key", "n").unwrap();
        t.set("other", 1).unwrap();
        let (m, count, e): (f64, f64, Option<String>) = check.call((&t, "x", "y", 3, "last")).unwrap();
        assert_eq!((m, count, e.as_deref()), (6.0, 4.0, Some("n")));
    }

    #[test]
    fn literals_escape_everything_but_word_bytes() {
        assert_eq!(literal("a_1"), "\"a_1\"");
        assert_eq!(literal("a.b"), "\"a\\046b\"");
        assert_eq!(literal("\n1"), "\"\\0101\"");
    }
}
