//! A second build of the kernels' inner loops for CPUs with 256-bit vectors.
//!
//! Release binaries target baseline x86-64, whose SSE2 vectors hold four
//! f32 lanes. [`run`] executes a kernel's per-plane or per-row work compiled
//! with AVX2 enabled when the running CPU has it (checked once): the
//! closure and the `#[inline(always)]` functions it calls are inlined into
//! [`run_avx2`] and compiled with its features.
//!
//! The numbers are the same on either path: the loops' additions happen in
//! the same order whatever the vector width (the reductions keep eight
//! explicit accumulators), Rust never fuses a multiply and an add by
//! itself, and no FMA is enabled here. A unit test compares both builds.

#![allow(unsafe_code)]

/// Whether this CPU has every feature [`run_avx2`] is compiled with.
#[cfg(target_arch = "x86_64")]
pub(crate) fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| std::arch::is_x86_feature_detected!("avx2"))
}

/// Other architectures have only the baseline build.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn available() -> bool {
    false
}

/// Set by tests to run every kernel in its baseline build.
#[cfg(test)]
pub(crate) static BASELINE_ONLY: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Runs `f`, in its AVX2 build where the CPU has AVX2.
#[inline(always)]
pub(crate) fn run<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(test)]
    if BASELINE_ONLY.load(std::sync::atomic::Ordering::Relaxed) {
        return f();
    }
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: `run_avx2` may run only where the CPU has AVX2, which
        // `available` has just checked.
        return unsafe { run_avx2(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2")]
fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
