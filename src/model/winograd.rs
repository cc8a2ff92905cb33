//! A 3×3, stride-1, padding-1 convolution for the CPU by Winograd's minimal
//! filtering F(2×2, 3×3) (Lavin & Gray, 2016).
//!
//! Why: the 3×3 convolutions of a DenseNet layer (128 → 32 channels) do
//! about half of DenseNet-121's arithmetic. F(2×2, 3×3) computes each 2×2
//! output tile from a 4×4 input tile with 16 multiplications per channel
//! pair instead of 36, a 2.25× saving. The transforms of F(2×2, 3×3) are
//! additions and subtractions only (the weight transform's halves are
//! exact), so the result is as accurate as the direct sum.
//!
//! How: the output's 2×2 tiles are split into chunks, one rayon task each,
//! small enough that the chunk's transformed tiles stay in the core's
//! cache. Per chunk:
//! 1. input transform `V = Bᵀ d B`, stored `[16][in][tiles]`: for every
//!    channel and tile row, the four input rows are combined (`Bᵀ`) over
//!    whole contiguous rows, split into even and odd columns, and combined
//!    again (`B`) as element-wise operations over the tiles — loops over a
//!    contiguous dimension that the compiler vectorises, where a
//!    tile-by-tile 4×4 transform stays scalar (a first, scalar attempt
//!    spent the whole saving on it);
//! 2. sixteen matrix products `M[ξ] = U[ξ] · V[ξ]` (`[out × in] · [in ×
//!    tiles]`), one per position ξ of the 4×4 transformed tile, with the
//!    `gemm` crate candle itself uses; `U = G g Gᵀ` is computed once, at
//!    load;
//! 3. output transform `Y = Aᵀ M A`, again element-wise over the tiles, and
//!    the 2×2 results are scattered into the output planes.

use std::cell::Cell;
use std::ops::Range;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Positions in a transformed 4×4 tile.
const XI: usize = 16;

/// Transformed tiles a chunk aims at, for `in + out` channels of 128 + 32:
/// its `V` and `M` then take about 1 MB, within the L2 cache of current
/// server cores.
const CHUNK_BYTES: usize = 1 << 20;

/// The weights of one 3×3 convolution, transformed for F(2×2, 3×3).
#[derive(Debug, Clone)]
pub struct Winograd3x3 {
    /// `U`, `[16][out][in]`.
    weights: Vec<f32>,
    in_channels: usize,
    out_channels: usize,
}

impl Winograd3x3 {
    /// From a `[out, in, 3, 3]` convolution weight.
    pub fn new(weight: &Tensor) -> Result<Winograd3x3> {
        let (out_channels, in_channels, kh, kw) = weight.dims4()?;
        if (kh, kw) != (3, 3) {
            candle_core::bail!("Winograd3x3 needs a 3×3 kernel, got {kh}×{kw}");
        }
        let g: Vec<f64> = weight
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1()?;
        // G, 4×3: rows [1 0 0], [½ ½ ½], [½ -½ ½], [0 0 1].
        const G: [[f64; 3]; 4] = [
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.5, -0.5, 0.5],
            [0.0, 0.0, 1.0],
        ];
        let mut weights = vec![0f32; XI * out_channels * in_channels];
        for o in 0..out_channels {
            for c in 0..in_channels {
                let kernel = &g[(o * in_channels + c) * 9..][..9];
                for i in 0..4 {
                    for j in 0..4 {
                        let mut u = 0.0;
                        for (k, g_ik) in G[i].iter().enumerate() {
                            for (l, g_jl) in G[j].iter().enumerate() {
                                u += g_ik * kernel[k * 3 + l] * g_jl;
                            }
                        }
                        weights[((i * 4 + j) * out_channels + o) * in_channels + c] = u as f32;
                    }
                }
            }
        }
        Ok(Winograd3x3 {
            weights,
            in_channels,
            out_channels,
        })
    }

    /// Convolves a `[1, in, h, w]` f32 input on the CPU.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1_no_bwd(self)
    }
}

