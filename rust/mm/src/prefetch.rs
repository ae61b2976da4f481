//! Software prefetch: a hint that a value will be read soon, so its cache line is on its
//! way while the engine does other work. It never changes what the engine computes: a
//! prefetch cannot fault, has no architectural effect, and the value is read again when it
//! is needed. Workloads whose next access is known in advance (a reader draws its page one
//! operation ahead) use it to hide the cache miss on a random page of a large mapping.

/// Hint that `value` will be read soon.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    prefetch_x86_64(value as *const T as *const i8);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch_x86_64(p: *const i8) {
    use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: PREFETCHT0 is a hint: it never faults and has no architectural effect, for
    // any address. SSE, its target feature, is part of the x86_64 baseline.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p) }
}
