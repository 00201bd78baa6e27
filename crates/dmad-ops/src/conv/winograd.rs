//! Winograd F(2x2, 3x3) for 3x3 convolutions at stride 1 (Lavin & Gray, "Fast Algorithms for
//! Convolutional Neural Networks", arXiv:1509.09308), forward and backward.
//!
//! Each 2x2 block of outputs ("tile") is `A^T [(G g G^T) o (B^T d B)] A`, where `d` is the 4x4
//! input patch under the tile and `g` the 3x3 kernel: 16 multiplications instead of 36. Summed
//! over input channels, the 16 elementwise products become 16 matrix products
//! `M[xi] = U[xi] V[xi]` (`U`: `cout x cin`, `V`: `cin x tiles`), done by `gemm` on blocks of
//! tiles that stay in L2.
//!
//! - The input gradient is the forward convolution of `dy` with the flipped, transposed kernel
//!   and padding `2 - p`, so it runs through the same code.
//! - The weight gradient follows from the same bilinear identity read the other way (the
//!   transposition principle): `dW = G^T [sum over tiles (A e A^T) o (B^T d B)] G`, where `e` is
//!   the 2x2 tile of `dy`; the sum over tiles is a matrix product `S[xi] += E[xi] V[xi]^T` of
//!   `cout x tiles` by `tiles x cin`. Partial sums are kept per fixed chunk of tile blocks and
//!   added in chunk order, so the result does not depend on the thread count or schedule.
//!
//! Transforms (`xi = 4 i + j`, rows `i`, columns `j`):
//! `B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]`, `G = [[1,0,0],[.5,.5,.5],[.5,-.5,.5],
//! [0,0,1]]`, `A^T = [[1,1,1,0],[0,1,-1,-1]]`.

use std::cell::RefCell;

use rayon::prelude::*;

use super::Geom;
use crate::util::{gemm, Mat, SendPtr};
use dmad_core::alloc::zeroed;

/// Bytes of transformed input (16 values per tile and channel) per block of tiles.
const BLOCK_BYTES: usize = 256 * 1024;

/// The number of partial weight gradients (fixed, so that the summation order is the same for
/// every thread count and schedule; more than the im2col path's 8, so that a thread that the
/// machine's load holds back leaves less work behind).
const DW_CHUNKS: usize = 16;

/// Fewer channels per group than this go through im2col (the transforms would dominate).
const MIN_CHANNELS: usize = 8;

impl Geom {
    /// Whether the Winograd path applies: a 3x3 kernel at stride 1, no dilation, padding at
    /// most 2 (so that the input gradient is a convolution with padding `2 - p`), and enough
    /// channels per group.
    pub(super) fn winograd_ok(&self) -> bool {
        self.kh == 3
            && self.kw == 3
            && self.sh == 1
            && self.sw == 1
            && self.dh == 1
            && self.dw == 1
            && self.ph <= 2
            && self.pw <= 2
            && self.cin_g() >= MIN_CHANNELS
            && self.cout_g() >= MIN_CHANNELS
    }

    /// Tile rows and columns of the output.
    fn wino_tiles(&self) -> (usize, usize) {
        (self.ho.div_ceil(2), self.wo.div_ceil(2))
    }

    /// Tiles per block.
    fn wino_block(&self) -> usize {
        let (th, tw) = self.wino_tiles();
        let per_tile = 16 * 4 * self.cin_g().max(self.cout_g());
        (BLOCK_BYTES / per_tile).clamp(1, th * tw)
    }

    /// The geometry of the input gradient as a forward convolution of `dy`.
    fn wino_transposed(&self) -> Geom {
        Geom {
            n: self.n,
            cin: self.cout,
            h: self.ho,
            w: self.wo,
            cout: self.cin,
            ph: 2 - self.ph,
            pw: 2 - self.pw,
            ho: self.h,
            wo: self.w,
            ..*self
        }
    }

