//! The allocator of the `gatelog` binary and the benchmarks: mimalloc,
//! called the way that is cheapest for what Rust asks of it.
//!
//! A record allocates its longer keys and values, and glibc's malloc spent
//! a third of the pipeline's time on them (perf, `examples/stages`). The
//! `mimalloc` crate's own `GlobalAlloc` passes every request through
//! `mi_malloc_aligned`, even the byte strings and word-aligned vectors that
//! are nearly all of ours. In mimalloc 3 that path checks the block it would
//! take for the alignment, and above 1 KiB (a batch's bytes, a record's
//! field list) it over-allocates instead: 68 instructions an allocation on
//! average in b-native (callgrind). Every mimalloc block is a whole number
//! of machine words from a page start aligned to 16 bytes, so
//! `mi_malloc` already gives word alignment; only larger alignments need
//! the aligned entry points.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every `mi_malloc` block has: a machine word.
const WORD: usize = std::mem::size_of::<usize>();

/// mimalloc as the global allocator (`#[global_allocator] static A: Allocator = Allocator;`).
pub struct Allocator;

// SAFETY: every method hands the request to mimalloc, which returns blocks
// of at least the requested size (or null), aligned to `layout.align()`:
// plain calls for alignments up to a word (which every block has), the
// aligned calls above that. `dealloc` and `realloc` receive only pointers
// these methods returned, which `mi_free`/`mi_realloc*` accept whichever
// entry point allocated them.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        by_alignment(layout, mi::mi_malloc, mi::mi_malloc_aligned)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        by_alignment(layout, mi::mi_zalloc, mi::mi_zalloc_aligned)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr as *mut c_void)
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= WORD {
            mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

/// `plain(size)` when a word's alignment is enough, else `aligned(size, align)`.
#[inline(always)]
unsafe fn by_alignment(
    layout: Layout,
    plain: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    if layout.align() <= WORD {
        plain(layout.size()) as *mut u8
    } else {
        aligned(layout.size(), layout.align()) as *mut u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes looked at in a block of `len`: its first and last 64.
    fn ends(len: usize) -> impl Iterator<Item = usize> {
        (0..len.min(64)).chain(len.saturating_sub(64).max(64)..len)
    }

    unsafe fn fill(p: *mut u8, len: usize) {
        for i in ends(len) {
            *p.add(i) = (i % 251) as u8;
        }
    }

    unsafe fn holds(p: *const u8, len: usize) -> bool {
        ends(len).all(|i| *p.add(i) == (i % 251) as u8)
    }

    /// Every size class from a byte to past mimalloc's large objects, at
    /// every alignment from 1 to a page: the block is aligned, writable at
    /// both ends, and keeps its bytes through growing and shrinking.
    #[test]
    fn blocks_are_aligned_and_keep_their_bytes_through_realloc() {
        let a = Allocator;
        let mut sizes: Vec<usize> = (1..=300).collect();
        sizes.extend((9..=22).flat_map(|s| [(1usize << s) - 8, 1 << s, (1 << s) + 24, 3 << (s - 1)]));
        for align in (0..=12).map(|s| 1usize << s) {
            for &size in &sizes {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size and a valid layout; every pointer is
                // checked for null, used within its size and freed once.
                unsafe {
                    let p = if size % 2 == 0 { a.alloc(layout) } else { a.alloc_zeroed(layout) };
                    assert!(!p.is_null(), "size {size} align {align}");
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    if size % 2 == 1 {
                        assert!(ends(size).all(|i| *p.add(i) == 0), "zeroed {size}");
                    }
                    fill(p, size);
                    // Grow, then shrink below the first size: the bytes kept
                    // each time are the block's own, and it stays aligned.
                    let grown = size * 2 + 5;
                    let q = a.realloc(p, layout, grown);
                    assert!(!q.is_null());
                    assert_eq!(q as usize % align, 0, "grow {size} align {align}");
                    assert!(holds(q, size), "grow {size} align {align}");
                    let shrunk = size.div_ceil(3);
                    fill(q, grown);
                    fill(q, shrunk);
                    let r = a.realloc(q, Layout::from_size_align(grown, align).unwrap(), shrunk);
                    assert!(!r.is_null());
                    assert_eq!(r as usize % align, 0, "shrink {size} align {align}");
                    assert!(holds(r, shrunk), "shrink {size} align {align}");
                    a.dealloc(r, Layout::from_size_align(shrunk, align).unwrap());
                }
            }
        }
    }
}
