//! The key order of the last object: nginx's `log_format ... escape=json`
//! writes every record with the same keys in the same order, so the bytes
//! from a pair's opening quote to its colon (`"status":`) are the same
//! from one record to the next. A caller that decodes many records keeps a
//! [`KeyOrder`]; the decoder then tries, at the start of the top-level
//! object's `i`-th pair, whether the input holds the `i`-th remembered
//! `"key":` there, byte for byte. When it does, the key and whether it is
//! built are known without scanning it or looking it up. When it does not
//! (another format, a new field, whitespace), the pair is decoded as
//! always and the order is learned again from that pair on.
//!
//! When the value was a string, the remembered bytes run on to its opening
//! quote (`"uri":"`), and a hit goes straight into the string; when it was
//! a number, a hit goes straight to reading one if one starts there.
//!
//! A hit gives what the full decode gives: how a key decodes depends on
//! its bytes alone (the same escapes, the same lossy reading of invalid
//! UTF-8, the same whitespace before the colon), and whether it is built
//! on the key alone; a quote or a digit right after the colon starts a
//! string or a number either way. The tests hold the two against each other on near
//! misses of many inputs.
//!
//! Bounded: at most [`MAX_KEYS`] pairs and [`MAX_BYTES`] bytes of keys are
//! remembered, whatever a datagram holds.

use crate::record::Text;
use crate::swar::same;

/// Pairs remembered at most (an nginx access record has ~20).
pub const MAX_KEYS: usize = 64;
/// Bytes of remembered `"key":` literals at most.
pub const MAX_BYTES: usize = 2048;

/// One caller's memory of the top-level key order (see the module doc).
/// It belongs with one key selection: what it says to build was decided
/// with the `keep` set of the decode that learned it.
#[derive(Debug, Default)]
pub struct KeyOrder {
    pairs: Vec<Pair>,
    bytes: usize,
}

#[derive(Debug)]
struct Pair {
    /// The input from where the pair began to its colon (`"key":`), and
    /// the value's opening quote when it was a string (`"key":"`).
    literal: Box<[u8]>,
    /// The key when it is built, `None` when its value is skipped.
    key: Option<Text>,
    then: Then,
}

/// What followed the colon when the pair was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Then {
    /// A string: the literal ends with its opening quote.
    String,
    /// A number (its first byte is checked again before it is read).
    Number,
    /// Anything else.
    Other,
}

/// A remembered pair found at the decoder's position.
pub(super) struct Hit<'m> {
    pub len: usize,
    pub key: Option<&'m Text>,
    /// With [`Then::String`] the decoder is then inside the value's string.
    pub then: Then,
}

impl KeyOrder {
    /// The `i`-th remembered pair, if `input` holds its literal at `at`.
    /// Else why not.
    #[inline]
    pub(super) fn find(&self, i: usize, input: &[u8], at: usize) -> Result<Hit<'_>, Miss> {
        let p = self.pairs.get(i).ok_or(Miss::Unknown)?;
        match input.get(at..at + p.literal.len()) {
            Some(b) if same(b, &p.literal) => Ok(Hit { len: p.literal.len(), key: p.key.as_ref(), then: p.then }),
            _ => Err(Miss::Differs),
        }
    }

    /// Forget pair `i` and every one after it: the input's order differs there.
    pub(super) fn forget_from(&mut self, i: usize) {
        for p in self.pairs.drain(i.min(self.pairs.len())..) {
            self.bytes -= p.literal.len();
        }
    }

    /// Remember pair `i`, the next one, decoded in full from `literal`
    /// as `key`, built or not, its value starting as `then` says (with
    /// [`Then::String`] the literal ends with the value's opening quote).
    /// Past the bounds nothing more is learned.
    pub(super) fn learn(&mut self, i: usize, literal: &[u8], key: Option<&Text>, then: Then) {
        if i != self.pairs.len() || i >= MAX_KEYS || self.bytes + literal.len() > MAX_BYTES {
            return;
        }
        self.bytes += literal.len();
        self.pairs.push(Pair { literal: literal.into(), key: key.cloned(), then });
    }
}

/// Why a pair was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Miss {
    /// Nothing remembered at this index yet: learn it.
    Unknown,
    /// The input holds something else: forget from here and learn again.
    Differs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_in_pairs_and_bytes() {
        let mut o = KeyOrder::default();
        for i in 0..MAX_KEYS + 10 {
            o.learn(i, format!("\"k{i}\":").as_bytes(), None, Then::Other);
        }
        assert_eq!(o.pairs.len(), MAX_KEYS);
        let mut o = KeyOrder::default();
        let long = format!("\"{}\":", "x".repeat(1000));
        for i in 0..5 {
            o.learn(i, long.as_bytes(), None, Then::Other);
        }
        assert_eq!((o.pairs.len(), o.bytes), (2, 2 * long.len()));
        assert_eq!(o.find(2, long.as_bytes(), 0).err(), Some(Miss::Unknown));
        o.forget_from(1);
        assert_eq!((o.pairs.len(), o.bytes), (1, long.len()));
    }
}
