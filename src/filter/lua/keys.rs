//! Record keys on both sides of the crossing.
//!
//! [`KeyCache`]: short keys are interned once per VM as Lua strings kept in
//! the filter's anchor table (so the GC never frees them), bounded to
//! [`KEY_CACHE_MAX`] entries, first come first kept. A lookup first tries the
//! slot the previous record used at the same position (records of one source
//! share their key order, so this is one short `memcmp`), then a hash map
//! with a small FxHash-style hasher. The hasher is not DoS-resistant; the
//! bound on the cache keeps a crafted collision set to a few hundred probes.
//! Each entry also remembers the last short string value pushed under its
//! key (bytes here, the Lua string in the anchor table beside the key):
//! `method`, `vhost`, `protocol`, `user_agent` repeat from one record to the
//! next, and a `memcmp` is cheaper than LuaJIT hashing and interning them
//! again.
//!
//! [`Origins`]: for one record, where each original key sits (its first and
//! last position), indexed by the address of its interned Lua string. LuaJIT
//! interns every string and the cached ones are anchored, so while the call
//! runs a key of the returned table is an original cached key exactly when
//! its address is that key's address: no hashing or comparing of bytes.
//! Uncached keys (too long, or the cache is full) are looked up by bytes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// At most this many interned keys per VM.
pub(crate) const KEY_CACHE_MAX: usize = 512;
/// Longer keys are not interned.
pub(crate) const KEY_CACHE_MAX_LEN: usize = 64;
/// Longer values are not remembered (bounds the cache to 512 × 256 bytes).
pub(crate) const VALUE_CACHE_MAX_LEN: usize = 256;

/// Multiplicative word-at-a-time hash (the FxHash scheme): a few cycles for
/// a short key.
#[derive(Default)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
        // Zero padding alone would make "a" and "a\0" collide.
        self.add(bytes.len() as u64);
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;

struct Entry {
    key: Box<str>,
    /// Address of the interned Lua string's bytes.
    ptr: *const u8,
    /// The bytes of the value string anchored beside the key, if any.
    value: Vec<u8>,
    has_value: bool,
}

/// Interned key strings of one VM (slot `s` and its last value live in the
/// anchor table, see `super::push::key_index`).
#[derive(Default)]
pub(crate) struct KeyCache {
    entries: Vec<Entry>,
    index: HashMap<Box<str>, u32, FxBuild>,
    /// Slot used at each top-level position by the previous record.
    predicted: Vec<u32>,
}

/// An interned key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interned {
    pub slot: u32,
    pub ptr: *const u8,
}

impl KeyCache {
    /// The interned string for `key`; `pos` is its top-level position (for
    /// the prediction), `None` inside nested maps.
    pub(crate) fn find(&mut self, pos: Option<usize>, key: &str) -> Option<Interned> {
        let predicted = pos.and_then(|p| self.predicted.get(p)).copied();
        if let Some(slot) = predicted {
            if let Some(e) = self.entries.get(slot as usize) {
                if *e.key == *key {
                    return Some(Interned { slot, ptr: e.ptr });
                }
            }
        }
        let slot = *self.index.get(key)?;
        let ptr = self.entries.get(slot as usize)?.ptr;
        if let Some(p) = pos {
            self.predict(p, slot);
        }
        Some(Interned { slot, ptr })
    }

    /// The slot `key` would get, if it may be interned.
    pub(crate) fn next_slot(&self, key: &str) -> Option<u32> {
        (key.len() <= KEY_CACHE_MAX_LEN && self.entries.len() < KEY_CACHE_MAX).then_some(self.entries.len() as u32)
    }

    /// Record a key interned at `next_slot` (after the Lua side anchored it).
    pub(crate) fn add(&mut self, pos: Option<usize>, key: &str, ptr: *const u8) -> Interned {
        let slot = self.entries.len() as u32;
        self.entries.push(Entry { key: key.into(), ptr, value: Vec::new(), has_value: false });
        self.index.insert(key.into(), slot);
        if let Some(p) = pos {
            self.predict(p, slot);
        }
        Interned { slot, ptr }
    }

    /// The interned address of the key in `slot` (null if there is none).
    pub(crate) fn ptr(&self, slot: u32) -> *const u8 {
        self.entries.get(slot as usize).map_or(std::ptr::null(), |e| e.ptr)
    }

    /// The key in `slot`.
    pub(crate) fn key(&self, slot: u32) -> Option<&str> {
        self.entries.get(slot as usize).map(|e| &*e.key)
    }

    /// The last value remembered for `slot`.
    pub(crate) fn last_value(&self, slot: u32) -> Option<&[u8]> {
        self.entries.get(slot as usize).filter(|e| e.has_value).map(|e| e.value.as_slice())
    }

    /// Remember `value` for `slot` (after the Lua side anchored it); `None`
    /// forgets.
    pub(crate) fn set_last_value(&mut self, slot: u32, value: Option<&[u8]>) {
        if let Some(e) = self.entries.get_mut(slot as usize) {
            e.value.clear();
            e.has_value = value.is_some();
            e.value.extend_from_slice(value.unwrap_or_default());
        }
    }

