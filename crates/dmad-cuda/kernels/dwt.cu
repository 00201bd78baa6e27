// Single-level 2D DWT in periodization mode (even H and W) and its transpose, on [P, H, W]
// planes. The analysis with filters (lo, hi) of length f is
//   band_k[i, j] = sum_{p, q} fy_k[p] fx_k[q] x[(2i + f/2 - p) mod H, (2j + f/2 - q) mod W]
// with (fy, fx) = (lo, lo), (hi, lo), (lo, hi), (hi, hi) for cA, cH, cV, cD (PyWavelets'
// order). `dwt2_*` computes it: one thread per output position, all four bands. `idwt2_*`
// computes its transpose (a gather, no atomics): the inverse DWT for synthesis filters, and
// the backward pass of the DWT for the analysis filters.
// Layout: x [B, C, H, W] and bands [B, 4C, H/2, W/2], band-major (channels k*C + c).
#include "common.cuh"

#define DMAD_MAX_TAPS 32

struct Filters {
  float lo[DMAD_MAX_TAPS];
  float hi[DMAD_MAX_TAPS];
  int len;
};

__device__ __forceinline__ int wrap(int v, int n) {
  v %= n;
  return v < 0 ? v + n : v;
}

template <typename T>
__device__ void dwt2(const T *x, T *y, Filters flt, int B, int C, int H, int W, float scale) {
  const int h = H / 2, w = W / 2;
  const size_t total = (size_t)B * C * h * w;
  const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const int j = (int)(idx % w);
  const int i = (int)((idx / w) % h);
  const size_t bc = idx / ((size_t)w * h);
  const int c = (int)(bc % C);
  const size_t b = bc / C;
  const T *xp = x + bc * H * W;
  const int f = flt.len, c0 = f / 2;
  float aa = 0.0f, ha = 0.0f, ah = 0.0f, hh = 0.0f;  // (height filter, width filter)
  for (int p = 0; p < f; ++p) {
    const T *row = xp + (size_t)wrap(2 * i + c0 - p, H) * W;
    float rl = 0.0f, rh = 0.0f;
    for (int q = 0; q < f; ++q) {
      const float v = to_f(row[wrap(2 * j + c0 - q, W)]);
      rl += flt.lo[q] * v;
      rh += flt.hi[q] * v;
    }
    aa += flt.lo[p] * rl;
    ha += flt.hi[p] * rl;
    ah += flt.lo[p] * rh;
    hh += flt.hi[p] * rh;
  }
  const size_t band = (size_t)h * w, off = (size_t)i * w + j;
  T *yb = y + b * 4 * C * band;
  yb[(0 * (size_t)C + c) * band + off] = from_f<T>(scale * aa);
  yb[(1 * (size_t)C + c) * band + off] = from_f<T>(scale * ha);
  yb[(2 * (size_t)C + c) * band + off] = from_f<T>(scale * ah);
  yb[(3 * (size_t)C + c) * band + off] = from_f<T>(scale * hh);
}

template <typename T>
__device__ void idwt2(const T *y, T *x, Filters flt, int B, int C, int H, int W, float scale) {
  const int h = H / 2, w = W / 2;
  const size_t total = (size_t)B * C * H * W;
  const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const int s = (int)(idx % W);
  const int r = (int)((idx / W) % H);
  const size_t bc = idx / ((size_t)W * H);
  const int c = (int)(bc % C);
  const size_t b = bc / C;
  const size_t band = (size_t)h * w;
  const T *yb = y + b * 4 * C * band;
  const T *ya = yb + (0 * (size_t)C + c) * band;
  const T *yh = yb + (1 * (size_t)C + c) * band;
  const T *yv = yb + (2 * (size_t)C + c) * band;
  const T *yd = yb + (3 * (size_t)C + c) * band;
  const int f = flt.len, c0 = f / 2;
  float acc = 0.0f;
  // Output r receives band row i through tap p when 2i + c0 - p = r (mod H).
  for (int p = (r - c0) & 1 ? 1 : 0; p < f; p += 2) {
    const int i = wrap(r - c0 + p, H) / 2;
    float la = 0.0f, lh = 0.0f, lv = 0.0f, ld = 0.0f;
    for (int q = (s - c0) & 1 ? 1 : 0; q < f; q += 2) {
      const int jj = wrap(s - c0 + q, W) / 2;
      const size_t o = (size_t)i * w + jj;
      const float fl = flt.lo[q], fh = flt.hi[q];
      la += fl * to_f(ya[o]);
      lh += fl * to_f(yh[o]);
      lv += fh * to_f(yv[o]);
      ld += fh * to_f(yd[o]);
    }
    acc += flt.lo[p] * (la + lv) + flt.hi[p] * (lh + ld);
  }
  x[idx] = from_f<T>(scale * acc);
}

#define DWT(NAME, T)                                                                       \
  extern "C" __global__ void dwt2_##NAME(const T *x, T *y, Filters flt, int B, int C,      \
                                          int H, int W, float scale) {                     \
    dwt2<T>(x, y, flt, B, C, H, W, scale);                                                 \
  }                                                                                        \
  extern "C" __global__ void idwt2_##NAME(const T *y, T *x, Filters flt, int B, int C,     \
                                           int H, int W, float scale) {                    \
    idwt2<T>(y, x, flt, B, C, H, W, scale);                                                \
  }

DWT(f32, float)
DWT(bf16, __nv_bfloat16)