    /// `U = G g G^T` for every kernel, laid out `[group][xi][cout_g][cin_g]`.
    pub(super) fn wino_weights(&self, wt: &[f32]) -> Vec<f32> {
        let (cin_g, cout_g) = (self.cin_g(), self.cout_g());
        let mut u = vec![0.0f32; self.groups * 16 * cout_g * cin_g];
        for grp in 0..self.groups {
            for co in 0..cout_g {
                for ci in 0..cin_g {
                    let g = &wt[((grp * cout_g + co) * cin_g + ci) * 9..][..9];
                    // G g: 4 x 3.
                    let mut gg = [[0.0f32; 3]; 4];
                    for c in 0..3 {
                        let (a, b, d) = (g[c], g[3 + c], g[6 + c]);
                        gg[0][c] = a;
                        gg[1][c] = 0.5 * (a + b + d);
                        gg[2][c] = 0.5 * (a - b + d);
                        gg[3][c] = d;
                    }
                    for (i, row) in gg.iter().enumerate() {
                        let (a, b, d) = (row[0], row[1], row[2]);
                        let vals = [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d];
                        for (j, v) in vals.into_iter().enumerate() {
                            u[((grp * 16 + i * 4 + j) * cout_g + co) * cin_g + ci] = v;
                        }
                    }
                }
            }
        }
        u
    }

    /// Decodes `job` (one of `n * groups * blocks`) into its batch entry, group and block of
    /// tiles, sizes the scratch for the block and writes the block's transformed input tiles
    /// (`B^T d B` of `x`, every input channel of the group) into `s.v`: the set-up shared by
    /// the forward pass and the weight gradient.
    #[inline(always)]
    fn load_block(&self, x: &[f32], job: usize, blocks: usize, s: &mut Scratch) -> Block {
        let (cin_g, cout_g, hw) = (self.cin_g(), self.cout_g(), self.hw());
        let (th, tw) = self.wino_tiles();
        let tb = self.wino_block();
        let (ng, blk) = (job / blocks, job % blocks);
        let (b, grp) = (ng / self.groups, ng % self.groups);
        let (t0, t1) = (blk * tb, ((blk + 1) * tb).min(th * tw));
        let nt = t1 - t0;
        s.v.resize(16 * cin_g * nt, 0.0);
        s.m.resize(16 * cout_g * nt, 0.0);
        let xg = &x[(b * self.cin + grp * cin_g) * hw..][..cin_g * hw];
        for ci in 0..cin_g {
            let plane = &xg[ci * hw..][..hw];
            for seg in segments(t0, t1, tw) {
                self.input_tiles(plane, seg, &mut s.t, &mut s.v[ci * nt..], nt);
            }
        }
        Block { b, grp, t0, t1, nt }
    }

    /// The forward convolution through Winograd; `u` from [`Geom::wino_weights`].
    pub(super) fn wino_forward(&self, x: &[f32], u: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let mut out = zeroed(self.n * self.cout * self.p());
        let (cin_g, cout_g, p) = (self.cin_g(), self.cout_g(), self.p());
        let (th, tw) = self.wino_tiles();
        let tb = self.wino_block();
        let blocks = (th * tw).div_ceil(tb);
        let jobs = self.n * self.groups * blocks;
        let outp = SendPtr(out.as_mut_ptr());
        let run = |job: usize, s: &mut Scratch, parallel: bool| {
            let Block { b, grp, t0, t1, nt } = self.load_block(x, job, blocks, s);
            for xi in 0..16 {
                let lhs = Mat {
                    ptr: u[(grp * 16 + xi) * cout_g * cin_g..].as_ptr(),
                    rs: cin_g,
                    cs: 1,
                };
                let rhs = Mat {
                    ptr: s.v[xi * cin_g * nt..].as_ptr(),
                    rs: nt,
                    cs: 1,
                };
                let dst = s.m[xi * cout_g * nt..].as_mut_ptr();
                // SAFETY: the views lie inside u, v and m (sizes set above).
                unsafe { gemm(cout_g, nt, cin_g, dst, nt, false, lhs, rhs, parallel) };
            }
            for co in 0..cout_g {
                let c = b * self.cout + grp * cout_g + co;
                let bv = bias.map_or(0.0, |bias| bias[grp * cout_g + co]);
                // SAFETY: channel c's plane lies inside `out`, and this job alone writes the
                // pixels of its tiles in it.
                let plane = unsafe { outp.get().add(c * p) };
                for seg in segments(t0, t1, tw) {
                    // SAFETY: as above.
                    unsafe {
                        self.output_tiles(&s.m[co * nt..], nt, cout_g, seg, bv, &mut s.t, plane)
                    };
                }
            }
        };
        if jobs >= rayon::current_num_threads() {
            (0..jobs)
                .into_par_iter()
                .for_each(|job| with_scratch(|s| run(job, s, false)));
        } else {
            with_scratch(|s| (0..jobs).for_each(|job| run(job, s, true)));
        }
        out
    }

