//! One log record as it flows through the pipeline: a tag, an event time and
//! an ordered list of fields.
//!
//! Invariants: field order is insertion order (users expect nginx's field
//! order in their output) and duplicate keys are allowed, exactly as Fluent
//! Bit's msgpack maps allow them (the `parser` filter with `Reserve_Data`
//! produces two `time` keys on the sidecar pipeline). Which duplicate wins is
//! decided by the reader: templates take the first, record accessors the last.

use std::sync::Arc;

pub mod accessor;
pub mod reads;
mod recent;

pub use recent::RecentTags;

/// Event time: seconds since the Unix epoch plus nanoseconds (0..1e9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub const fn new(secs: i64, nanos: u32) -> Self {
        Timestamp { secs, nanos }
    }

    /// The wall clock now.
    pub fn now() -> Self {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp::new(d.as_secs() as i64, d.subsec_nanos()),
            Err(_) => Timestamp::default(),
        }
    }

    /// Seconds as a float, as Fluent Bit hands it to Lua and prints `{time}`.
    pub fn as_f64(self) -> f64 {
        self.secs as f64 + self.nanos as f64 / 1e9
    }

    /// Build from float seconds (Lua's view of time); sub-microsecond
    /// precision is rounded to the nearest microsecond like Fluent Bit.
    pub fn from_f64(v: f64) -> Self {
        if !v.is_finite() {
            return Timestamp::default();
        }
        let secs = v.floor();
        let mut nanos = ((v - secs) * 1e6).round() as i64 * 1000;
        let mut secs = secs as i64;
        if nanos >= 1_000_000_000 {
            secs += 1;
            nanos -= 1_000_000_000;
        }
        Timestamp::new(secs, nanos as u32)
    }
}

/// A key or string value of a record: up to 24 bytes are kept inline, so
/// most nginx keys and short values (methods, addresses, statuses) cost no
/// allocation of their own.
pub type Text = compact_str::CompactString;

/// A field value; keeps the JSON type it arrived with.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Always valid UTF-8: invalid input bytes become U+FFFD when a record is
    /// built, so every output format stays valid and no byte is dropped
    /// silently.
    Str(Text),
    Array(Vec<Value>),
    Map(Map),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(Text::new(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Text::from(s))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

/// Ordered key/value pairs; duplicates allowed.
///
/// Owned, except after [`Map::share`]: `rewrite_tag` with `KEEP true`
/// re-emits a record whose fields are then shared by both copies (usually
/// neither is changed again, both are only formatted) instead of copied.
/// Changing a shared map copies it first if the other side still holds it.
#[derive(Clone, Default)]
pub struct Map(Pairs);

/// As the plain pairs, shared or not.
impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Map").field(&self.pairs()).finish()
    }
}

#[derive(Debug, Clone)]
enum Pairs {
    Owned(Vec<(Text, Value)>),
    Shared(Arc<Vec<(Text, Value)>>),
}

impl Default for Pairs {
    fn default() -> Self {
        Pairs::Owned(Vec::new())
    }
}

impl PartialEq for Map {
    fn eq(&self, other: &Map) -> bool {
        self.pairs() == other.pairs()
    }
}

impl Map {
    pub fn new() -> Self {
        Map::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Map(Pairs::Owned(Vec::with_capacity(n)))
    }

    #[inline]
    fn pairs(&self) -> &[(Text, Value)] {
        match &self.0 {
            Pairs::Owned(v) => v,
            Pairs::Shared(a) => a,
        }
    }

    #[inline]
    fn pairs_mut(&mut self) -> &mut Vec<(Text, Value)> {
        match self.0 {
            Pairs::Owned(ref mut v) => v,
            Pairs::Shared(ref mut a) => Arc::make_mut(a),
        }
    }

    /// A copy sharing these pairs (this map shares them from now on too).
    pub fn share(&mut self) -> Map {
        if let Pairs::Owned(v) = &mut self.0 {
            self.0 = Pairs::Shared(Arc::new(std::mem::take(v)));
        }
        self.clone()
    }

    pub fn len(&self) -> usize {
        self.pairs().len()
    }

    pub fn reserve(&mut self, more: usize) {
        self.pairs_mut().reserve(more);
    }

