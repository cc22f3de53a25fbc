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

/// Splits `x` into `n ln 2 + r` with `|r| <= ln 2 / 2` and returns `n` and `e^r`, the degree-7
/// Taylor polynomial in `r`: the shared core of [`fast_exp`] and [`fast_exp_nonpositive`].
#[inline(always)]
fn exp_reduce(x: f32) -> (i32, f32) {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split into a part with trailing zero bits and a small remainder, so that n * LN2_HI is exact.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding 1.5 * 2^23 rounds to an integer and leaves that integer in the low mantissa bits.
    const ROUND_MAGIC: f32 = 12_582_912.0;

    // A plain multiply-add: `mul_add` is a library call unless the target has FMA.
    let shifted = x * LOG2_E + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let n_int = (shifted.to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    (n_int, p)
}

/// Computes `e^x` for `f32` with a relative error below 1e-6, in straight-line code that the
/// compiler vectorises when it is called in a loop.
///
/// Range reduction writes `x = n ln 2 + r` with integer `n` and `|r| <= ln 2 / 2`, a degree-7
/// Taylor polynomial gives `e^r` (truncation error below 1e-8 on that interval), and `2^n` is
/// built from the exponent bits. Inputs below about -87.34 return 0 and inputs above about
/// 88.38 are clamped there; NaN returns NaN.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    // The lower clamp only keeps the bit arithmetic in range; such inputs return 0 below.
    let clamped = x.clamp(EXP_MIN_INPUT - 1.0, EXP_MAX_INPUT);
    let (n_int, p) = exp_reduce(clamped);
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

/// [`fast_exp`] for inputs at most 0, such as `u - max(u)` in a softmax: the same bits there
/// (and NaN for NaN) with fewer operations, since `2^n` needs one factor and no upper clamp.
/// Positive inputs give wrong results.
#[inline(always)]
pub fn fast_exp_nonpositive(x: f32) -> f32 {
    const LOWEST: f32 = EXP_MIN_INPUT - 1.0;

    // A comparison rather than `max`, which would turn NaN into the bound.
    let clamped = if x < LOWEST { LOWEST } else { x };
    // n lies in [-128, 0]. Below -126 the input is under EXP_MIN_INPUT and the result is 0.
    let (n_int, p) = exp_reduce(clamped);
    let scale = f32::from_bits(((n_int + 127).max(0) << 23) as u32);
    let y = p * scale;
    if x < EXP_MIN_INPUT {
        0.0
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
/// test of a training step checks this). Dense products are not `simd_fn` functions: they run
/// on [`outer_product_avx512`] or on `gemm`, whose results depend on the processor.
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

/// Writes the transpose of the `rows x cols` matrix `src` (row stride `src_stride`) into `dst`
/// (row stride `dst_stride`): `dst[c * dst_stride + r] = src[r * src_stride + c]`.
///
/// A plain copy, so every instruction tier gives the same bits. With AVX it moves 8 x 8 tiles
/// through registers instead of storing one strided value at a time.
///
/// # Panics
/// Panics when either buffer is too short for its shape and stride.
pub(crate) fn transpose(
    src: &[f32],
    rows: usize,
    cols: usize,
    src_stride: usize,
    dst: &mut [f32],
    dst_stride: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        src_stride >= cols && dst_stride >= rows,
        "transpose strides too small"
    );
    assert!(
        src.len() >= (rows - 1) * src_stride + cols,
        "transpose source too short"
    );
    assert!(
        dst.len() >= (cols - 1) * dst_stride + rows,
        "transpose destination too short"
    );
    let (full_rows, full_cols) = (rows / 8 * 8, cols / 8 * 8);
    let mut tiled = false;
    #[cfg(target_arch = "x86_64")]
    if tier_allowed(Tier::Avx2) && std::arch::is_x86_feature_detected!("avx") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX (checked above), and the asserts above keep every 8-wide
        // load of rows `r..r + 8` and every 8-wide store of columns `c..c + 8` in bounds, since
        // `r + 8 <= rows` and `c + 8 <= cols`.
        unsafe {
            transpose_tiles_avx(src, src_stride, dst, dst_stride, full_rows, full_cols);
        }
        tiled = true;
    }
    let (done_rows, done_cols) = if tiled {
        (full_rows, full_cols)
    } else {
        (0, 0)
    };
    // Whatever the tiles left: the bottom rows, then the right-hand columns of the tiled rows.
    for r in done_rows..rows {
        for c in 0..cols {
            dst[c * dst_stride + r] = src[r * src_stride + c];
        }
    }
    for r in 0..done_rows {
        for c in done_cols..cols {
            dst[c * dst_stride + r] = src[r * src_stride + c];
        }
    }
}

/// Transposes the top-left `rows x cols` block (both multiples of 8) in 8 x 8 tiles.
///
/// # Safety
/// The CPU must support AVX, and the block must lie inside both buffers as described in
/// [`transpose`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[allow(unsafe_code)]
unsafe fn transpose_tiles_avx(
    src: &[f32],
    src_stride: usize,
    dst: &mut [f32],
    dst_stride: usize,
    rows: usize,
    cols: usize,
) {
    use std::arch::x86_64::*;
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    for c in (0..cols).step_by(8) {
        for r in (0..rows).step_by(8) {
            // SAFETY (for the whole block): rows r..r + 8 and columns c..c + 8 are in bounds.
            unsafe {
                let row = |i: usize| _mm256_loadu_ps(s.add((r + i) * src_stride + c));
                let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
                let (r4, r5, r6, r7) = (row(4), row(5), row(6), row(7));
                let t0 = _mm256_unpacklo_ps(r0, r1);
                let t1 = _mm256_unpackhi_ps(r0, r1);
                let t2 = _mm256_unpacklo_ps(r2, r3);
                let t3 = _mm256_unpackhi_ps(r2, r3);
                let t4 = _mm256_unpacklo_ps(r4, r5);
                let t5 = _mm256_unpackhi_ps(r4, r5);
                let t6 = _mm256_unpacklo_ps(r6, r7);
                let t7 = _mm256_unpackhi_ps(r6, r7);
                let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                let out = |i: usize| d.add((c + i) * dst_stride + r);
                _mm256_storeu_ps(out(0), _mm256_permute2f128_ps::<0x20>(u0, u4));
                _mm256_storeu_ps(out(1), _mm256_permute2f128_ps::<0x20>(u1, u5));
                _mm256_storeu_ps(out(2), _mm256_permute2f128_ps::<0x20>(u2, u6));
                _mm256_storeu_ps(out(3), _mm256_permute2f128_ps::<0x20>(u3, u7));
                _mm256_storeu_ps(out(4), _mm256_permute2f128_ps::<0x31>(u0, u4));
                _mm256_storeu_ps(out(5), _mm256_permute2f128_ps::<0x31>(u1, u5));
                _mm256_storeu_ps(out(6), _mm256_permute2f128_ps::<0x31>(u2, u6));
                _mm256_storeu_ps(out(7), _mm256_permute2f128_ps::<0x31>(u3, u7));
            }
        }
    }
}

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
                serial_product(out, block, rhs, accumulate);
            });
    } else if k <= SPLIT_MAX_INNER || threads == 1 && SERIAL.get() {
        // Products that every thread count computes on one thread per row block (see the
        // branch above), or inside a shard: the same kernel at any thread count.
        serial_product(dst, lhs, rhs, accumulate);
    } else {
        let parallelism = if threads > 1 && m * n * k >= PARALLEL_MIN_MACS {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        gemm_with(dst, lhs, rhs, accumulate, parallelism);
    }
}