    /// Returns `(dx, dweight)` through Winograd.
    pub(super) fn wino_backward(&self, x: &[f32], wt: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (cin_g, cout_g) = (self.cin_g(), self.cout_g());
        // Input gradient: dy convolved with the flipped kernel, input and output channels
        // swapped within each group.
        let tg = self.wino_transposed();
        let mut flipped = vec![0.0f32; wt.len()];
        for grp in 0..self.groups {
            for co in 0..cout_g {
                for ci in 0..cin_g {
                    let src = &wt[((grp * cout_g + co) * cin_g + ci) * 9..][..9];
                    let dst = &mut flipped[((grp * cin_g + ci) * cout_g + co) * 9..][..9];
                    for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                        *d = *s;
                    }
                }
            }
        }
        let u = tg.wino_weights(&flipped);
        // Both passes at once, so that threads done with one take work from the other.
        rayon::join(
            || tg.wino_forward(dy, &u, None),
            || self.wino_weight_grad(x, dy),
        )
    }

    /// The weight gradient: `S[xi] += E[xi] V[xi]^T` over tile blocks in fixed chunks, then
    /// `dW = G^T S G`.
    fn wino_weight_grad(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let (cin_g, cout_g, p) = (self.cin_g(), self.cout_g(), self.p());
        let (th, tw) = self.wino_tiles();
        let tb = self.wino_block();
        let blocks = (th * tw).div_ceil(tb);
        let jobs = self.n * self.groups * blocks;
        let slen = self.groups * 16 * cout_g * cin_g;
        let job = |job: usize, acc: &mut [f32], s: &mut Scratch| {
            let Block { b, grp, t0, t1, nt } = self.load_block(x, job, blocks, s);
            let dyg = &dy[(b * self.cout + grp * cout_g) * p..][..cout_g * p];
            for co in 0..cout_g {
                let plane = &dyg[co * p..][..p];
                for seg in segments(t0, t1, tw) {
                    self.grad_tiles(plane, seg, &mut s.t, &mut s.m[co * nt..], nt);
                }
            }
            for xi in 0..16 {
                let lhs = Mat {
                    ptr: s.m[xi * cout_g * nt..].as_ptr(),
                    rs: nt,
                    cs: 1,
                };
                let rhs = Mat {
                    ptr: s.v[xi * cin_g * nt..].as_ptr(),
                    rs: 1,
                    cs: nt,
                };
                let dst = acc[(grp * 16 + xi) * cout_g * cin_g..].as_mut_ptr();
                // SAFETY: the views lie inside m, v and acc; acc is this chunk's own.
                unsafe { gemm(cout_g, cin_g, nt, dst, cin_g, true, lhs, rhs, false) };
            }
        };
        // Fixed chunks of jobs, each with its own accumulator, summed in chunk order.
        let per = jobs.div_ceil(DW_CHUNKS);
        let partials: Vec<Vec<f32>> = (0..jobs.div_ceil(per))
            .into_par_iter()
            .map(|chunk| {
                let mut acc = vec![0.0f32; slen];
                with_scratch(|s| {
                    for j in chunk * per..((chunk + 1) * per).min(jobs) {
                        job(j, &mut acc, s);
                    }
                });
                acc
            })
            .collect();
        let mut it = partials.into_iter();
        let mut sum = it.next().unwrap_or_else(|| vec![0.0f32; slen]);
        for part in it {
            sum.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
        }
        // dW = G^T S G with G^T = [[1, .5, .5, 0], [0, .5, -.5, 0], [0, .5, .5, 1]].
        let gt = |v: [f32; 4]| {
            [
                v[0] + 0.5 * (v[1] + v[2]),
                0.5 * (v[1] - v[2]),
                0.5 * (v[1] + v[2]) + v[3],
            ]
        };
        let mut dw = vec![0.0f32; self.cout * cin_g * 9];
        for grp in 0..self.groups {
            for co in 0..cout_g {
                for ci in 0..cin_g {
                    let at = |xi: usize| sum[((grp * 16 + xi) * cout_g + co) * cin_g + ci];
                    // Columns first: r[i] = (S G)[i], rows of 3.
                    let r: [[f32; 3]; 4] = std::array::from_fn(|i| {
                        gt([at(4 * i), at(4 * i + 1), at(4 * i + 2), at(4 * i + 3)])
                    });
                    let dst = &mut dw[((grp * cout_g + co) * cin_g + ci) * 9..][..9];
                    for c in 0..3 {
                        let col = gt([r[0][c], r[1][c], r[2][c], r[3][c]]);
                        for (a, v) in col.into_iter().enumerate() {
                            dst[a * 3 + c] = v;
                        }
                    }
                }
            }
        }
        dw
    }

    /// Writes `B^T d B` of the tiles of `seg` in one input channel `plane` (`h x w`) to
    /// `v[xi * cin_g * nt + k]` (`v` starts at the channel's row, `nt` apart per channel).
    fn input_tiles(&self, plane: &[f32], seg: Segment, t: &mut Vec<f32>, v: &mut [f32], nt: usize) {
        let len = seg.tx1 - seg.tx0;
        let stride = self.cin_g() * nt;
        let n = len + 1;
        // Even and odd columns of the four input rows, then of the four rows of B^T d.
        t.resize(16 * n, 0.0);
        let (rows, tr) = t.split_at_mut(8 * n);
        let c0 = 2 * seg.tx0 as isize - self.pw as isize;
        for (i, eo) in rows.chunks_exact_mut(2 * n).enumerate() {
            let r = 2 * seg.ty as isize - self.ph as isize + i as isize;
            let (e, o) = eo.split_at_mut(n);
            deinterleave_row(plane, self.h, self.w, r, c0, e, o);
        }
        {
            let (d0, rest) = rows.split_at(2 * n);
            let (d1, rest) = rest.split_at(2 * n);
            let (d2, d3) = rest.split_at(2 * n);
            let (t0, rest) = tr.split_at_mut(2 * n);
            let (t1, rest) = rest.split_at_mut(2 * n);
            let (t2, t3) = rest.split_at_mut(2 * n);
            cols4(d0, d1, d2, d3, t0, t1, t2, t3, |a, b, c, d| {
                (a - c, b + c, c - b, b - d)
            });
        }
        for (i, eo) in tr.chunks_exact(2 * n).enumerate() {
            let (e, o) = eo.split_at(n);
            let [v0, v1, v2, v3] = rows4(v, 4 * i * stride + seg.k0, stride, len);
            let (e0, e1, o0, o1) = (&e[..len], &e[1..], &o[..len], &o[1..]);
            cols4(e0, o0, e1, o1, v0, v1, v2, v3, |e0, o0, e1, o1| {
                (e0 - e1, o0 + e1, e1 - o0, o0 - o1)
            });
        }
    }

    /// Writes `A e A^T` of the 2x2 tiles of `seg` in one channel `plane` (`ho x wo`) of `dy` to
    /// `m[xi * cout_g * nt + k]`.
    fn grad_tiles(&self, plane: &[f32], seg: Segment, t: &mut Vec<f32>, m: &mut [f32], nt: usize) {
        let len = seg.tx1 - seg.tx0;
        let stride = self.cout_g() * nt;
        t.resize(12 * len, 0.0);
        let (rows, tr) = t.split_at_mut(4 * len);
        for (a, eo) in rows.chunks_exact_mut(2 * len).enumerate() {
            let (e, o) = eo.split_at_mut(len);
            let r = (2 * seg.ty + a) as isize;
            deinterleave_row(plane, self.ho, self.wo, r, 2 * seg.tx0 as isize, e, o);
        }
        // A along the rows: (r0, r0 + r1, r0 - r1, -r1), for the even and the odd columns.
        {
            let (e0, o0) = rows[..2 * len].split_at(len);
            let (e1, o1) = rows[2 * len..].split_at(len);
            let (te, to) = tr.split_at_mut(4 * len);
            for (src0, src1, dst) in [(e0, e1, te), (o0, o1, to)] {
                let [a, b, c, d] = rows4(dst, 0, len, len);
                cols4(src0, src1, src0, src1, a, b, c, d, |r0, r1, _, _| {
                    (r0, r0 + r1, r0 - r1, -r1)
                });
            }
        }
        // A along the columns, for each of the four rows i: (e, e + o, e - o, -o).
        for i in 0..4 {
            let (e, o) = (&tr[i * len..][..len], &tr[(4 + i) * len..][..len]);
            let [m0, m1, m2, m3] = rows4(m, 4 * i * stride + seg.k0, stride, len);
            cols4(e, o, e, o, m0, m1, m2, m3, |e, o, _, _| {
                (e, e + o, e - o, -o)
            });
        }
    }

    /// Writes `A^T M A` (+ `bias`) of the tiles of `seg` into one output channel `plane`
    /// (`ho x wo`); `m[xi * cout_g * nt + k]` holds the products of tile `k`.
    ///
    /// # Safety
    /// `plane` must be valid for writes of `ho * wo` floats, and no other thread may access the
    /// pixels of the tiles of `seg` meanwhile (only those are written, through slices that
    /// cover just them: other jobs write other tiles of the same plane at the same time).
    #[allow(clippy::too_many_arguments)]
    unsafe fn output_tiles(
        &self,
        m: &[f32],
        nt: usize,
        cout_g: usize,
        seg: Segment,
        bias: f32,
        t: &mut Vec<f32>,
        plane: *mut f32,
    ) {
        let len = seg.tx1 - seg.tx0;
        let stride = cout_g * nt;
        t.resize(12 * len, 0.0);
        let (r, y) = t.split_at_mut(8 * len);
        let at = |xi: usize| &m[xi * stride + seg.k0..][..len];
        // A^T along the rows: r0 = m0 + m1 + m2, r1 = m1 - m2 - m3 (rows of M), per column j.
        for j in 0..4 {
            let (r0, r1) = r[2 * j * len..][..2 * len].split_at_mut(len);
            let (a, b, c, d) = (at(j), at(4 + j), at(8 + j), at(12 + j));
            cols2(a, b, c, d, r0, r1, |a, b, c, d| (a + b + c, b - c - d));
        }
        // A^T along the columns, plus the bias: even and odd output columns of rows 0 and 1.
        let c0 = 2 * seg.tx0;
        for a in 0..2 {
            let row = 2 * seg.ty + a;
            if row >= self.ho {
                break;
            }
            let col = |j: usize| &r[(2 * j + a) * len..][..len];
            let (ye, yo) = y[..2 * len].split_at_mut(len);
            cols2(col(0), col(1), col(2), col(3), ye, yo, |p, q, s, u| {
                (p + q + s + bias, q - s - u + bias)
            });
            // The segment's columns of this row: 2 per tile, 1 for a last tile at an odd width.
            let cols = (2 * len).min(self.wo - c0);
            // SAFETY: inside the plane (row < ho, c0 + cols <= wo); these pixels are this
            // segment's alone (see the function's contract).
            let dst =
                unsafe { std::slice::from_raw_parts_mut(plane.add(row * self.wo + c0), cols) };
            let full = cols / 2;
            interleave(&ye[..full], &yo[..full], &mut dst[..2 * full]);
            if full < len {
                // An odd width: the last tile has one column.
                dst[2 * full] = ye[full];
            }
        }
    }
}

