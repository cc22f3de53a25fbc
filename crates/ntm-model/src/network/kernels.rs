//! Numeric kernels: a vectorisable `exp`, a checked wrapper around `gemm`, and column sums.

use std::cell::Cell;

use rayon::prelude::*;

thread_local! {
    /// Set while the thread computes one shard of a data-parallel step (see [`serial`]).
    static SERIAL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every product of [`matmul`] on the calling thread.
///
/// A data-parallel step gives each thread whole shards of the batch, so splitting their
/// products again would only add synchronisation. The result is the same either way, because
/// [`matmul`] gives the same bits on one thread as on several.
pub(crate) fn serial<R>(f: impl FnOnce() -> R) -> R {
    with_thread_value(&SERIAL, true, f)
}

/// Runs `f` with the thread-local `key` set to `value`, and restores the previous value
/// afterwards, also when `f` panics.
fn with_thread_value<T: Copy + 'static, R>(
    key: &'static std::thread::LocalKey<Cell<T>>,
    value: T,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore<T: Copy + 'static> {
        key: &'static std::thread::LocalKey<Cell<T>>,
        previous: T,
    }
    impl<T: Copy + 'static> Drop for Restore<T> {
        fn drop(&mut self) {
            self.key.set(self.previous);
        }
    }
    let _restore = Restore {
        key,
        previous: key.replace(value),
    };
    f()
}

/// Inputs below this give `exp(x) < f32::MIN_POSITIVE`; [`fast_exp`] returns 0 for them.
const EXP_MIN_INPUT: f32 = -87.336_54;
/// Inputs above this overflow `f32`; [`fast_exp`] clamps them here, so it never returns infinity.
const EXP_MAX_INPUT: f32 = 88.376_26;

/// Computes `e^x` for `f32` with a relative error below 1e-6, in straight-line code that the
/// compiler vectorises when it is called in a loop.
///
/// Range reduction writes `x = n ln 2 + r` with integer `n` and `|r| <= ln 2 / 2`, a degree-7
/// Taylor polynomial gives `e^r` (truncation error below 1e-8 on that interval), and `2^n` is
/// built from the exponent bits. Inputs below about -87.34 return 0 and inputs above about
/// 88.38 are clamped there; NaN returns NaN.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split into a part with trailing zero bits and a small remainder, so that n * LN2_HI is exact.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding 1.5 * 2^23 rounds to an integer and leaves that integer in the low mantissa bits.
    const ROUND_MAGIC: f32 = 12_582_912.0;

    // The lower clamp only keeps the bit arithmetic in range; such inputs return 0 below.
    let clamped = x.clamp(EXP_MIN_INPUT - 1.0, EXP_MAX_INPUT);
    // A plain multiply-add: `mul_add` is a library call unless the target has FMA.
    let shifted = clamped * LOG2_E + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let n_int = (shifted.to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    // n lies in [-128, 128] here; 2^128 is split in two factors to stay finite.
    let half = n_int >> 1;
    let scale_a = f32::from_bits(((half + 127) << 23) as u32);
    let scale_b = f32::from_bits(((n_int - half + 127) << 23) as u32);
    let y = p * scale_a * scale_b;
    if x < EXP_MIN_INPUT {
        0.0
    } else if x.is_nan() {
        x
    } else {
        y
    }
}

/// Instruction-set tiers of the functions that [`simd_fn`] defines, from the widest down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Tier {
    /// Plain code: SSE2 on x86-64.
    // Only the tests name this tier, to limit the others.
    #[cfg_attr(not(test), allow(dead_code))]
    Portable,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512F.
    Avx512,
}

#[cfg(test)]
thread_local! {
    /// The widest tier the unit tests allow on this thread.
    static TIER_LIMIT: Cell<Tier> = const { Cell::new(Tier::Avx512) };
}

/// Returns whether [`simd_fn`] functions may use `tier`. Outside the unit tests every tier the
/// CPU supports is allowed.
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn tier_allowed(tier: Tier) -> bool {
    #[cfg(test)]
    {
        tier <= TIER_LIMIT.get()
    }
    #[cfg(not(test))]
    {
        let _ = tier;
        true
    }
}