/// Computes a product checked by [`matmul`] on the calling thread: with the AVX-512 kernel
/// [`outer_product_avx512`] when the CPU has it, with `gemm` otherwise.
fn serial_product(dst: &mut [f32], lhs: MatRef<'_>, rhs: MatRef<'_>, accumulate: bool) {
    #[cfg(target_arch = "x86_64")]
    if tier_allowed(Tier::Avx512)
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && (rhs.col_stride == 1 || rhs.row_stride == 1)
    {
        let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
        let run = |dst: &mut [f32], b: &[f32], ldb: usize| {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX-512F and VL (checked above). `matmul` checked that the
            // reads of `lhs` stay in its buffer and that `dst` has room for `m x n` values, and
            // `b` has `k` rows of `n` values at stride `ldb >= n`.
            unsafe {
                outer_product_avx512(dst, lhs, b, ldb, m, k, n, accumulate);
            }
        };
        if rhs.col_stride == 1 {
            let needed = (k - 1) * rhs.row_stride + n;
            run(dst, &rhs.data[..needed], rhs.row_stride);
        } else {
            // A transposed view: copy it into row-major order first.
            RHS_SCRATCH.with_borrow_mut(|scratch| {
                scratch.resize(k * n, 0.0);
                transpose(rhs.data, n, k, rhs.col_stride, scratch, n);
                run(dst, scratch, n);
            });
        }
        return;
    }
    gemm_with(dst, lhs, rhs, accumulate, gemm::Parallelism::None);
}