/// One job's block of tiles: batch entry `b`, group `grp`, tiles `t0..t1` (`nt` of them).
struct Block {
    b: usize,
    grp: usize,
    t0: usize,
    t1: usize,
    nt: usize,
}

/// Scratch buffers of one worker.
#[derive(Default)]
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
    t: Vec<f32>,
}

thread_local! {
    /// Each thread's scratch, kept between calls (about 0.5 MiB at 64 channels), so that the
    /// blocks are not allocated and page-faulted again on every call.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch (a fresh one if it is in use further up the stack, e.g.
/// when a parallel `gemm` lets this thread steal another convolution's job).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// A run of tiles in one tile row: `ty`, columns `tx0..tx1`, first at block index `k0`.
#[derive(Clone, Copy, Debug)]
struct Segment {
    ty: usize,
    tx0: usize,
    tx1: usize,
    k0: usize,
}

/// The tile-row runs of the tiles `t0..t1` (row-major, `tw` tiles per row).
fn segments(t0: usize, t1: usize, tw: usize) -> impl Iterator<Item = Segment> {
    let mut t = t0;
    std::iter::from_fn(move || {
        if t >= t1 {
            return None;
        }
        let (ty, tx0) = (t / tw, t % tw);
        let tx1 = tw.min(tx0 + (t1 - t));
        let seg = Segment {
            ty,
            tx0,
            tx1,
            k0: t - t0,
        };
        t += tx1 - tx0;
        Some(seg)
    })
}

/// Even and odd columns of row `r` of `plane` (`h x w`) from column `c0`:
/// `e[k] = plane[r][c0 + 2k]`, `o[k] = plane[r][c0 + 2k + 1]`, zero outside the plane.
fn deinterleave_row(
    plane: &[f32],
    h: usize,
    w: usize,
    r: isize,
    c0: isize,
    e: &mut [f32],
    o: &mut [f32],
) {
    let n = e.len();
    debug_assert_eq!(o.len(), n);
    if r < 0 || r >= h as isize {
        e.fill(0.0);
        o.fill(0.0);
        return;
    }
    let src = &plane[r as usize * w..][..w];
    let at = |c: isize| {
        if c >= 0 && c < w as isize {
            src[c as usize]
        } else {
            0.0
        }
    };
    // k in lo..hi has both columns inside the row.
    let lo = ((-c0).max(0) as usize).div_ceil(2).min(n);
    let hi = if w as isize - 2 - c0 >= 0 {
        (((w as isize - 2 - c0) / 2 + 1) as usize).clamp(lo, n)
    } else {
        lo
    };
    for k in (0..lo).chain(hi..n) {
        let c = c0 + 2 * k as isize;
        e[k] = at(c);
        o[k] = at(c + 1);
    }
    if hi == lo {
        return;
    }
    let s0 = (c0 + 2 * lo as isize) as usize;
    split_pairs(&src[s0..s0 + 2 * (hi - lo)], &mut e[lo..hi], &mut o[lo..hi]);
}

/// `e[k] = src[2k]`, `o[k] = src[2k + 1]` (AVX2 shuffles when available).
fn split_pairs(src: &[f32], e: &mut [f32], o: &mut [f32]) {
    let n = e.len();
    let (src, o) = (&src[..2 * n], &mut o[..n]);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx2() {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(src: &[f32], e: &mut [f32], o: &mut [f32]) -> usize {
            use std::arch::x86_64::*;
            let n = e.len() / 8 * 8;
            for k in (0..n).step_by(8) {
                // SAFETY: 2k + 16 <= 2n values of src and k + 8 <= n of e and o (n a multiple
                // of 8 below e.len() = o.len() = src.len() / 2).
                unsafe {
                    let a = _mm256_loadu_ps(src.as_ptr().add(2 * k));
                    let b = _mm256_loadu_ps(src.as_ptr().add(2 * k + 8));
                    // Per 128-bit lane: [a0 a2 b0 b2 | a4 a6 b4 b6], then lanes 0 2 1 3.
                    let ev = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
                    let od = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
                    let ev = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(
                        _mm256_castps_pd(ev),
                    ));
                    let od = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(
                        _mm256_castps_pd(od),
                    ));
                    _mm256_storeu_ps(e.as_mut_ptr().add(k), ev);
                    _mm256_storeu_ps(o.as_mut_ptr().add(k), od);
                }
            }
            n
        }
        // SAFETY: the CPU supports AVX2 (checked just above); lengths as documented there.
        done = unsafe { avx2(src, e, o) };
    }
    for k in done..n {
        e[k] = src[2 * k];
        o[k] = src[2 * k + 1];
    }
}