    pub fn is_empty(&self) -> bool {
        self.pairs().is_empty()
    }

    /// Append a pair (never replaces: duplicates are kept, like msgpack maps).
    pub fn push(&mut self, key: impl Into<Text>, value: Value) {
        self.pairs_mut().push((key.into(), value));
    }

    /// The first value under `key` (what Fluent Bit's template output reads).
    pub fn get_first(&self, key: &str) -> Option<&Value> {
        self.pairs().iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The last value under `key` (what record accessors and Lua tables see).
    pub fn get_last(&self, key: &str) -> Option<&Value> {
        self.pairs().iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Set `key`: replaces the last occurrence, or appends.
    pub fn set(&mut self, key: &str, value: Value) {
        let pairs = self.pairs_mut();
        match pairs.iter_mut().rev().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => pairs.push((Text::new(key), value)),
        }
    }

    /// Remove every pair under `key`; returns the last removed value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        if !self.pairs().iter().any(|(k, _)| k == key) {
            return None;
        }
        let pairs = self.pairs_mut();
        let mut last = None;
        let mut i = 0;
        while i < pairs.len() {
            if pairs[i].0 == key {
                last = Some(pairs.remove(i).1);
            } else {
                i += 1;
            }
        }
        last
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.pairs().iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn extend(&mut self, other: Map) {
        let other = other.into_pairs();
        self.pairs_mut().extend(other);
    }

    /// The pairs, copied only if a shared copy still holds them.
    pub fn into_pairs(self) -> Vec<(Text, Value)> {
        match self.0 {
            Pairs::Owned(v) => v,
            Pairs::Shared(a) => Arc::try_unwrap(a).unwrap_or_else(|a| (*a).clone()),
        }
    }

    pub fn from_pairs(pairs: Vec<(Text, Value)>) -> Self {
        Map(Pairs::Owned(pairs))
    }

    /// How many maps hold these pairs: 0 when they are owned (not shared).
    #[inline]
    pub fn holders(&self) -> usize {
        match &self.0 {
            Pairs::Owned(_) => 0,
            Pairs::Shared(a) => Arc::strong_count(a),
        }
    }

    /// A weak handle on shared pairs (see [`Map::share`]).
    pub fn weak(&self) -> Option<SharedPairs> {
        match &self.0 {
            Pairs::Owned(_) => None,
            Pairs::Shared(a) => Some(SharedPairs(Arc::downgrade(a))),
        }
    }
}

/// A weak handle on a map's shared pairs: [`SharedPairs::held_by`] tells
/// whether a map holds these very pairs. They cannot have changed since:
/// a shared map is changed only through `Arc::make_mut`, which moves or
/// copies the pairs to a new allocation while a weak handle exists, and the
/// handle keeps the old allocation's address from being reused.
#[derive(Debug, Clone)]
pub struct SharedPairs(std::sync::Weak<Vec<(Text, Value)>>);

impl SharedPairs {
    pub fn held_by(&self, map: &Map) -> bool {
        match &map.0 {
            Pairs::Owned(_) => false,
            Pairs::Shared(a) => std::ptr::eq(self.0.as_ptr(), Arc::as_ptr(a)),
        }
    }

    /// Whether any map still holds them.
    pub fn alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

/// One record in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Shared because every record from one input carries the same tag.
    pub tag: Arc<str>,
    pub time: Timestamp,
    pub fields: Map,
}

impl Record {
    pub fn new(tag: Arc<str>, time: Timestamp, fields: Map) -> Self {
        Record { tag, time, fields }
    }
}

