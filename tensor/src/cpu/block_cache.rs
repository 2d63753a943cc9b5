//! A global allocator that keeps large freed blocks for reuse: the CPU's counterpart of the
//! CUDA memory pool.
//!
//! # Why
//!
//! Every op allocates its output, and a training or sampling step frees and allocates the same
//! activation buffers again and again. glibc keeps freed blocks in its heap for reuse only
//! below its mmap threshold, which cannot be raised past 32 MiB; a larger block goes back to
//! the kernel when it is freed (`munmap`), so the next allocation of that size faults every
//! page in again and the kernel zero-fills each one. Measured on MDLM sampling (`sample
//! --random-init --preset mdlm-cpu`, 2 cores, where an MLP's hidden activations take 32 MiB):
//! 1.6 M page faults in 16 steps, 14 % of the CPU time in the kernel.
//!
//! # How
//!
//! Requests of at least [`MIN_BLOCK`] bytes are rounded up to a size class (four per power of
//! two, so at most 25 % is wasted). A freed block goes onto its class's free list, and the next
//! request of that class takes it back: no system call, no page fault. The free lists are
//! intrusive (each cached block stores the address of the next in its first bytes), so the
//! allocator never allocates for itself. The cache holds at most a byte limit (default
//! [`DEFAULT_LIMIT`]); blocks freed beyond it go back to the system, and
//! [`release`](BlockCache::release) gives back all it holds (the sampler calls it between
//! models, whose sizes differ). Smaller requests, which the system allocator's heap serves
//! well, and alignments above a page go to the system allocator untouched.
//!
//! The binaries opt in; a library never sets the global allocator:
//! ```
//! #[global_allocator]
//! static ALLOC: tensor::cpu::BlockCache = tensor::cpu::BlockCache::new();
//!
//! fn main() {
//!     let first = vec![1.0f32; 8 << 20].as_ptr() as usize; // 32 MiB, freed at once
//!     let second = vec![2.0f32; 8 << 20];
//!     assert_eq!(second.as_ptr() as usize, first); // the same block, reused
//! }
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;
use std::sync::Mutex;

/// Requests of at least this many bytes are cached: glibc's largest mmap threshold (smaller
/// ones stay in its heap, where a freed block is reused for any smaller size too).
pub const MIN_BLOCK: usize = 32 << 20;
/// The default cap on the bytes held in free lists.
pub const DEFAULT_LIMIT: usize = 4 << 30;
/// Every cached block is aligned to a page (requests asking for more pass through).
const BLOCK_ALIGN: usize = 4096;
/// Size classes: four per power of two from `MIN_BLOCK` up to `MIN_BLOCK · 2^16` (2 TiB).
const CLASSES: usize = 4 * 16 + 1;
const MIN_SHIFT: u32 = MIN_BLOCK.trailing_zeros();

/// The free lists: the head block of each class, and the bytes they hold together.
struct FreeLists {
    heads: [*mut u8; CLASSES],
    cached_bytes: usize,
}

// The raw pointers are blocks owned by the allocator; the mutex serialises every access.
unsafe impl Send for FreeLists {}

/// A global allocator that caches freed blocks of at least [`MIN_BLOCK`] bytes (module docs).
pub struct BlockCache {
    lists: Mutex<FreeLists>,
    limit: usize,
}

impl Default for BlockCache {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockCache {
    /// A cache holding at most [`DEFAULT_LIMIT`] bytes of freed blocks.
    pub const fn new() -> Self {
        Self::with_limit(DEFAULT_LIMIT)
    }

    /// A cache holding at most `limit` bytes of freed blocks.
    pub const fn with_limit(limit: usize) -> Self {
        BlockCache {
            lists: Mutex::new(FreeLists {
                heads: [ptr::null_mut(); CLASSES],
                cached_bytes: 0,
            }),
            limit,
        }
    }

    /// The bytes held in free lists now, waiting for reuse.
    pub fn cached_bytes(&self) -> usize {
        self.lock().cached_bytes
    }