/// The four rows `x[base + j * stride..][..len]`, `j < 4`.
///
/// # Panics
/// If `len > stride` or the last row ends past `x`.
fn rows4(x: &mut [f32], base: usize, stride: usize, len: usize) -> [&mut [f32]; 4] {
    assert!(len <= stride, "rows of {len} values {stride} apart overlap");
    let (_, rest) = x.split_at_mut(base);
    let (a, rest) = rest.split_at_mut(stride);
    let (b, rest) = rest.split_at_mut(stride);
    let (c, d) = rest.split_at_mut(stride);
    [&mut a[..len], &mut b[..len], &mut c[..len], &mut d[..len]]
}

/// `dst[2k] = e[k]`, `dst[2k + 1] = o[k]`.
fn interleave(e: &[f32], o: &[f32], dst: &mut [f32]) {
    for ((pair, ev), od) in dst.chunks_exact_mut(2).zip(e).zip(o) {
        pair[0] = *ev;
        pair[1] = *od;
    }
}

/// `(o0, o1, o2, o3)[k] = f(a[k], b[k], c[k], d[k])` for `k < o0.len()`, vectorised (AVX2 when
/// available; adds and subtractions only, so both versions give the same bits).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn cols4<F>(
    a: &[f32],
    b: &[f32],
    c: &[f32],
    d: &[f32],
    o0: &mut [f32],
    o1: &mut [f32],
    o2: &mut [f32],
    o3: &mut [f32],
    f: F,
) where
    F: Fn(f32, f32, f32, f32) -> (f32, f32, f32, f32),
{
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn body<F: Fn(f32, f32, f32, f32) -> (f32, f32, f32, f32)>(
        a: &[f32],
        b: &[f32],
        c: &[f32],
        d: &[f32],
        o0: &mut [f32],
        o1: &mut [f32],
        o2: &mut [f32],
        o3: &mut [f32],
        f: F,
    ) {
        let n = o0.len();
        let (a, b, c, d) = (&a[..n], &b[..n], &c[..n], &d[..n]);
        let (o1, o2, o3) = (&mut o1[..n], &mut o2[..n], &mut o3[..n]);
        for k in 0..n {
            let r = f(a[k], b[k], c[k], d[k]);
            o0[k] = r.0;
            o1[k] = r.1;
            o2[k] = r.2;
            o3[k] = r.3;
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn avx2<F: Fn(f32, f32, f32, f32) -> (f32, f32, f32, f32)>(
            a: &[f32],
            b: &[f32],
            c: &[f32],
            d: &[f32],
            o0: &mut [f32],
            o1: &mut [f32],
            o2: &mut [f32],
            o3: &mut [f32],
            f: F,
        ) {
            body(a, b, c, d, o0, o1, o2, o3, f)
        }
        if crate::simd::avx2() {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2(a, b, c, d, o0, o1, o2, o3, f) };
        }
    }
    body(a, b, c, d, o0, o1, o2, o3, f)
}

