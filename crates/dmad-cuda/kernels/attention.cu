// Blocked softmax(q k^T * scale) v for head widths D in {8, 16, 32, 64} (value width D), with
// FlashAttention's online softmax (arXiv:2205.14135): one thread per query row holds q and the
// output accumulator in registers; the block streams tiles of BK keys and values through
// shared memory, so the score matrix is never stored. f32 accumulation for f32 and bf16.
// Layout: q [BH, tq, D], k, v [BH, tk, D], out [BH, tq, D]. Grid (ceil(tq / blockDim), BH).
#include "common.cuh"
#include <math_constants.h>

#define BK 64

template <typename T, int D>
__device__ void attn(const T *q, const T *k, const T *v, T *o, int tq, int tk, float scale) {
  __shared__ float ks[BK][D];
  __shared__ float vs[BK][D];
  const size_t bh = blockIdx.y;
  const int row = blockIdx.x * blockDim.x + threadIdx.x;
  const bool active = row < tq;
  float qr[D], acc[D];
  const T *qp = q + (bh * tq + (active ? row : 0)) * D;
#pragma unroll
  for (int d = 0; d < D; ++d) {
    qr[d] = active ? to_f(qp[d]) * scale : 0.0f;
    acc[d] = 0.0f;
  }
  float mx = -CUDART_INF_F, sum = 0.0f;
  const T *kb = k + bh * tk * D;
  const T *vb = v + bh * tk * D;
  for (int k0 = 0; k0 < tk; k0 += BK) {
    const int nk = min(BK, tk - k0);
    __syncthreads();
    for (int i = threadIdx.x; i < nk * D; i += blockDim.x) {
      ks[i / D][i % D] = to_f(kb[(size_t)k0 * D + i]);
      vs[i / D][i % D] = to_f(vb[(size_t)k0 * D + i]);
    }
    __syncthreads();
    if (!active) continue;
    for (int j = 0; j < nk; ++j) {
      float s = 0.0f;
#pragma unroll
      for (int d = 0; d < D; ++d) s += qr[d] * ks[j][d];
      if (s > mx) {
        const float c = __expf(mx - s);
        sum *= c;
#pragma unroll
        for (int d = 0; d < D; ++d) acc[d] *= c;
        mx = s;
      }
      const float p = __expf(s - mx);
      sum += p;
#pragma unroll
      for (int d = 0; d < D; ++d) acc[d] += p * vs[j][d];
    }
  }
  if (!active) return;
  T *op = o + (bh * tq + row) * D;
  const float inv = 1.0f / sum;
#pragma unroll
  for (int d = 0; d < D; ++d) op[d] = from_f<T>(acc[d] * inv);
}

#define ATTN(NAME, T, D)                                                                  \
  extern "C" __global__ void attn_d##D##_##NAME(const T *q, const T *k, const T *v, T *o, \
                                                 int tq, int tk, float scale) {          \
    attn<T, D>(q, k, v, o, tq, tk, scale);                                                \
  }

ATTN(f32, float, 8)
ATTN(f32, float, 16)
ATTN(f32, float, 32)
ATTN(f32, float, 64)
ATTN(bf16, __nv_bfloat16, 8)
ATTN(bf16, __nv_bfloat16, 16)
ATTN(bf16, __nv_bfloat16, 32)
ATTN(bf16, __nv_bfloat16, 64)