    /// Gives every cached block back to the system.
    pub fn release(&self) {
        let mut lists = self.lock();
        for class in 0..CLASSES {
            while let Some(block) = lists.pop(class) {
                // SAFETY: the block came from `System` with the class's layout.
                unsafe { System.dealloc(block, block_layout(class)) };
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FreeLists> {
        // A panic while the lock was held cannot leave the lists inconsistent (every update is
        // one assignment after the work), so a poisoned lock is still usable.
        self.lists.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A cached block of `class`, if there is one.
    fn reuse(&self, class: usize) -> Option<*mut u8> {
        self.lock().pop(class)
    }

    /// Caches a block of `class`, or gives it back to the system when the cache is full.
    unsafe fn give(&self, block: *mut u8, class: usize) {
        let mut lists = self.lock();
        if lists.cached_bytes + class_size(class) <= self.limit {
            lists.push(class, block);
        } else {
            drop(lists);
            System.dealloc(block, block_layout(class));
        }
    }
}

impl FreeLists {
    fn pop(&mut self, class: usize) -> Option<*mut u8> {
        let block = self.heads[class];
        if block.is_null() {
            return None;
        }
        // SAFETY: a cached block's first bytes hold the next block of its list (see `push`).
        self.heads[class] = unsafe { (block as *mut *mut u8).read() };
        self.cached_bytes -= class_size(class);
        Some(block)
    }

    fn push(&mut self, class: usize, block: *mut u8) {
        // SAFETY: the block is ours, page-aligned and at least MIN_BLOCK bytes long.
        unsafe { (block as *mut *mut u8).write(self.heads[class]) };
        self.heads[class] = block;
        self.cached_bytes += class_size(class);
    }
}

/// The size class of a request, or `None` when it is not cached (too small, too large, or
/// aligned beyond a page).
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size();
    if size < MIN_BLOCK || layout.align() > BLOCK_ALIGN {
        return None;
    }
    if size == MIN_BLOCK {
        return Some(0);
    }
    // 2^e < size ≤ 2^(e+1); the classes between are 2^e · (1 + j/4), j = 1..=4.
    let e = usize::BITS - 1 - (size - 1).leading_zeros();
    let quarter = 1usize << (e - 2);
    let j = (size - (1 << e)).div_ceil(quarter);
    let class = (e - MIN_SHIFT) as usize * 4 + j;
    (class < CLASSES).then_some(class)
}

/// The bytes of a block of `class`: `MIN_BLOCK` · 2^(class/4) · (1 + (class % 4)/4).
fn class_size(class: usize) -> usize {
    (MIN_BLOCK << (class / 4)) / 4 * (4 + class % 4)
}

fn block_layout(class: usize) -> Layout {
    // SAFETY: the size is a multiple of the (power-of-two) alignment and far below isize::MAX.
    unsafe { Layout::from_size_align_unchecked(class_size(class), BLOCK_ALIGN) }
}

unsafe impl GlobalAlloc for BlockCache {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(class) => match self.reuse(class) {
                Some(block) => block,
                None => System.alloc(block_layout(class)),
            },
            None => System.alloc(layout),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(class) => match self.reuse(class) {
                // Only the bytes asked for must read as zero.
                Some(block) => {
                    ptr::write_bytes(block, 0, layout.size());
                    block
                }
                // Fresh pages from the system are zero already: calloc skips the memset.
                None => System.alloc_zeroed(block_layout(class)),
            },
            None => System.alloc_zeroed(layout),
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_of(layout) {
            Some(class) => self.give(block, class),
            None => System.dealloc(block, layout),
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (class_of(layout), class_of(new_layout)) {
            (None, None) => System.realloc(block, layout, new_size),
            // The block already has room for the new size.
            (Some(old), Some(new)) if old == new => block,
            _ => {
                let moved = self.alloc(new_layout);
                if !moved.is_null() {
                    ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                    self.dealloc(block, layout);
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: usize = MIN_BLOCK;

    fn bytes(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    #[test]
    fn classes_round_up_by_at_most_a_quarter() {
        assert_eq!(class_of(bytes(M - 1)), None);
        assert_eq!(class_of(Layout::from_size_align(M, 8192).unwrap()), None);
        for size in [M, M + 1, M / 4 * 5, M / 4 * 5 + 1, 3 * M, 123 * M + 456_789] {
            let class = class_of(bytes(size)).unwrap();
            let rounded = class_size(class);
            assert!(
                rounded >= size && rounded <= size + size / 4,
                "{size} -> {rounded}"
            );
            if class > 0 {
                assert!(
                    class_size(class - 1) < size,
                    "{size}: class {class} is not the least"
                );
            }
        }
        // Each power of two is its own class, and the classes grow.
        assert_eq!(class_size(class_of(bytes(16 * M)).unwrap()), 16 * M);
        assert!((1..CLASSES).all(|c| class_size(c) > class_size(c - 1)));
        assert_eq!(class_of(bytes(class_size(CLASSES - 1) + 1)), None);
    }

    #[test]
    fn a_freed_block_is_reused_zeroed_and_realloc_stays_in_its_class() {
        let cache = BlockCache::new();
        unsafe {
            let a = cache.alloc(bytes(3 * M));
            a.write_bytes(7, 3 * M);
            cache.dealloc(a, bytes(3 * M));
            assert_eq!(cache.cached_bytes(), 3 * M);
            // A slightly smaller request is of the same class (2.5·M < size ≤ 3·M): it takes
            // the same block back.
            let b = cache.alloc_zeroed(bytes(3 * M - 4096));
            assert_eq!(b, a);
            assert_eq!(cache.cached_bytes(), 0);
            let zeroed = std::slice::from_raw_parts(b, 3 * M - 4096);
            assert!(zeroed.iter().all(|&x| x == 0));
            // Growing within the class keeps the block; growing past it moves the contents.
            b.write(42);
            let c = cache.realloc(b, bytes(3 * M - 4096), 3 * M);
            assert_eq!(c, b);
            let d = cache.realloc(c, bytes(3 * M), 8 * M);
            assert_eq!(d.read(), 42);
            assert_eq!(
                cache.cached_bytes(),
                3 * M,
                "the old block went to its free list"
            );
            // Shrinking below MIN_BLOCK hands the data to the system allocator.
            let e = cache.realloc(d, bytes(8 * M), 100);
            assert_eq!(e.read(), 42);
            cache.dealloc(e, bytes(100));
            cache.release();
            assert_eq!(cache.cached_bytes(), 0);
        }
    }

    #[test]
    fn threads_never_share_a_block() {
        // Four threads allocate and free blocks of a few classes; each marks the first and last
        // byte of its blocks and checks them before freeing: a block handed out twice at once
        // would show another thread's mark.
        let cache = BlockCache::new();
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                let cache = &cache;
                scope.spawn(move || unsafe {
                    let mut held: Vec<(*mut u8, usize)> = Vec::new();
                    for i in 0..400 {
                        let size = M + (i * 7 + t as usize) % 5 * (M / 3);
                        let block = cache.alloc(bytes(size));
                        block.write(t);
                        block.add(size - 1).write(t);
                        held.push((block, size));
                        if held.len() > 2 {
                            let (block, size) = held.remove(i % 3);
                            assert_eq!((block.read(), block.add(size - 1).read()), (t, t));
                            cache.dealloc(block, bytes(size));
                        }
                    }
                    for (block, size) in held {
                        assert_eq!((block.read(), block.add(size - 1).read()), (t, t));
                        cache.dealloc(block, bytes(size));
                    }
                });
            }
        });
        cache.release();
        assert_eq!(cache.cached_bytes(), 0);
    }

    #[test]
    fn the_cache_never_holds_more_than_its_limit() {
        let cache = BlockCache::with_limit(M / 2 * 5);
        unsafe {
            let blocks: Vec<_> = (0..3).map(|_| cache.alloc(bytes(M))).collect();
            for &block in &blocks {
                cache.dealloc(block, bytes(M));
            }
            // Two blocks fit under 2.5·M; the third went back to the system.
            assert_eq!(cache.cached_bytes(), 2 * M);
            let again: Vec<_> = (0..2).map(|_| cache.alloc(bytes(M))).collect();
            assert!(again.iter().all(|b| blocks.contains(b)));
            assert_eq!(cache.cached_bytes(), 0);
            for block in again {
                cache.dealloc(block, bytes(M));
            }
            cache.release();
        }
    }
}
