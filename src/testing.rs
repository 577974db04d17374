//! Helpers shared by the unit tests.

/// Deterministic pseudo-random numbers (xorshift64) for the property tests
/// that hold a fast path against a reference on many generated inputs.
pub(crate) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
