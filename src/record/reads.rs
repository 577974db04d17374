//! Which top-level fields of a record the configured stages read: each
//! filter and output declares it ([`Reads`]), the plan takes the union, and
//! when that union is a finite set the JSON and rfc3164 parsers build only
//! those keys ([`KeySet`]); every other JSON value is checked for syntax
//! and skipped, never built. The output is the same, because nothing
//! downstream looks at the fields that were skipped.
//!
//! The union is taken over every filter and every output, whatever their
//! Match: records re-tagged by rewrite_tag run the whole chain again, and a
//! tag a Match does not select today may be built from record data
//! tomorrow. One stage that reads the whole record (a Lua filter whose
//! function the VM must run, a JSON or CSV output, stdout) makes it
//! [`Reads::All`], and everything is decoded. A Lua function gatelog runs
//! itself (`filter/lua/native.rs`) reads the fields it reads and sets.

use std::collections::BTreeSet;

use crate::swar::same;

/// The top-level keys a stage reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reads {
    /// The whole record (or a part no key list can describe).
    All,
    /// Only these keys (all their occurrences, whole values).
    Keys(BTreeSet<String>),
}

impl Reads {
    /// Reads no field (e.g. the `null` output).
    pub fn nothing() -> Reads {
        Reads::Keys(BTreeSet::new())
    }

    /// Reads exactly these keys.
    pub fn keys<I: IntoIterator<Item = S>, S: Into<String>>(keys: I) -> Reads {
        Reads::Keys(keys.into_iter().map(Into::into).collect())
    }

    /// What two stages read together.
    pub fn union(self, other: Reads) -> Reads {
        match (self, other) {
            (Reads::Keys(mut a), Reads::Keys(b)) => {
                a.extend(b);
                Reads::Keys(a)
            }
            _ => Reads::All,
        }
    }
}

/// The keys a parser keeps (or a template prints), looked up by length
/// first: a record key is compared with at most the one or two wanted keys
/// of its length. Each distinct key has a slot, its place in the order the
/// keys were first given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySet {
    /// `by_len[n]`: the wanted keys of `n` bytes, with their slots.
    by_len: Vec<Vec<(Box<[u8]>, usize)>>,
    len: usize,
}

impl KeySet {
    pub fn new<'a, I: IntoIterator<Item = &'a str>>(keys: I) -> KeySet {
        let mut by_len: Vec<Vec<(Box<[u8]>, usize)>> = Vec::new();
        let mut len = 0;
        for k in keys {
            let n = k.len();
            if by_len.len() <= n {
                by_len.resize(n + 1, Vec::new());
            }
            if !by_len[n].iter().any(|(w, _)| **w == *k.as_bytes()) {
                by_len[n].push((k.as_bytes().into(), len));
                len += 1;
            }
        }
        KeySet { by_len, len }
    }

    #[inline(always)]
    pub fn contains(&self, key: &[u8]) -> bool {
        self.by_len.get(key.len()).is_some_and(|c| c.iter().any(|(w, _)| same(w, key)))
    }

    /// The key's slot (`0..len()`), if the set holds it.
    #[inline(always)]
    pub fn slot(&self, key: &[u8]) -> Option<usize> {
        for (w, s) in self.by_len.get(key.len())? {
            if same(w, key) {
                return Some(*s);
            }
        }
        None
    }

    /// How many keys (and slots).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The keys, sorted (for the start-up log and tests).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> =
            self.by_len.iter().flatten().map(|(k, _)| String::from_utf8_lossy(k).into_owned()).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_is_all_as_soon_as_one_stage_reads_everything() {
        let a = Reads::keys(["uri", "status"]);
        assert_eq!(a.clone().union(Reads::keys(["vhost"])), Reads::keys(["status", "uri", "vhost"]));
        assert_eq!(a.clone().union(Reads::nothing()), a);
        assert_eq!(a.clone().union(Reads::All), Reads::All);
        assert_eq!(Reads::All.union(a), Reads::All);
    }

    #[test]
    fn key_set_matches_whole_keys_only() {
        let k = KeySet::new(["uri", "status", "", "user_agent", "uri"]);
        for yes in ["uri", "status", "", "user_agent"] {
            assert!(k.contains(yes.as_bytes()), "{yes}");
        }
        for no in ["ur", "urI", "uri ", "statu", "user_agent_", "x", "a_very_long_key_beyond_every_wanted_one"] {
            assert!(!k.contains(no.as_bytes()), "{no}");
        }
        assert_eq!(k.names(), ["", "status", "uri", "user_agent"]);
        // Slots in the order the keys were first given, duplicates sharing one.
        let slots: Vec<_> = ["uri", "status", "", "user_agent", "x"].iter().map(|w| k.slot(w.as_bytes())).collect();
        assert_eq!(slots, [Some(0), Some(1), Some(2), Some(3), None]);
        assert_eq!(k.len(), 4);
        // Long keys.
        let long = "k".repeat(70);
        let k = KeySet::new([long.as_str(), "uri"]);
        assert!(k.contains(long.as_bytes()) && k.contains(b"uri"));
        assert!(!k.contains("k".repeat(69).as_bytes()) && !k.contains("k".repeat(71).as_bytes()));
    }

    #[test]
    fn inline_comparison_agrees_with_slice_equality() {
        let mut next = crate::testing::xorshift(0x0123_4567_89AB_CDEF);
        for n in 0..40 {
            for _ in 0..2_000 {
                let a: Vec<u8> = (0..n).map(|_| b'a' + (next() % 3) as u8).collect();
                let mut b = a.clone();
                if n > 0 && next() % 2 == 0 {
                    let i = (next() as usize) % n;
                    b[i] = b'a' + (next() % 3) as u8;
                }
                assert_eq!(same(&a, &b), a == b, "{a:?} {b:?}");
            }
        }
    }
}
