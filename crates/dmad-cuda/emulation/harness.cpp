// Host emulation of dmad-cuda's kernels (kernels/*.cu compiled by g++ with include/cuda_shim.h):
// every block of the launch grid runs with one thread, in order. Exposes one C function per
// launch for check.py (ctypes), with the same launch geometry as src/cuda.rs.
#include "cuda_shim.h"
Dim3 blockIdx, blockDim, threadIdx;

#include "../kernels/attention.cu"
#include "../kernels/dwt.cu"
#include "../kernels/group_norm.cu"
#include "../kernels/sampler.cu"

// Runs `f` for blocks (0..gx) x (0..gy), one thread each.
template <typename F> static void grid(unsigned gx, unsigned gy, F f) {
  blockDim.x = 1;
  threadIdx.x = 0;
  for (unsigned y = 0; y < gy; ++y)
    for (unsigned x = 0; x < gx; ++x) {
      blockIdx.x = x;
      blockIdx.y = y;
      f();
    }
}

extern "C" {
void emu_gn_fwd(const float *x, const float *g, const float *b, float *y, int N, int C, int G,
                int hw, float eps, int silu) {
  grid(N * G, 1, [&] { gn_fwd_f32(x, g, b, y, C, G, hw, eps, silu); });
}
void emu_gn_bwd(const float *x, const float *g, const float *b, const float *dy, float *out,
                int N, int C, int G, int hw, float eps, int silu) {
  grid(N * G, 1, [&] { gn_bwd_f32(x, g, b, dy, out, N, C, G, hw, eps, silu); });
}
// With one thread per block, every output position is its own block.
void emu_dwt2(const float *x, float *y, const float *lo, const float *hi, int f, int B, int C,
              int H, int W, float scale, int transpose) {
  Filters flt{};
  for (int i = 0; i < f; ++i) {
    flt.lo[i] = lo[i];
    flt.hi[i] = hi[i];
  }
  flt.len = f;
  const unsigned n = (unsigned)B * C * H * W;
  if (transpose)
    grid(n, 1, [&] { idwt2_f32(x, y, flt, B, C, H, W, scale); });
  else
    grid(n / 4, 1, [&] { dwt2_f32(x, y, flt, B, C, H, W, scale); });
}
void emu_step(const float *x, const float *m, const float *aux, const float *k, float *out,
              size_t per, size_t n, float clip, int want_x0) {
  grid((unsigned)n, 1, [&] { step_f32(x, m, aux, k, out, per, n, clip, want_x0); });
}
void emu_step_bf16(const uint16_t *x, const uint16_t *m, const uint16_t *aux, const float *k,
                   uint16_t *out, size_t per, size_t n, float clip, int want_x0) {
  grid((unsigned)n, 1, [&] {
    step_bf16((const __nv_bfloat16 *)x, (const __nv_bfloat16 *)m, (const __nv_bfloat16 *)aux, k,
              (__nv_bfloat16 *)out, per, n, clip, want_x0);
  });
}
void emu_attention(const float *q, const float *k, const float *v, float *o, int bh, int tq,
                   int tk, int d, float scale) {
  grid(tq, bh, [&] {
    switch (d) {
      case 8: attn_d8_f32(q, k, v, o, tq, tk, scale); break;
      case 16: attn_d16_f32(q, k, v, o, tq, tk, scale); break;
      case 32: attn_d32_f32(q, k, v, o, tq, tk, scale); break;
      case 64: attn_d64_f32(q, k, v, o, tq, tk, scale); break;
    }
  });
}
}
