// A fused sampler update over the batch, with per-sample coefficients k[b, 0..8]:
//   x0  = k0 x + k1 m               (then clamped to [-clip, clip] when clip > 0)
//   eps = k2 x + k3 m
//   out = k4 x + k5 x0 + k6 eps + k7 aux
// DDIM (eta >= 0, aux = noise) and DPM-Solver++ 2M (aux = the previous step's x0) are
// instances. `out` holds the update, then x0 when `want_x0` is set.
#include "common.cuh"

template <typename T>
__device__ void step(const T *x, const T *m, const T *aux, const float *k, T *out, size_t per,
                     size_t n, float clip, int want_x0) {
  const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= n) return;
  const float *kb = k + 8 * (idx / per);
  const float xv = to_f(x[idx]), mv = to_f(m[idx]);
  float x0 = kb[0] * xv + kb[1] * mv;
  if (clip > 0.0f) x0 = fminf(fmaxf(x0, -clip), clip);
  const float eps = kb[2] * xv + kb[3] * mv;
  float o = kb[4] * xv + kb[5] * x0 + kb[6] * eps;
  if (kb[7] != 0.0f) o += kb[7] * to_f(aux[idx]);
  out[idx] = from_f<T>(o);
  if (want_x0) out[n + idx] = from_f<T>(x0);
}

#define STEP(NAME, T)                                                                       \
  extern "C" __global__ void step_##NAME(const T *x, const T *m, const T *aux, const float *k, \
                                          T *out, size_t per, size_t n, float clip,          \
                                          int want_x0) {                                     \
    step<T>(x, m, aux, k, out, per, n, clip, want_x0);                                       \
  }

STEP(f32, float)
STEP(bf16, __nv_bfloat16)