/// Runs `f` with the [`simd_fn`] functions on this thread limited to `limit`, so that tests can
/// run the narrower copies on a CPU that has wider ones.
#[cfg(test)]
pub(crate) fn with_tier_limit<R>(limit: Tier, f: impl FnOnce() -> R) -> R {
    with_thread_value(&TIER_LIMIT, limit, f)
}

/// Defines a function that runs its body compiled for AVX-512 when the CPU has it, for AVX2 and
/// FMA when it has those, and as plain (SSE2) code otherwise.
///
/// The body and the `#[inline(always)]` functions it calls, such as [`fast_exp`], are inlined
/// into copies with those target features, so their loops are vectorised 16 or 8 lanes wide
/// instead of 4. The copies run the same operations in the same order, and the compiler does
/// not fuse a separate multiply and add into one FMA, so every copy gives the same bits (a unit
/// test of a training step checks this). Products from `gemm` still depend on whether the CPU
/// has FMA.
macro_rules! simd_fn {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                #[allow(unsafe_code)]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }

                if $crate::network::kernels::tier_allowed($crate::network::kernels::Tier::Avx512)
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    #[allow(unsafe_code)]
                    // SAFETY: the CPU supports AVX-512F, AVX2 and FMA, checked just above.
                    return unsafe { avx512($($arg),*) };
                }

                #[target_feature(enable = "avx2,fma")]
                #[allow(unsafe_code)]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }

                if $crate::network::kernels::tier_allowed($crate::network::kernels::Tier::Avx2)
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    #[allow(unsafe_code)]
                    // SAFETY: the CPU supports AVX2 and FMA, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}
pub(crate) use simd_fn;

/// A read-only matrix view with arbitrary row and column strides (in elements).
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// Views `data` as a row-major `rows x cols` matrix.
    pub(crate) fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix buffer too short");
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// Returns the view of rows `start..start + len` (no copy).
    fn row_block(self, start: usize, len: usize) -> Self {
        debug_assert!(start + len <= self.rows);
        let offset = (start * self.row_stride).min(self.data.len());
        Self {
            data: &self.data[offset..],
            rows: len,
            ..self
        }
    }

    /// Returns the transposed view (no copy).
    pub(crate) fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
}

/// Products with fewer multiply-adds than this run on one thread: below it, splitting costs
/// more than it saves. The choice depends only on the shape and the pool size, so results stay
/// reproducible for a given thread count.
const PARALLEL_MIN_MACS: usize = 1 << 18;
/// Row blocks of a split product are multiples of this (the height of `gemm`'s f32 kernel).
const ROW_BLOCK_ALIGN: usize = 16;
/// Products split by rows have at most this inner dimension. Splitting products with a larger
/// one changed their last bits between one and two threads, so those use `gemm`'s own
/// parallelism, which kept them identical in the thread-count tests.
const SPLIT_MAX_INNER: usize = 64;

/// Computes `dst = lhs * rhs` (or `dst += lhs * rhs` when `accumulate`), where `dst` is a
/// row-major `lhs.rows x rhs.cols` matrix.
///
/// With more than one rayon thread and a large enough product, splits the output rows into one
/// block per thread.
///
/// # Panics
/// Panics when the shapes disagree or a buffer is too short: callers size every buffer from the
/// network configuration, so this is a bug, never a consequence of input data.
pub(crate) fn matmul(dst: &mut [f32], lhs: MatRef<'_>, rhs: MatRef<'_>, accumulate: bool) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "inner dimensions differ");
    assert!(dst.len() >= m * n, "destination buffer too short");
    for view in [lhs, rhs] {
        if view.rows > 0 && view.cols > 0 {
            let last = (view.rows - 1) * view.row_stride + (view.cols - 1) * view.col_stride;
            assert!(last < view.data.len(), "matrix view exceeds its buffer");
        }
    }
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    let threads = if SERIAL.get() {
        1
    } else {
        rayon::current_num_threads()
    };
    if threads > 1
        && k <= SPLIT_MAX_INNER
        && m >= 2 * ROW_BLOCK_ALIGN
        && m * n * k >= PARALLEL_MIN_MACS
    {
        // Split the output rows into one block per thread, each computed by a single-threaded
        // product. Every output element still sums over the whole inner dimension in the same
        // order, and the split depends only on the shape and the pool size.
        let per_thread = m.div_ceil(threads).div_ceil(ROW_BLOCK_ALIGN) * ROW_BLOCK_ALIGN;
        dst[..m * n]
            .par_chunks_mut(per_thread * n)
            .enumerate()
            .for_each(|(block, out)| {
                let start = block * per_thread;
                let len = out.len() / n;
                let block = lhs.row_block(start, len);
                gemm_with(out, block, rhs, accumulate, gemm::Parallelism::None);
            });
    } else {
        let parallelism = if threads > 1 && m * n * k >= PARALLEL_MIN_MACS {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        gemm_with(dst, lhs, rhs, accumulate, parallelism);
    }
}