thread_local! {
    /// Row-major copy of a transposed right-hand side for [`serial_product`].
    static RHS_SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Rows of the output tile of [`outer_product_avx512`].
const TILE_ROWS: usize = 6;
/// Columns of its output tile: four 16-lane vectors, so the tile takes 24 registers.
const TILE_COLS: usize = 64;
/// Inner-dimension block: a `TILE_DEPTH x TILE_COLS` panel of the right-hand side (64 KiB)
/// stays in the second-level cache while every row tile reads it.
const TILE_DEPTH: usize = 256;

/// Computes `dst = lhs * b` (or `dst += lhs * b` when `accumulate`) for a row-major `k x n`
/// right-hand side `b` with row stride `ldb`, from outer products of `lhs` values and rows of
/// `b` in 6 x 64 register tiles. Nothing is packed: each value of `lhs` is broadcast in place.
///
/// Every output element is `sum_p lhs[i][p] * b[p][j]` with one fused multiply-add per term, in
/// order of `p`, whatever the tiling.
///
/// # Safety
/// The CPU must support AVX-512F and VL; `dst` must hold `m * n` values, `b` must hold `k` rows of `n`
/// values at stride `ldb`, and every `lhs` element of the `m x k` view must lie in its buffer.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
#[allow(unsafe_code, clippy::too_many_arguments)]
unsafe fn outer_product_avx512(
    dst: &mut [f32],
    lhs: MatRef<'_>,
    b: &[f32],
    ldb: usize,
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    debug_assert!(dst.len() >= m * n && b.len() >= (k - 1) * ldb + n);
    let (a, c, bp) = (lhs.data.as_ptr(), dst.as_mut_ptr(), b.as_ptr());
    let (ars, acs) = (lhs.row_stride, lhs.col_stride);
    for col in (0..n).step_by(TILE_COLS) {
        let width = (n - col).min(TILE_COLS);
        let masks: [__mmask16; 4] = std::array::from_fn(|j| {
            let lanes = width.saturating_sub(16 * j).min(16);
            ((1u32 << lanes) - 1) as __mmask16
        });
        // A block of 49 to 56 columns (such as the 50 topics of the decoder's topic gradient)
        // puts its last 1 to 8 columns in a 256-bit register, whose multiply-adds cost half.
        let narrow = (49..=56).contains(&width);
        for depth in (0..k).step_by(TILE_DEPTH) {
            let depth_end = (depth + TILE_DEPTH).min(k);
            let load_c = accumulate || depth > 0;
            for row in (0..m).step_by(TILE_ROWS) {
                let tile = Tile {
                    a: a.wrapping_add(row * ars),
                    ars,
                    acs,
                    b: bp.wrapping_add(col),
                    ldb,
                    c: c.wrapping_add(row * n + col),
                    ldc: n,
                    depth: depth..depth_end,
                    masks,
                    load_c,
                };
                // SAFETY: the tile covers rows row..row + rows < m, the columns under `masks`
                // (below n) and inner indices below k, all inside the buffers.
                unsafe {
                    match ((m - row).min(TILE_ROWS), narrow) {
                        (6, false) => tile.run::<6>(),
                        (5, false) => tile.run::<5>(),
                        (4, false) => tile.run::<4>(),
                        (3, false) => tile.run::<3>(),
                        (2, false) => tile.run::<2>(),
                        (_, false) => tile.run::<1>(),
                        (6, true) => tile.run_narrow::<6>(),
                        (5, true) => tile.run_narrow::<5>(),
                        (4, true) => tile.run_narrow::<4>(),
                        (3, true) => tile.run_narrow::<3>(),
                        (2, true) => tile.run_narrow::<2>(),
                        (_, true) => tile.run_narrow::<1>(),
                    }
                }
            }
        }
    }
}

/// One register tile of [`outer_product_avx512`]: pointers to its first `lhs` value, `b` value
/// and output value, with their strides.
#[cfg(target_arch = "x86_64")]
struct Tile {
    a: *const f32,
    ars: usize,
    acs: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    depth: std::ops::Range<usize>,
    masks: [std::arch::x86_64::__mmask16; 4],
    load_c: bool,
}

#[cfg(target_arch = "x86_64")]
impl Tile {
    /// [`Tile::run`] for a block of 49 to 56 columns: three 16-lane vectors and a masked
    /// 8-lane one. Each output is the same sum of fused multiply-adds in the same order.
    ///
    /// # Safety
    /// As [`Tile::run`], and the CPU must support AVX-512VL.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    #[allow(unsafe_code)]
    unsafe fn run_narrow<const R: usize>(&self) {
        use std::arch::x86_64::*;
        let m = self.masks;
        // The fourth 16-lane mask has at most 8 lanes here.
        let tail = m[3] as __mmask8;
        // SAFETY: guaranteed by the caller, as stated above.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 3]; R];
            let mut last = [_mm256_setzero_ps(); R];
            if self.load_c {
                for r in 0..R {
                    let out = self.c.add(r * self.ldc);
                    for (j, v) in acc[r].iter_mut().enumerate() {
                        *v = _mm512_maskz_loadu_ps(m[j], out.add(16 * j));
                    }
                    last[r] = _mm256_maskz_loadu_ps(tail, out.add(48));
                }
            }
            for p in self.depth.clone() {
                let brow = self.b.add(p * self.ldb);
                let b0 = _mm512_loadu_ps(brow);
                let b1 = _mm512_loadu_ps(brow.add(16));
                let b2 = _mm512_loadu_ps(brow.add(32));
                let b3 = _mm256_maskz_loadu_ps(tail, brow.add(48));
                let lhs_col = self.a.add(p * self.acs);
                for r in 0..R {
                    let value = *lhs_col.add(r * self.ars);
                    let x = _mm512_set1_ps(value);
                    acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
                    acc[r][2] = _mm512_fmadd_ps(x, b2, acc[r][2]);
                    last[r] = _mm256_fmadd_ps(_mm256_set1_ps(value), b3, last[r]);
                }
            }
            for r in 0..R {
                let out = self.c.add(r * self.ldc);
                for (j, &v) in acc[r].iter().enumerate() {
                    _mm512_storeu_ps(out.add(16 * j), v);
                }
                _mm256_mask_storeu_ps(out.add(48), tail, last[r]);
            }
        }
    }

    /// Computes `R` output rows of the tile over its inner-dimension block.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, and the tile's `R` rows, masked columns and inner block
    /// must lie inside the buffers the pointers come from.
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(unsafe_code)]
    unsafe fn run<const R: usize>(&self) {
        use std::arch::x86_64::*;
        let m = self.masks;
        // SAFETY: guaranteed by the caller, as stated above.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 4]; R];
            if self.load_c {
                for (r, acc_row) in acc.iter_mut().enumerate() {
                    let out = self.c.add(r * self.ldc);
                    for (j, v) in acc_row.iter_mut().enumerate() {
                        *v = _mm512_maskz_loadu_ps(m[j], out.add(16 * j));
                    }
                }
            }
            for p in self.depth.clone() {
                let brow = self.b.add(p * self.ldb);
                let b0 = _mm512_maskz_loadu_ps(m[0], brow);
                let b1 = _mm512_maskz_loadu_ps(m[1], brow.add(16));
                let b2 = _mm512_maskz_loadu_ps(m[2], brow.add(32));
                let b3 = _mm512_maskz_loadu_ps(m[3], brow.add(48));
                let lhs_col = self.a.add(p * self.acs);
                for (r, acc_row) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*lhs_col.add(r * self.ars));
                    acc_row[0] = _mm512_fmadd_ps(x, b0, acc_row[0]);
                    acc_row[1] = _mm512_fmadd_ps(x, b1, acc_row[1]);
                    acc_row[2] = _mm512_fmadd_ps(x, b2, acc_row[2]);
                    acc_row[3] = _mm512_fmadd_ps(x, b3, acc_row[3]);
                }
            }
            for (r, acc_row) in acc.iter().enumerate() {
                let out = self.c.add(r * self.ldc);
                for (j, &v) in acc_row.iter().enumerate() {
                    _mm512_mask_storeu_ps(out.add(16 * j), m[j], v);
                }
            }
        }
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

    /// `lhs * rhs` in f64 for row-major or transposed views.
    fn reference_product(lhs: MatRef<'_>, rhs: MatRef<'_>) -> Vec<f64> {
        let at = |v: MatRef<'_>, r: usize, c: usize| {
            f64::from(v.data[r * v.row_stride + c * v.col_stride])
        };
        let mut out = vec![0.0; lhs.rows * rhs.cols];
        for i in 0..lhs.rows {
            for j in 0..rhs.cols {
                out[i * rhs.cols + j] = (0..lhs.cols).map(|p| at(lhs, i, p) * at(rhs, p, j)).sum();
            }
        }
        out
    }

    #[test]
    fn products_match_the_definition_on_every_tier() {
        // Shapes cover partial register tiles (rows not a multiple of 6, columns not a multiple
        // of 64), several inner-dimension blocks, transposed views and accumulation.
        let shapes = [
            (1, 1, 1),
            (7, 3, 17),
            (13, 50, 200),
            (6, 600, 64),
            (20, 257, 51),
            (128, 40, 100),
            (9, 300, 50),
            (5, 7, 56),
            (4, 9, 113),
        ];
        for &(m, k, n) in &shapes {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 32.0)
                .collect();
            let start: Vec<f32> = (0..m * n).map(|i| (i % 7) as f32 - 3.0).collect();
            let views = [
                (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n)),
                (
                    MatRef::row_major(&a, k, m).t(),
                    MatRef::row_major(&b, n, k).t(),
                ),
            ];
            for (lhs, rhs) in views {
                let expected = reference_product(lhs, rhs);
                for limit in [Tier::Portable, Tier::Avx2, Tier::Avx512] {
                    for accumulate in [false, true] {
                        let mut dst = start.clone();
                        with_tier_limit(limit, || {
                            serial(|| matmul(&mut dst, lhs, rhs, accumulate))
                        });
                        for (i, (&got, &want)) in dst.iter().zip(&expected).enumerate() {
                            let want = want + if accumulate { f64::from(start[i]) } else { 0.0 };
                            let tolerance = 1e-5 * (k as f64).sqrt() * want.abs().max(1.0);
                            assert!(
                                (f64::from(got) - want).abs() <= tolerance,
                                "{m}x{k}x{n} on {limit:?} (accumulate {accumulate}) at {i}: {got} against {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn transpose_matches_the_definition_on_every_tier() {
        // Shapes with and without whole 8 x 8 tiles, and strides wider than the rows.
        for &(rows, cols, src_stride, dst_stride) in &[
            (51, 203, 211, 50 + 9),
            (8, 8, 8, 8),
            (3, 17, 17, 3),
            (16, 5, 7, 16),
            (0, 4, 4, 1),
        ] {
            let src: Vec<f32> = (0..rows.max(1) * src_stride)
                .map(|i| i as f32 * 0.5 - 7.0)
                .collect();
            for limit in [Tier::Portable, Tier::Avx2, Tier::Avx512] {
                let mut dst = vec![f32::NAN; cols * dst_stride + rows];
                with_tier_limit(limit, || {
                    transpose(&src, rows, cols, src_stride, &mut dst, dst_stride);
                });
                for r in 0..rows {
                    for c in 0..cols {
                        assert_eq!(
                            dst[c * dst_stride + r].to_bits(),
                            src[r * src_stride + c].to_bits(),
                            "{rows}x{cols} at ({r}, {c}) on {limit:?}"
                        );
                    }
                }
                // Padding between destination rows is left alone.
                if dst_stride > rows && cols > 0 {
                    assert!(
                        dst[rows].is_nan(),
                        "{rows}x{cols} wrote past a row on {limit:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn nonpositive_exp_matches_fast_exp_bitwise() {
        let mut x = 0.0f32;
        while x > -100.0 {
            for v in [x, x - 1e-3, -x.abs() * 0.37] {
                assert_eq!(
                    fast_exp_nonpositive(v).to_bits(),
                    fast_exp(v).to_bits(),
                    "at {v}"
                );
            }
            x -= 0.013;
        }
        for v in [
            -0.0,
            f32::MIN,
            f32::NEG_INFINITY,
            -87.336_54,
            -87.336_55,
            -1e-30,
        ] {
            assert_eq!(
                fast_exp_nonpositive(v).to_bits(),
                fast_exp(v).to_bits(),
                "at {v}"
            );
        }
        assert!(fast_exp_nonpositive(f32::NAN).is_nan());
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