impl CustomOp1 for Winograd3x3 {
    fn name(&self) -> &'static str {
        "winograd-3x3"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (batch, channels, height, width) = layout.shape().dims4()?;
        if batch != 1 || channels != self.in_channels {
            candle_core::bail!(
                "Winograd3x3 wants [1, {}, h, w], got {:?}",
                self.in_channels,
                layout.shape()
            );
        }
        let CpuStorage::F32(values) = storage else {
            candle_core::bail!("Winograd3x3 supports f32 only");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("Winograd3x3 needs a contiguous input");
        };
        let input = &values[start..end];
        let grid = TileGrid::new(height, width);
        let mut out = vec![0f32; self.out_channels * height * width];
        let target = SharedOutput(out.as_mut_ptr());
        let chunks = grid.chunks(self.in_channels + self.out_channels);
        (0..chunks.count).into_par_iter().for_each(|chunk| {
            let first = chunk * chunks.size;
            let last = (first + chunks.size).min(grid.tiles());
            if first < last {
                // SAFETY: `out` outlives this scope, and chunks cover
                // disjoint tiles, hence disjoint output pixels.
                unsafe { self.run_chunk(input, &grid, first..last, &target) };
            }
        });
        Ok((
            CpuStorage::F32(out),
            Shape::from((1, self.out_channels, height, width)),
        ))
    }
}

/// The output planes, written by several tasks at once at disjoint pixels.
struct SharedOutput(*mut f32);

// SAFETY: tasks write through the pointer only at pixels of their own
// tiles (see `run_chunk`).
unsafe impl Sync for SharedOutput {}

/// The 2×2 output tiles of an `h × w` plane, numbered row by row.
struct TileGrid {
    height: usize,
    width: usize,
    rows: usize,
    columns: usize,
}

/// A split of the tiles into `count` runs of `size` consecutive tiles.
struct Chunks {
    count: usize,
    size: usize,
}

impl TileGrid {
    fn new(height: usize, width: usize) -> TileGrid {
        TileGrid {
            height,
            width,
            rows: height.div_ceil(2),
            columns: width.div_ceil(2),
        }
    }

    fn tiles(&self) -> usize {
        self.rows * self.columns
    }

    /// Chunks of about `CHUNK_BYTES` of transformed tiles, as many as a
    /// multiple of the thread count so that every thread gets as much.
    fn chunks(&self, channels: usize) -> Chunks {
        let per_chunk = (CHUNK_BYTES / (XI * channels * 4)).max(8);
        let threads = rayon::current_num_threads().max(1);
        let count = self.tiles().div_ceil(per_chunk).div_ceil(threads) * threads;
        Chunks {
            count,
            size: self.tiles().div_ceil(count),
        }
    }

    /// The runs of tiles within one tile row that `range` covers, as
    /// (tile row, first column, columns).
    fn segments(&self, range: Range<usize>) -> impl Iterator<Item = (usize, usize, usize)> {
        let columns = self.columns;
        let mut tile = range.start;
        std::iter::from_fn(move || {
            (tile < range.end).then(|| {
                let (row, column) = (tile / columns, tile % columns);
                let count = (columns - column).min(range.end - tile);
                tile += count;
                (row, column, count)
            })
        })
    }
}