/// [`cols4`] with two outputs.
#[inline(always)]
fn cols2<F>(a: &[f32], b: &[f32], c: &[f32], d: &[f32], o0: &mut [f32], o1: &mut [f32], f: F)
where
    F: Fn(f32, f32, f32, f32) -> (f32, f32),
{
    #[inline(always)]
    fn body<F: Fn(f32, f32, f32, f32) -> (f32, f32)>(
        a: &[f32],
        b: &[f32],
        c: &[f32],
        d: &[f32],
        o0: &mut [f32],
        o1: &mut [f32],
        f: F,
    ) {
        let n = o0.len();
        let (a, b, c, d, o1) = (&a[..n], &b[..n], &c[..n], &d[..n], &mut o1[..n]);
        for k in 0..n {
            let r = f(a[k], b[k], c[k], d[k]);
            o0[k] = r.0;
            o1[k] = r.1;
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<F: Fn(f32, f32, f32, f32) -> (f32, f32)>(
            a: &[f32],
            b: &[f32],
            c: &[f32],
            d: &[f32],
            o0: &mut [f32],
            o1: &mut [f32],
            f: F,
        ) {
            body(a, b, c, d, o0, o1, f)
        }
        if crate::simd::avx2() {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2(a, b, c, d, o0, o1, f) };
        }
    }
    body(a, b, c, d, o0, o1, f)
}