/// Runs `gemm` with `parallelism` for shapes checked by [`matmul`].
fn gemm_with(
    dst: &mut [f32],
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    if m == 0 {
        return;
    }
    let stride = |s: usize| isize::try_from(s).expect("matrix stride fits in isize");
    #[allow(unsafe_code)]
    // SAFETY: the asserts in `matmul` check that every element the product reads, at
    // `row * row_stride + col * col_stride` for rows below `rows` and columns below `cols`,
    // lies inside its slice, and that `dst` has room for the `m x n` row-major result; a row
    // block views a subset of those rows from the same slice, with `dst` split to match. The
    // destination is borrowed mutably, so it cannot alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            stride(n),
            accumulate,
            lhs.data.as_ptr(),
            stride(lhs.col_stride),
            stride(lhs.row_stride),
            rhs.data.as_ptr(),
            stride(rhs.col_stride),
            stride(rhs.row_stride),
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Adds each column of the row-major `rows x cols` matrix `values` into `out[col]`, summing the
/// rows in order in `f64` so that the result does not depend on scheduling.
pub(crate) fn column_sums(values: &[f32], cols: usize, acc: &mut Vec<f64>, out: &mut [f32]) {
    acc.clear();
    acc.resize(cols, 0.0);
    add_rows_f64(values, cols, acc);
    for (o, &a) in out.iter_mut().zip(acc.iter()) {
        *o = a as f32;
    }
}

simd_fn! {
    /// Adds every `cols`-wide row of `values` into `acc`, in row order.
    fn add_rows_f64(values: &[f32], cols: usize, acc: &mut [f64]) {
        for row in values.chunks_exact(cols) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += f64::from(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_matches_std_exp() {
        let mut worst = 0.0f64;
        let steps = 2_000_000;
        for i in 0..=steps {
            let x = -87.0 + 175.0 * i as f32 / steps as f32;
            let exact = f64::from(x).exp();
            let got = f64::from(fast_exp(x));
            let rel = ((got - exact) / exact).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 1e-6, "worst relative error {worst}");
    }

    #[test]
    fn fast_exp_edges() {
        assert_eq!(fast_exp(0.0), 1.0);
        assert_eq!(fast_exp(-100.0), 0.0);
        assert_eq!(fast_exp(f32::NEG_INFINITY), 0.0);
        assert!(fast_exp(1000.0).is_finite());
        assert!(fast_exp(f32::NAN).is_nan());
    }

    #[test]
    fn matmul_matches_naive_product() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut c = vec![1.0; m * n];
        matmul(
            &mut c,
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
            true,
        );
        for i in 0..m {
            for j in 0..n {
                let expected: f32 = 1.0 + (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum::<f32>();
                assert!((c[i * n + j] - expected).abs() < 1e-5);
            }
        }
        // The transposed view of a k x m matrix gives the same product.
        let at: Vec<f32> = (0..k * m).map(|idx| a[(idx % m) * k + idx / m]).collect();
        let mut c2 = vec![0.0; m * n];
        matmul(
            &mut c2,
            MatRef::row_major(&at, k, m).t(),
            MatRef::row_major(&b, k, n),
            false,
        );
        for (x, y) in c.iter().zip(&c2) {
            assert!((x - 1.0 - y).abs() < 1e-5);
        }
    }
}
