//! The process's allocator: mimalloc, entered through its plain calls
//! whenever they already give the alignment asked for.
//!
//! Records are built on one thread and freed on another; glibc's malloc
//! spent a third of the worker's CPU on that (arena locks, consolidation).
//! The `mimalloc` crate's own allocator enters through the aligned calls
//! for every allocation, which check and mask the alignment before taking
//! the same fast path: ~22 instructions more an allocation by callgrind,
//! about 24 allocations a change event on the MariaDB path.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every mimalloc block has: blocks come in sizes that are
/// whole machine words and start on word boundaries.
const WORD_ALIGNED: usize = std::mem::size_of::<usize>();

/// mimalloc as the global allocator (see the module comment).
pub struct Allocator;

// SAFETY: every call hands mimalloc a layout it supports and returns its
// answer unchanged: plain calls only for alignments of at most a word,
// which every block has; the aligned calls otherwise. Freeing goes through
// `mi_free`, which takes blocks from either kind of call.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain or aligned per the layout's alignment (see above).
        unsafe {
            if layout.align() <= WORD_ALIGNED {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if layout.align() <= WORD_ALIGNED {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the moved
        // block keeps the alignment as in `alloc`.
        unsafe {
            if layout.align() <= WORD_ALIGNED {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every alignment a Rust type can ask for here, over sizes that cross
    /// mimalloc's small, medium and large size classes: the block is
    /// aligned, writable end to end, keeps its bytes when grown and
    /// shrunk, and a zeroed one reads as zero.
    #[test]
    fn blocks_are_aligned_writable_and_keep_their_bytes() {
        let sizes = (1..=300).chain([511, 1024, 4097, 65_536, 1 << 20, 5 << 20]);
        for size in sizes {
            for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
                let layout = Layout::from_size_align(size, align).expect("valid layout");
                // SAFETY: non-zero sizes; each block is used within its
                // size and freed once with the layout it has.
                unsafe {
                    let zeroed = Allocator.alloc_zeroed(layout);
                    assert!(!zeroed.is_null());
                    assert_eq!(zeroed as usize % align, 0, "zeroed {size} @ {align}");
                    assert!(std::slice::from_raw_parts(zeroed, size)
                        .iter()
                        .all(|b| *b == 0));
                    Allocator.dealloc(zeroed, layout);

                    let block = Allocator.alloc(layout);
                    assert!(!block.is_null());
                    assert_eq!(block as usize % align, 0, "{size} @ {align}");
                    for i in 0..size {
                        block.add(i).write(i as u8);
                    }
                    let grown = Allocator.realloc(block, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "grown {size} @ {align}");
                    assert!((0..size).all(|i| grown.add(i).read() == i as u8));
                    let grown_layout = Layout::from_size_align(size * 3, align).expect("valid");
                    let shrunk = Allocator.realloc(grown, grown_layout, size.div_ceil(2));
                    assert_eq!(shrunk as usize % align, 0, "shrunk {size} @ {align}");
                    assert!((0..size.div_ceil(2)).all(|i| shrunk.add(i).read() == i as u8));
                    let shrunk_layout =
                        Layout::from_size_align(size.div_ceil(2), align).expect("valid");
                    Allocator.dealloc(shrunk, shrunk_layout);
                }
            }
        }
    }
}