impl Winograd3x3 {
    /// Transforms, multiplies and writes back the tiles in `range`.
    ///
    /// # Safety
    /// `out` must point to `out_channels` planes of `grid`'s size, and no
    /// other task may write to the pixels of these tiles meanwhile.
    unsafe fn run_chunk(
        &self,
        input: &[f32],
        grid: &TileGrid,
        range: Range<usize>,
        out: &SharedOutput,
    ) {
        let (cin, cout) = (self.in_channels, self.out_channels);
        // Rows of V and M are padded by a block of lanes: the output
        // transform reads whole blocks.
        let stride = range.len() + LANES;
        let line = 2 * grid.columns + 2;
        let mut scratch = SCRATCH.take();
        scratch.resize(XI * (cin + cout) * stride + 12 * line, 0.0);
        let (v, rest) = scratch.split_at_mut(XI * cin * stride);
        let (m, lines) = rest.split_at_mut(XI * cout * stride);
        let segments = || {
            grid.segments(range.clone())
                .scan(0, |offset, (row, column, count)| {
                    let at = Placement {
                        row,
                        column,
                        count,
                        offset: *offset,
                        stride,
                    };
                    *offset += count;
                    Some(at)
                })
        };
        for at in segments() {
            input_transform(input, grid, cin, &at, v, lines);
        }
        for (xi, m_xi) in m.chunks_exact_mut(cout * stride).enumerate() {
            let u_xi = &self.weights[xi * cout * cin..][..cout * cin];
            let v_xi = &v[xi * cin * stride..][..cin * stride];
            // SAFETY: M[ξ]ᵀ = V[ξ]ᵀ · U[ξ]ᵀ, [tiles × cout] = [tiles × cin]
            // · [cin × cout], all column-major (the tiles, then the input
            // channels, are contiguous), all within their slices. This
            // orientation suits gemm's kernels better than U · V with its
            // 32-row result.
            unsafe {
                gemm::gemm(
                    range.len(),
                    cout,
                    cin,
                    m_xi.as_mut_ptr(),
                    stride as isize,
                    1,
                    false,
                    v_xi.as_ptr(),
                    stride as isize,
                    1,
                    u_xi.as_ptr(),
                    cin as isize,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                )
            };
        }
        for at in segments() {
            // SAFETY: passed on from the caller.
            unsafe { output_transform(m, grid, cout, &at, out) };
        }
        SCRATCH.set(scratch);
    }
}

thread_local! {
    /// Per-thread buffers for `V`, `M` and the input lines of a chunk,
    /// kept between calls.
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Tiles processed together by the element-wise transform loops; fixed
/// so that the compiler unrolls and vectorises them.
const LANES: usize = 16;

/// Where a run of tiles within one tile row lies: `count` tiles from tile
/// (`row`, `column`) on, kept in columns `offset …` of a chunk's
/// `[16][channels][stride]` buffers.
struct Placement {
    row: usize,
    column: usize,
    count: usize,
    offset: usize,
    stride: usize,
}

/// Runs `$body` compiled for AVX2 and FMA where the CPU has them: the
/// crate is otherwise built for baseline x86-64 (4-lane SSE2).
macro_rules! with_avx2 {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $name($($arg: $ty),*) {
            // SAFETY: as for `$body`.
            unsafe { $body($($arg),*) }
        }
    };
}

/// `V = Bᵀ d B` for the tiles `at`, every input channel, into `v`;
/// `lines` is scratch space for twelve lines of `2 · columns + 2`.
fn input_transform(
    input: &[f32],
    grid: &TileGrid,
    channels: usize,
    at: &Placement,
    v: &mut [f32],
    lines: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { input_transform_avx2(input, grid, channels, at, v, lines) };
    }
    // SAFETY: no unsafe preconditions.
    unsafe { input_transform_any(input, grid, channels, at, v, lines) }
}

with_avx2!(input_transform_avx2, input_transform_any, (input: &[f32], grid: &TileGrid, channels: usize, at: &Placement, v: &mut [f32], lines: &mut [f32]));