    fn predict(&mut self, pos: usize, slot: u32) {
        if pos >= self.predicted.len() {
            if pos >= KEY_CACHE_MAX {
                return;
            }
            self.predicted.resize(pos + 1, u32::MAX);
        }
        if let Some(p) = self.predicted.get_mut(pos) {
            *p = slot;
        }
    }
}

/// First and last position of an original key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    pub first: usize,
    pub last: usize,
}

/// Original keys of the record in flight, by interned address; reused
/// between records (no allocation once warm).
#[derive(Default)]
pub(crate) struct Origins {
    /// Open addressing, linear probing; `ptr` 0 = empty.
    table: Vec<(usize, Origin)>,
    mask: usize,
    /// Whether some key was pushed without interning.
    uncached: bool,
}

impl Origins {
    /// Start a record of `n` fields.
    pub(crate) fn reset(&mut self, n: usize) {
        let cap = (n * 2).next_power_of_two().max(16);
        self.table.clear();
        self.table.resize(cap, (0, Origin { first: 0, last: 0 }));
        self.mask = cap - 1;
        self.uncached = false;
    }

    fn slot(&self, ptr: usize) -> usize {
        // Fibonacci hashing of the address (its low bits are alignment).
        (ptr.wrapping_mul(0x9e37_79b9_7f4a_7c15_u64 as usize) >> 20) & self.mask
    }

    /// The key at `pos` is the interned string at `ptr`.
    pub(crate) fn insert(&mut self, ptr: *const u8, pos: usize) {
        let ptr = ptr as usize;
        if ptr == 0 || self.table.is_empty() {
            return;
        }
        let mut i = self.slot(ptr);
        loop {
            let Some(e) = self.table.get_mut(i) else { return };
            if e.0 == ptr {
                e.1.last = pos;
                return;
            }
            if e.0 == 0 {
                *e = (ptr, Origin { first: pos, last: pos });
                return;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// A key was pushed without interning: lookups must fall back to bytes.
    pub(crate) fn mark_uncached(&mut self) {
        self.uncached = true;
    }

    pub(crate) fn has_uncached(&self) -> bool {
        self.uncached
    }

    /// The original key interned at `ptr`.
    pub(crate) fn find(&self, ptr: *const u8) -> Option<Origin> {
        let ptr = ptr as usize;
        if ptr == 0 || self.table.is_empty() {
            return None;
        }
        let mut i = self.slot(ptr);
        loop {
            let e = self.table.get(i)?;
            if e.0 == ptr {
                return Some(e.1);
            }
            if e.0 == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_predicts_by_position_and_falls_back_to_the_map() {
        let mut c = KeyCache::default();
        assert_eq!(c.find(Some(0), "a"), None);
        assert_eq!(c.next_slot("a"), Some(0));
        let a = c.add(Some(0), "a", 0x1000 as *const u8);
        let b = c.add(Some(1), "b", 0x2000 as *const u8);
        assert_eq!(c.find(Some(0), "a"), Some(a));
        // Swapped positions: found through the map, prediction updated.
        assert_eq!(c.find(Some(0), "b"), Some(b));
        assert_eq!(c.predicted[0], b.slot);
        assert_eq!(c.find(None, "a"), Some(a));
        assert_eq!(c.next_slot(&"x".repeat(KEY_CACHE_MAX_LEN + 1)), None);
        // An empty value is a value, not "none".
        assert_eq!(c.last_value(a.slot), None);
        c.set_last_value(a.slot, Some(b""));
        assert_eq!(c.last_value(a.slot), Some(&b""[..]));
        c.set_last_value(a.slot, Some(b"GET"));
        assert_eq!(c.last_value(a.slot), Some(&b"GET"[..]));
        c.set_last_value(a.slot, None);
        assert_eq!(c.last_value(a.slot), None);
    }

    #[test]
    fn origins_track_first_and_last_position() {
        let mut o = Origins::default();
        o.reset(3);
        let (p, q) = (0x10 as *const u8, 0x20 as *const u8);
        o.insert(p, 0);
        o.insert(q, 1);
        o.insert(p, 2);
        assert_eq!(o.find(p), Some(Origin { first: 0, last: 2 }));
        assert_eq!(o.find(q), Some(Origin { first: 1, last: 1 }));
        assert_eq!(o.find(0x30 as *const u8), None);
        // Many keys that collide in the low bits still resolve.
        o.reset(100);
        for i in 0..100 {
            o.insert((0x1000 + i * 4096) as *const u8, i);
        }
        for i in 0..100 {
            assert_eq!(o.find((0x1000 + i * 4096) as *const u8), Some(Origin { first: i, last: i }));
        }
    }

    #[test]
    fn fx_hash_distinguishes_lengths_and_bytes() {
        let h = |s: &str| {
            let mut x = FxHasher::default();
            std::hash::Hash::hash(s, &mut x);
            x.finish()
        };
        assert_ne!(h("status"), h("statuz"));
        assert_ne!(h("a"), h("a\0"));
        assert_eq!(h("request_time"), h("request_time"));
    }
}
