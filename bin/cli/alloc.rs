//! Allocator tuning for the binaries.
//!
//! A training step frees and re-allocates the same few hundred activation buffers, many of them
//! a few MiB. glibc serves blocks above its mmap threshold with fresh `mmap`s, so every step paid
//! for page faults and for the kernel zeroing the pages again (about 20 % of a step's time on the
//! default run, most of it in system time). Raising the threshold to its maximum keeps those
//! blocks in the heap, where they are reused. The maximum is 32 MiB: larger blocks (an MLP's
//! hidden activations at L = 1024 already) glibc always maps afresh, so the binaries also set
//! `tensor::cpu::BlockCache` as their global allocator, which keeps exactly those for reuse.

/// Keeps blocks up to 32 MiB in the heap and stops glibc from returning freed heap memory to
/// the system after every large free. Does nothing on other platforms.
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: mallopt only changes allocator parameters; it is called before any thread of
        // ours starts, and a rejected value (return 0) leaves glibc's default in place.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20); // glibc's maximum on 64-bit targets
            mallopt(M_TRIM_THRESHOLD, 1 << 30);
        }
    }
}
