//! Tunes the C allocator for training. libtorch allocates every activation, gradient and temporary of a
//! step with `malloc`; most are megabytes. glibc serves blocks that large with fresh `mmap`s, or gives
//! the top of its heap back to the kernel as soon as a step frees them, so the next step takes a page
//! fault for every 4 KiB it touches again. Measured on a ResNet-18 step at batch 64 on 32x32 images:
//! 1.86 million minor faults in 240 steps with the defaults, 0.11 million with the settings here, and
//! the kernel's share of the CPU time falls from 5 % to 0.6 %.
//!
//! The cost is that memory a step freed stays with the process, ready for the next step, instead of
//! going back to the system between steps (up to [`TRIM_THRESHOLD`] at the top of each heap).

/// Blocks up to this size come from the heap, where freed ones are reused; larger ones (only at large
/// input sizes) are still mapped on their own. 32 MiB is the largest glibc accepts.
pub const MMAP_THRESHOLD: usize = 32 << 20;
/// Free memory at the top of a heap is given back to the system only beyond this.
pub const TRIM_THRESHOLD: usize = 256 << 20;

/// Applies the settings to this process's allocator (glibc only; elsewhere, does nothing). Returns
/// whether the allocator accepted them. Call it once, early: it changes how the whole process allocates.
pub fn keep_freed_memory_for_training() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes glibc's allocation parameters; it is safe to call at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_settings_and_large_blocks_still_allocate() {
        assert!(keep_freed_memory_for_training());
        // A block above the threshold and many below it still allocate, fill and free.
        let big = tch::Tensor::ones([3 * MMAP_THRESHOLD as i64 / 4], (tch::Kind::Float, tch::Device::Cpu));
        assert_eq!(big.sum(tch::Kind::Double).double_value(&[]), 3.0 * MMAP_THRESHOLD as f64 / 4.0);
        for _ in 0..8 {
            let block = tch::Tensor::ones([1 << 20], (tch::Kind::Float, tch::Device::Cpu)); // 4 MiB
            assert_eq!(block.sum(tch::Kind::Double).double_value(&[]), (1 << 20) as f64);
        }
    }
}