/// The bytes as a `str` when they are valid UTF-8, checked with SIMD
/// (simdutf8: ~10× std's check on a 650-byte nginx line, which every record
/// pays once or twice).
#[inline]
pub fn utf8(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

/// Bytes to a [`Text`], replacing invalid UTF-8 with U+FFFD (never dropping
/// bytes silently). Valid input is copied once without re-validation cost.
pub fn lossy_text(bytes: &[u8]) -> Text {
    match utf8(bytes) {
        Some(s) => Text::new(s),
        None => Text::from(String::from_utf8_lossy(bytes)),
    }
}

/// `raw`, found at `start` in a line whose UTF-8 check gave `whole`: sliced
/// from it when the line is valid UTF-8 and the slice ends on character
/// boundaries (as it does next to ASCII delimiters), else a lossy copy.
#[inline]
pub fn sliced_text(whole: Option<&str>, start: usize, raw: &[u8]) -> Text {
    match whole.and_then(|t| t.get(start..start.checked_add(raw.len())?)) {
        Some(s) => Text::new(s),
        None => lossy_text(raw),
    }
}

/// [`lossy_text`] as a `String` (messages and Lua names, off the record path).
pub fn lossy_string(bytes: &[u8]) -> String {
    lossy_text(bytes).into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_keep_order_and_readers_choose() {
        let mut m = Map::new();
        m.push("time", Value::from("json"));
        m.push("vhost", Value::from("a"));
        m.push("time", Value::from("syslog"));
        assert_eq!(m.get_first("time"), Some(&Value::from("json")));
        assert_eq!(m.get_last("time"), Some(&Value::from("syslog")));
        m.set("time", Value::from("x"));
        assert_eq!(m.get_first("time"), Some(&Value::from("json")));
        assert_eq!(m.remove("time"), Some(Value::from("x")));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn a_weak_handle_knows_its_pairs_and_not_changed_ones() {
        let mut a = Map::from_pairs(vec![("k".into(), Value::from("v"))]);
        assert!(a.weak().is_none() && a.holders() == 0);
        let b = a.share();
        let h = b.weak().unwrap();
        assert!(b.holders() == 2 && h.held_by(&a) && h.held_by(&b) && h.alive());
        drop(b);
        assert_eq!(a.holders(), 1);
        // Changed while only the handle is left: moved, so no longer "held".
        a.push("n", Value::Null);
        assert!(!h.held_by(&a) && !h.alive());
        // Changed while shared: copied, and the other side still holds them.
        let c = a.share();
        let h = c.weak().unwrap();
        a.set("k", Value::from("w"));
        assert!(!h.held_by(&a) && h.held_by(&c));
        assert!(!h.held_by(&Map::from_pairs(vec![])));
    }

    #[test]
    fn shared_maps_copy_on_write() {
        let mut a = Map::from_pairs(vec![("k".into(), Value::from("v")), ("n".into(), Value::Int(1))]);
        let mut b = a.share();
        assert_eq!(a, b);
        // Changing either side leaves the other as it was.
        b.set("k", Value::from("changed"));
        assert_eq!(a.get_first("k"), Some(&Value::from("v")));
        a.push("added", Value::Null);
        assert_eq!((a.len(), b.len()), (3, 2));
        assert_eq!(b.remove("n"), Some(Value::Int(1)));
        assert_eq!(a.get_first("n"), Some(&Value::Int(1)));
        // A shared map alone again is taken back without a copy.
        let mut c = a.share();
        let ptr = c.iter().next().map(|(k, _)| k.as_ptr());
        drop(a);
        c.reserve(1);
        assert_eq!(c.iter().next().map(|(k, _)| k.as_ptr()), ptr);
        let d = c.share();
        assert_eq!(format!("{d:?}"), format!("{:?}", Map::from_pairs(c.clone().into_pairs())));
        // Taking the pairs while the other copy holds them copies them.
        assert_eq!(d.into_pairs().len(), 3);
        assert_eq!(c.clone().into_pairs().len(), 3);
        // A shared map appended to another.
        let mut e = Map::from_pairs(vec![("x".into(), Value::Int(0))]);
        let f = c.share();
        e.extend(c);
        assert_eq!((e.len(), f.len()), (4, 3));
    }

    #[test]
    fn float_time_round_trip_keeps_microseconds() {
        let t = Timestamp::from_f64(1732379400.123456);
        assert_eq!(t, Timestamp::new(1732379400, 123_456_000));
        assert_eq!(Timestamp::from_f64(-0.5), Timestamp::new(-1, 500_000_000));
    }

    #[test]
    fn invalid_utf8_becomes_replacement_character() {
        assert_eq!(lossy_string(b"a\xffb"), "a\u{fffd}b");
    }
}
