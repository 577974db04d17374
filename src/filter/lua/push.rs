//! Records into Lua (reference §5.3, "msgpack → Lua"), on the raw stack:
//! null → `nil` (the key disappears, and removes an earlier duplicate, as
//! `lua_settable` does) or `flb_null` with `enable_flb_null`; numbers →
//! doubles; strings → strings; arrays → tables with keys 1..n (null
//! elements leave holes); maps → tables where a duplicate key's last value
//! wins.
//!
//! Every table is created with its final size; keys come from the
//! [`KeyCache`] (one array read of the anchor table instead of hashing and
//! interning the bytes again), and each top-level key's interned address is
//! noted in [`Origins`] for the way back.

use super::convert::{too_deep_message, MAX_DEPTH};
use super::keys::{Interned, KeyCache, Origins, KEY_CACHE_MAX, VALUE_CACHE_MAX_LEN};
use super::stack::{Kind, Stack};
use crate::record::{Text, Timestamp, Value};

/// Anchor table slots (the anchor table is reachable only from the
/// registry, so scripts cannot reach or free what it holds). Slot 1 is the
/// trampoline ([`super::stack::ENTRY_SLOT`]).
pub(crate) const FUNC: i32 = 2;
pub(crate) const SEC: i32 = 3;
pub(crate) const NSEC: i32 = 4;
pub(crate) const TAG: i32 = 5;
/// A returned table left for the general conversion, until it is read.
pub(crate) const PARKED: i32 = 6;
/// An empty Lua function, run to let LuaJIT finish a trace (see
/// `super::shapes`).
pub(crate) const SETTLE: i32 = 7;
/// Interned keys and their last values start here (see [`key_index`]).
const FIRST_KEY: i32 = 8;
/// Compiled shapes start after the last key slot (see `super::shapes`).
pub(crate) const FIRST_SHAPE: i32 = FIRST_KEY + 2 * KEY_CACHE_MAX as i32;

/// Anchor slot of interned key `slot`; its last value sits right after.
pub(crate) fn key_index(slot: u32) -> i32 {
    FIRST_KEY + 2 * slot as i32
}

/// Where record conversion writes: the anchor table's stack slot, the key
/// cache, and the record's origins.
pub(crate) struct Pusher<'a> {
    pub anchors: i32,
    pub keys: &'a mut KeyCache,
    pub origins: &'a mut Origins,
    /// The key cache slot of each top-level key (`u32::MAX`: not cached),
    /// for [`super::shapes`].
    pub seen: &'a mut Vec<u32>,
    pub flb_null: bool,
}

