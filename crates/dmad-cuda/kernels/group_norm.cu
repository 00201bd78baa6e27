// Fused GroupNorm (+ SiLU), forward and backward. One block per (sample, group); the group's
// values are contiguous in [N, C, spatial] layout. Statistics in two passes (mean, then the
// biased variance of the deviations), f32 accumulation for f32 and bf16 storage.
#include "common.cuh"

template <typename T>
__device__ void gn_fwd(const T *x, const T *gamma, const T *beta, T *y, int C, int G, int hw,
                       float eps, int silu) {
  __shared__ float shm[33];
  const int n = blockIdx.x / G, g = blockIdx.x % G, cg = C / G;
  const size_t len = (size_t)cg * hw;
  const size_t base = ((size_t)n * C + (size_t)g * cg) * hw;
  const T *xs = x + base;
  T *ys = y + base;
  float s = 0.0f;
  for (size_t i = threadIdx.x; i < len; i += blockDim.x) s += to_f(xs[i]);
  const float mean = block_sum(s, shm) / (float)len;
  float v = 0.0f;
  for (size_t i = threadIdx.x; i < len; i += blockDim.x) {
    const float d = to_f(xs[i]) - mean;
    v += d * d;
  }
  const float rstd = rsqrtf(block_sum(v, shm) / (float)len + eps);
  for (size_t i = threadIdx.x; i < len; i += blockDim.x) {
    const int c = g * cg + (int)(i / hw);
    float z = (to_f(xs[i]) - mean) * rstd * to_f(gamma[c]) + to_f(beta[c]);
    if (silu) z = z * sigmoidf(z);
    ys[i] = from_f<T>(z);
  }
}

// Backward. `out` holds dx ([N, C, hw]), then the per-sample partial sums dgamma[N, C] and
// dbeta[N, C] (the caller sums them over N).
template <typename T>
__device__ void gn_bwd(const T *x, const T *gamma, const T *beta, const T *dy, T *out, int N,
                       int C, int G, int hw, float eps, int silu) {
  __shared__ float shm[33];
  const int n = blockIdx.x / G, g = blockIdx.x % G, cg = C / G;
  const size_t len = (size_t)cg * hw;
  const size_t base = ((size_t)n * C + (size_t)g * cg) * hw;
  const T *xs = x + base;
  const T *dys = dy + base;
  T *dx = out + base;
  T *dgamma = out + (size_t)N * C * hw;
  T *dbeta = dgamma + (size_t)N * C;
  float s = 0.0f;
  for (size_t i = threadIdx.x; i < len; i += blockDim.x) s += to_f(xs[i]);
  const float mean = block_sum(s, shm) / (float)len;
  float v = 0.0f;
  for (size_t i = threadIdx.x; i < len; i += blockDim.x) {
    const float d = to_f(xs[i]) - mean;
    v += d * d;
  }
  const float rstd = rsqrtf(block_sum(v, shm) / (float)len + eps);
  float m1 = 0.0f, m2 = 0.0f;
  for (int ch = 0; ch < cg; ++ch) {
    const int c = g * cg + ch;
    const float ga = to_f(gamma[c]), be = to_f(beta[c]);
    float sdz = 0.0f, sdzx = 0.0f;
    for (int i = threadIdx.x; i < hw; i += blockDim.x) {
      const size_t k = (size_t)ch * hw + i;
      const float xh = (to_f(xs[k]) - mean) * rstd;
      float dz = to_f(dys[k]);
      if (silu) {
        const float z = xh * ga + be, sg = sigmoidf(z);
        dz *= sg * (1.0f + z * (1.0f - sg));
      }
      sdz += dz;
      sdzx += dz * xh;
    }
    sdz = block_sum(sdz, shm);
    sdzx = block_sum(sdzx, shm);
    if (threadIdx.x == 0) {
      dbeta[(size_t)n * C + c] = from_f<T>(sdz);
      dgamma[(size_t)n * C + c] = from_f<T>(sdzx);
    }
    m1 += ga * sdz;
    m2 += ga * sdzx;
  }
  m1 /= (float)len;
  m2 /= (float)len;
  for (size_t i = threadIdx.x; i < len; i += blockDim.x) {
    const int c = g * cg + (int)(i / hw);
    const float ga = to_f(gamma[c]), be = to_f(beta[c]);
    const float xh = (to_f(xs[i]) - mean) * rstd;
    float dz = to_f(dys[i]);
    if (silu) {
      const float z = xh * ga + be, sg = sigmoidf(z);
      dz *= sg * (1.0f + z * (1.0f - sg));
    }
    dx[i] = from_f<T>(rstd * (ga * dz - m1 - xh * m2));
  }
}

#define GN(NAME, T)                                                                          \
  extern "C" __global__ void gn_fwd_##NAME(const T *x, const T *gamma, const T *beta, T *y,  \
                                            int C, int G, int hw, float eps, int silu) {     \
    gn_fwd<T>(x, gamma, beta, y, C, G, hw, eps, silu);                                       \
  }                                                                                          \
  extern "C" __global__ void gn_bwd_##NAME(const T *x, const T *gamma, const T *beta,        \
                                            const T *dy, T *out, int N, int C, int G, int hw, \
                                            float eps, int silu) {                           \
    gn_bwd<T>(x, gamma, beta, dy, out, N, C, G, hw, eps, silu);                              \
  }

GN(f32, float)
GN(bf16, __nv_bfloat16)