/// `Bᵀ` maps `(x0, x1, x2, x3)` to `(x0 - x2, x1 + x2, x2 - x1, x1 - x3)`.
/// Tile `i` spans padded columns `2i … 2i + 3`. Per channel: `Bᵀ` down
/// the four input rows (`s = Bᵀ d`, over whole contiguous rows); `s` split
/// into even and odd padded columns; `B` across, where every term is then
/// a contiguous run over the tiles. Each is a simple loop the compiler
/// vectorises.
#[inline(always)]
unsafe fn input_transform_any(
    input: &[f32],
    grid: &TileGrid,
    channels: usize,
    at: &Placement,
    v: &mut [f32],
    lines: &mut [f32],
) {
    let (height, width) = (grid.height, grid.width);
    let plane = height * width;
    let count = at.count;
    // Padded columns first … first + span - 1; padded column p is input
    // column p - 1, and the columns x_lo … x_hi - 1 of those exist.
    let (first, span) = (2 * at.column, 2 * count + 2);
    let x_lo = first.saturating_sub(1);
    let x_hi = (first + span - 1).min(width);
    let q_lo = x_lo + 1 - first;
    let n = lines.len() / 12;
    let mut lines = lines.chunks_exact_mut(n);
    let mut s: [&mut [f32]; 4] =
        std::array::from_fn(|_| &mut lines.next().expect("12 lines")[..span]);
    let even: [&mut [f32]; 4] =
        std::array::from_fn(|_| &mut lines.next().expect("12 lines")[..=count]);
    let odd: [&mut [f32]; 4] =
        std::array::from_fn(|_| &mut lines.next().expect("12 lines")[..=count]);
    for line in &mut s {
        line[..q_lo].fill(0.0);
        line[q_lo + x_hi - x_lo..].fill(0.0);
    }
    for channel in 0..channels {
        let source = &input[channel * plane..][..plane];
        // Padded row 2·row + k is input row 2·row + k - 1.
        let row = |k: usize| {
            let y = (2 * at.row + k).wrapping_sub(1);
            (y < height).then(|| &source[y * width + x_lo..y * width + x_hi])
        };
        {
            let [s0, s1, s2, s3] = &mut s;
            let len = x_hi - x_lo;
            let (s0, s1, s2, s3) = (
                &mut s0[q_lo..][..len],
                &mut s1[q_lo..][..len],
                &mut s2[q_lo..][..len],
                &mut s3[q_lo..][..len],
            );
            match (row(0), row(1), row(2), row(3)) {
                (Some(d0), Some(d1), Some(d2), Some(d3)) => {
                    for i in 0..len {
                        s0[i] = d0[i] - d2[i];
                        s1[i] = d1[i] + d2[i];
                        s2[i] = d2[i] - d1[i];
                        s3[i] = d1[i] - d3[i];
                    }
                }
                // At the top or bottom edge: missing rows are zeros.
                (d0, d1, d2, d3) => {
                    let at = |d: Option<&[f32]>, i: usize| d.map_or(0.0, |d| d[i]);
                    for i in 0..len {
                        let (x0, x1, x2, x3) = (at(d0, i), at(d1, i), at(d2, i), at(d3, i));
                        s0[i] = x0 - x2;
                        s1[i] = x1 + x2;
                        s2[i] = x2 - x1;
                        s3[i] = x1 - x3;
                    }
                }
            }
        }
        for a in 0..4 {
            for ((pair, e), o) in s[a]
                .chunks_exact(2)
                .zip(even[a].iter_mut())
                .zip(odd[a].iter_mut())
            {
                *e = pair[0];
                *o = pair[1];
            }
        }
        let base = channel * at.stride + at.offset;
        let mut planes = v.chunks_exact_mut(channels * at.stride);
        for a in 0..4 {
            let (e, o) = (&even[a][..], &odd[a][..]);
            let mut next = || &mut planes.next().expect("16 planes")[base..][..count];
            combine(next(), &e[..count], &e[1..], |x0, x2| x0 - x2);
            combine(next(), &o[..count], &e[1..], |x1, x2| x1 + x2);
            combine(next(), &e[1..], &o[..count], |x2, x1| x2 - x1);
            combine(next(), &o[..count], &o[1..], |x1, x3| x1 - x3);
        }
    }
}

/// `target[i] = f(x[i], y[i])`.
#[inline(always)]
fn combine(target: &mut [f32], x: &[f32], y: &[f32], f: impl Fn(f32, f32) -> f32) {
    for ((t, &x), &y) in target.iter_mut().zip(x).zip(y) {
        *t = f(x, y);
    }
}

/// `Y = Aᵀ M A` for the tiles `at`, every output channel, from `m` into
/// the output planes.
///
/// # Safety
/// `out` must point to `channels` planes of `grid`'s size that no one else
/// writes at these tiles' pixels meanwhile.
unsafe fn output_transform(
    m: &[f32],
    grid: &TileGrid,
    channels: usize,
    at: &Placement,
    out: &SharedOutput,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA; the rest is the caller's.
        return unsafe { output_transform_avx2(m, grid, channels, at, out) };
    }
    // SAFETY: the caller's promise.
    unsafe { output_transform_any(m, grid, channels, at, out) }
}