#[cfg(test)]
mod tests {
    use super::super::Geom;

    /// A seeded value in [-1, 1).
    fn vals(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn geom(
        n: usize,
        cin: usize,
        cout: usize,
        h: usize,
        w: usize,
        pad: usize,
        groups: usize,
    ) -> Geom {
        Geom {
            n,
            cin,
            h,
            w,
            cout,
            kh: 3,
            kw: 3,
            ph: pad,
            pw: pad,
            sh: 1,
            sw: 1,
            dh: 1,
            dw: 1,
            groups,
            ho: h + 2 * pad - 2,
            wo: w + 2 * pad - 2,
        }
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * y.abs().max(1.0),
                "{what}: {x} vs {y} at {i}"
            );
        }
    }

    /// Winograd forward, input and weight gradients against the im2col path over odd and even
    /// sizes, paddings 0-2, groups, batch 1-16, tiles split across blocks.
    #[test]
    fn winograd_matches_im2col_over_a_shape_sweep() {
        // (n, cin, cout, h, w, pad, groups)
        let cases = [
            (1, 8, 8, 7, 9, 1, 1),
            (2, 16, 8, 8, 8, 1, 1),
            (3, 8, 16, 9, 7, 0, 1),
            (1, 16, 16, 5, 6, 2, 2),
            (16, 8, 8, 4, 4, 1, 1),
            (2, 64, 64, 20, 12, 1, 1),
            (1, 24, 40, 33, 31, 1, 1),
            (2, 32, 32, 3, 3, 0, 4),
            (1, 8, 8, 1, 1, 1, 1),
            (2, 64, 64, 64, 64, 1, 1),
        ];
        for (i, &(n, cin, cout, h, w, pad, groups)) in cases.iter().enumerate() {
            let g = geom(n, cin, cout, h, w, pad, groups);
            assert!(g.winograd_ok(), "case {i}");
            let seed = 10 * i as u64;
            let x = vals(n * cin * h * w, seed);
            let wt: Vec<f32> = vals(cout * (cin / groups) * 9, seed + 1)
                .iter()
                .map(|v| v * 0.3)
                .collect();
            let bias = vals(cout, seed + 2);
            let dy = vals(n * cout * g.p(), seed + 3);
            let what = format!("case {i}");
            let fast = g.wino_forward(&x, &g.wino_weights(&wt), Some(&bias));
            let slow = g.im2col_forward(&x, &wt, Some(&bias));
            close(&fast, &slow, &format!("{what}: forward"));
            let (dx, dw) = g.wino_backward(&x, &wt, &dy);
            let (dx_ref, dw_ref) = g.im2col_backward(&x, &wt, &dy);
            close(&dx, &dx_ref, &format!("{what}: dx"));
            close(&dw, &dw_ref, &format!("{what}: dweight"));
        }
    }

    #[test]
    fn winograd_applies_only_to_3x3_stride_1_undilated() {
        let g = geom(1, 8, 8, 6, 6, 1, 1);
        assert!(g.winograd_ok());
        assert!(!Geom { sh: 2, ..g }.winograd_ok());
        assert!(!Geom { dw: 2, ..g }.winograd_ok());
        assert!(!Geom { kh: 5, ..g }.winograd_ok());
        assert!(!Geom { ph: 3, ..g }.winograd_ok());
        assert!(!geom(1, 4, 8, 6, 6, 1, 1).winograd_ok());
    }

    /// The weight gradient is the same bits for any thread count.
    #[test]
    fn winograd_weight_gradient_is_bit_identical_across_thread_counts() {
        let g = geom(5, 16, 16, 13, 11, 1, 1);
        let x = vals(5 * 16 * 13 * 11, 7);
        let dy = vals(5 * 16 * g.p(), 8);
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| g.wino_weight_grad(&x, &dy))
        };
        let want: Vec<u32> = run(1).iter().map(|v| v.to_bits()).collect();
        for threads in [2, 3, 8] {
            let got: Vec<u32> = run(threads).iter().map(|v| v.to_bits()).collect();
            assert!(got == want, "{threads} threads differ from 1");
        }
    }
}