impl Pusher<'_> {
    /// Push the record's fields as a new table.
    pub(crate) fn record(&mut self, st: &mut Stack, fields: &[(Text, Value)]) -> Result<(), String> {
        self.origins.reset(fields.len());
        self.seen.clear();
        if !st.reserve(4) {
            return Err(stack_full());
        }
        st.new_table(0, fields.len());
        let t = st.top();
        for (pos, (k, v)) in fields.iter().enumerate() {
            let key = self.key(st, Some(pos), k);
            match key {
                Some(key) => self.origins.insert(key.ptr, pos),
                None => self.origins.mark_uncached(),
            }
            self.seen.push(key.map_or(u32::MAX, |k| k.slot));
            match (v, key) {
                (Value::Str(s), Some(key)) => self.remembered(st, key.slot, s.as_bytes()),
                _ => self.value(st, v, 1)?,
            }
            st.raw_set(t);
        }
        Ok(())
    }

    /// Push the values of scalar `fields` whose keys sit in key cache
    /// `slots` (a compiled shape's: its constructor takes them as
    /// arguments).
    #[inline]
    pub(crate) fn values(&mut self, st: &mut Stack, slots: &[u32], fields: &[(Text, Value)]) {
        for (slot, (_, v)) in slots.iter().zip(fields) {
            match v {
                Value::Str(s) => self.remembered(st, *slot, s.as_bytes()),
                // A scalar: no table to open, so it cannot fail.
                _ => {
                    let _ = self.value(st, v, 1);
                }
            }
        }
    }

    /// Push a key; returns its slot and interned address when it is cached.
    fn key(&mut self, st: &mut Stack, pos: Option<usize>, k: &str) -> Option<Interned> {
        if let Some(hit) = self.keys.find(pos, k) {
            st.raw_geti(self.anchors, key_index(hit.slot));
            return Some(hit);
        }
        let ptr = st.push_interned(k.as_bytes());
        let slot = self.keys.next_slot(k)?;
        st.push_copy(-1);
        st.raw_seti(self.anchors, key_index(slot));
        // Only now, after the Lua side (which may raise) is done.
        Some(self.keys.add(pos, k, ptr))
    }

    /// Push the string value of a cached key: the anchored string when the
    /// bytes are those of the last value, else a new one that is remembered.
    fn remembered(&mut self, st: &mut Stack, slot: u32, s: &[u8]) {
        let at = key_index(slot) + 1;
        let last = self.keys.last_value(slot);
        if last == Some(s) {
            st.raw_geti(self.anchors, at);
            if st.kind(-1) == Kind::String {
                return;
            }
            st.set_top(-2);
        }
        let forget = last.is_some();
        st.push_bytes(s);
        if s.len() <= VALUE_CACHE_MAX_LEN {
            st.push_copy(-1);
            st.raw_seti(self.anchors, at);
            self.keys.set_last_value(slot, Some(s));
        } else if forget {
            // Too long to keep: release the previous one.
            st.push_nil();
            st.raw_seti(self.anchors, at);
            self.keys.set_last_value(slot, None);
        }
    }

    /// Push one value; `depth` is the nesting level of a table it creates.
    fn value(&mut self, st: &mut Stack, v: &Value, depth: usize) -> Result<(), String> {
        match v {
            Value::Str(s) => {
                st.push_bytes(s.as_bytes());
            }
            Value::Int(i) => st.push_number(*i as f64),
            Value::Float(f) => st.push_number(*f),
            Value::Bool(b) => st.push_bool(*b),
            Value::Null if self.flb_null => st.push_null(),
            Value::Null => st.push_nil(),
            Value::Array(items) => {
                self.open(st, depth)?;
                st.new_table(items.len(), 0);
                let t = st.top();
                for (i, item) in items.iter().enumerate() {
                    self.value(st, item, depth + 1)?;
                    if st.kind(-1) == Kind::Nil {
                        st.set_top(-2);
                    } else {
                        st.raw_seti(t, i32::try_from(i + 1).map_err(|_| "array too long for Lua".to_owned())?);
                    }
                }
            }
            Value::Map(m) => {
                self.open(st, depth)?;
                st.new_table(0, m.len());
                let t = st.top();
                for (k, v) in m.iter() {
                    self.key(st, None, k);
                    self.value(st, v, depth + 1)?;
                    st.raw_set(t);
                }
            }
        }
        Ok(())
    }

    /// Checks before creating a nested table.
    fn open(&self, st: &mut Stack, depth: usize) -> Result<(), String> {
        if depth >= MAX_DEPTH {
            return Err(too_deep_message());
        }
        if !st.reserve(4) {
            return Err(stack_full());
        }
        Ok(())
    }
}

/// The record's time as Lua sees it: a double, or `{sec=, nsec=}`.
pub(crate) fn time(st: &mut Stack, anchors: i32, t: Timestamp, as_table: bool) {
    if !as_table {
        st.push_number(t.as_f64());
        return;
    }
    st.new_table(0, 2);
    let table = st.top();
    st.raw_geti(anchors, SEC);
    st.push_number(t.secs as f64);
    st.raw_set(table);
    st.raw_geti(anchors, NSEC);
    st.push_number(f64::from(t.nanos));
    st.raw_set(table);
}

fn stack_full() -> String {
    "Lua stack exhausted".to_owned()
}