with_avx2!(output_transform_avx2, output_transform_any, (m: &[f32], grid: &TileGrid, channels: usize, at: &Placement, out: &SharedOutput));

/// `Aᵀ` maps `(x0, x1, x2, x3)` to `(x0 + x1 + x2, x1 - x2 - x3)`.
#[inline(always)]
unsafe fn output_transform_any(
    m: &[f32],
    grid: &TileGrid,
    channels: usize,
    at: &Placement,
    out: &SharedOutput,
) {
    let (height, width) = (grid.height, grid.width);
    let plane = height * width;
    let count = at.count;
    for channel in 0..channels {
        let base = channel * at.stride + at.offset;
        for start in (0..count).step_by(LANES) {
            // Whole blocks: past the run's end they read the next run's
            // columns or the row's padding, and those lanes are dropped.
            let tile: [&[f32; LANES]; XI] = std::array::from_fn(|xi| {
                m[xi * channels * at.stride + base + start..][..LANES]
                    .try_into()
                    .expect("LANES")
            });
            // y[a][i]: output row a of tile i, its two pixels interleaved.
            let mut y = [[0f32; 2 * LANES]; 2];
            for i in 0..LANES {
                let mut q = [[0f32; 4]; 2];
                for j in 0..4 {
                    let (m0, m1, m2, m3) =
                        (tile[j][i], tile[4 + j][i], tile[8 + j][i], tile[12 + j][i]);
                    q[0][j] = m0 + m1 + m2;
                    q[1][j] = m1 - m2 - m3;
                }
                for a in 0..2 {
                    y[a][2 * i] = q[a][0] + q[a][1] + q[a][2];
                    y[a][2 * i + 1] = q[a][1] - q[a][2] - q[a][3];
                }
            }
            let x0 = 2 * (at.column + start);
            let pixels = (2 * LANES.min(count - start)).min(width - x0);
            for (a, y_a) in y.iter().enumerate() {
                let oy = 2 * at.row + a;
                if oy >= height {
                    break;
                }
                // SAFETY: pixels (oy, x0 … x0 + pixels - 1) lie in this
                // channel's plane and belong to these tiles.
                let line = unsafe {
                    std::slice::from_raw_parts_mut(
                        out.0.add(channel * plane + oy * width + x0),
                        pixels,
                    )
                };
                if pixels == 2 * LANES {
                    let line: &mut [f32; 2 * LANES] = line.try_into().expect("2 LANES");
                    *line = *y_a;
                } else {
                    line.copy_from_slice(&y_a[..pixels]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module};
    use candle_nn::{Conv2d, Conv2dConfig};

    fn max_diff_to_candle(out: usize, cin: usize, height: usize, width: usize) -> f32 {
        let device = Device::Cpu;
        let weight = Tensor::randn(0f32, 0.1, (out, cin, 3, 3), &device).unwrap();
        let input = Tensor::randn(0f32, 1.0, (1, cin, height, width), &device).unwrap();
        let reference = Conv2d::new(
            weight.clone(),
            None,
            Conv2dConfig {
                padding: 1,
                ..Default::default()
            },
        )
        .forward(&input)
        .unwrap();
        let ours = Winograd3x3::new(&weight).unwrap().forward(&input).unwrap();
        assert_eq!(ours.dims(), reference.dims());
        ours.sub(&reference)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn matches_candles_convolution_on_densenet_shapes() {
        for side in [56, 28, 14, 7] {
            let diff = max_diff_to_candle(32, 128, side, side);
            assert!(diff < 1e-4, "{side}×{side}: {diff}");
        }
    }

    #[test]
    fn matches_candles_convolution_on_odd_and_small_planes() {
        for (height, width) in [(1, 1), (1, 2), (2, 1), (3, 5), (6, 7), (9, 4), (31, 33)] {
            let diff = max_diff_to_candle(5, 4, height, width);
            assert!(diff < 1e-4, "{height}×{width}: {diff}");
        }
    }
}
