// Fused sequential single-spin Metropolis sweeps of the Ising p = 3 spin glass (`models.PSpin`
// with p = 3), as XLA FFI custom calls (diffphys.models.pspin_metropolis, backend="native").
//
// E(s) = -sum_{i<j<k} J_ijk s_i s_j s_k - sum_i h_i s_i. With T the dense symmetric tensor
// (T_ijk = J for every permutation of a tuple, 0 when two indices coincide) the kernel keeps
// M_ij = sum_k T_ijk s_k (N x N, symmetric, zero diagonal) and the local fields
// f_i = (1/2) sum_j M_ij s_j + h_i; flipping spin i costs dE = 2 s_i f_i. An accepted flip of
// spin l (old value s_l) does
//   f_i  -= 2 s_l M_il      for all i    (O(N): M_il depends on neither s_l nor s_i),
//   M_ij -= 2 s_l T_ijl     for all i, j (O(N^2): the contiguous slab T[l]),
// each a multiply by +-2 (exact) and one rounding, as in the pure-JAX backend; a rejection
// costs O(1). By symmetry, once M outgrows 64 KiB only its upper triangle is updated during a
// call (half the slab is read) and mirrored at its end. Chains are independent: OpenMP over the flattened batch, each chain running all
// its sweeps before the next.
//
// Random numbers and acceptance: those of the SK kernel (sk_ffi.cc) on a stream of its own.
// Philox4x32-10 keyed by the two 32-bit words of the chain's step key; word (i mod 4) of the
// block with counter (i / 4, absolute sweep index t, 0, 0x5033) is the word r_i of spin i in
// sweep t, so k + k sweeps with one key equal 2k sweeps. Spin i flips iff beta dE <= 0 or
// (r_i + 1/2) 2^-32 < exp(-beta dE) (Metropolis et al. 1953; exp in double).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "ffi_batch.h"
#include "philox.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using diffphys_native::Batch;
using diffphys_native::resolve_threads;

constexpr uint32_t kStream = 0x5033u;  // "P3"

template <typename T>
inline void axpy_generic(T* __restrict y, const T* __restrict x, T d, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] -= d * x[j];
}

#if defined(__x86_64__) || defined(_M_X64)
template <typename T>
__attribute__((target("avx2"))) void axpy_avx2(T* __restrict y, const T* __restrict x, T d,
                                               int64_t n) {
  axpy_generic(y, x, d, n);
}
const bool kHaveAvx2 = __builtin_cpu_supports("avx2");
#endif

// y -= d x over n contiguous elements (the field update)
template <typename T>
void axpy(T* y, const T* x, T d, int64_t n) {
#if defined(__x86_64__) || defined(_M_X64)
  if (kHaveAvx2) return axpy_avx2(y, x, d, n);
#endif
  axpy_generic(y, x, d, n);
}

// M_ij -= d T_lij for i < j: row i from column (i + 1) rounded down to a multiple of w (the
// lanes of a vector), so that rows start aligned and need no peeling; the few entries it
// also writes left of the diagonal are in the lower triangle, which the caller overwrites
// (mirrors) at the end of the call; the diagonal stays 0 (T_lii = 0).
template <typename T>
inline void slab_update_generic(T* __restrict M, const T* __restrict Tl, T d, int64_t n,
                                int64_t w) {
  for (int64_t i = 0; i + 1 < n; ++i) {
    const int64_t j0 = (i + 1) / w * w;
    T* __restrict m = M + i * n;
    const T* __restrict t = Tl + i * n;
    for (int64_t j = j0; j < n; ++j) m[j] -= d * t[j];
  }
}

#if defined(__x86_64__) || defined(_M_X64)
__attribute__((target("avx2"))) void slab_update_avx2(float* __restrict M,
                                                      const float* __restrict Tl, float d,
                                                      int64_t n) {
  const __m256 dv = _mm256_set1_ps(d);
  for (int64_t i = 0; i + 1 < n; ++i) {
    int64_t j = (i + 1) / 8 * 8;
    float* m = M + i * n;
    const float* t = Tl + i * n;
    for (; j + 8 <= n; j += 8)
      _mm256_storeu_ps(m + j, _mm256_sub_ps(_mm256_loadu_ps(m + j),
                                            _mm256_mul_ps(dv, _mm256_loadu_ps(t + j))));
    for (; j < n; ++j) m[j] -= d * t[j];
  }
}
__attribute__((target("avx2"))) void slab_update_avx2(double* __restrict M,
                                                      const double* __restrict Tl, double d,
                                                      int64_t n) {
  const __m256d dv = _mm256_set1_pd(d);
  for (int64_t i = 0; i + 1 < n; ++i) {
    int64_t j = (i + 1) / 4 * 4;
    double* m = M + i * n;
    const double* t = Tl + i * n;
    for (; j + 4 <= n; j += 4)
      _mm256_storeu_pd(m + j, _mm256_sub_pd(_mm256_loadu_pd(m + j),
                                            _mm256_mul_pd(dv, _mm256_loadu_pd(t + j))));
    for (; j < n; ++j) m[j] -= d * t[j];
  }
}
#endif

template <typename T>
void slab_update(T* M, const T* Tl, T d, int64_t n) {
#if defined(__x86_64__) || defined(_M_X64)
  if (kHaveAvx2) return slab_update_avx2(M, Tl, d, n);
#endif
  slab_update_generic(M, Tl, d, n, int64_t(32 / sizeof(T)));
}

// `sweeps` sequential sweeps of one chain, in place; returns the number of accepted flips.
// T: (n, n, n), M: (n, n), f: (n). M and every slab T[l] are symmetric, so for larger n the
// sweeps update only the upper triangle of M (reading the upper triangle of T[l]: half the
// bytes); f reads M_il as M[min(i, l), max(i, l)], and the lower triangle is mirrored from
// the upper one once at the end of the call.
template <typename T>
int64_t chain_sweeps(const T* Tt, int8_t* s, T* M, T* f, double beta, int64_t n, uint32_t t0,
                     uint32_t k0, uint32_t k1, int64_t sweeps, uint32_t* r) {
  int64_t flips = 0;
  const int64_t nn = n * n;
  // measured at N = 32-128 (f32, one thread): the whole slab is faster while M (n^2 elements)
  // fits in 64 KiB (N = 96: 4.2 vs 2.9 flips per ns), the upper triangle beyond (N = 128:
  // 1.9 vs 1.6)
  const bool full = nn * int64_t(sizeof(T)) < 65536;
  for (int64_t k = 0; k < sweeps; ++k) {
    diffphys_native::philox_words(r, n, uint32_t(t0 + k), kStream, k0, k1);
    for (int64_t l = 0; l < n; ++l) {
      const int8_t sl = s[l];
      const double bde = beta * (2.0 * double(sl) * double(f[l]));
      bool acc = bde <= 0.0;
      if (!acc && bde < 23.0)  // exp(-23) < 2^-33 <= (r + 1/2) 2^-32: rejected anyway
        acc = (double(r[l]) + 0.5) * 0x1p-32 < std::exp(-bde);
      if (acc) {
        const T d = T(2 * sl);
        // f_i -= 2 s_l M_il (M_ll = 0: f_l unchanged)
        for (int64_t i = 0; i < l; ++i) f[i] -= d * M[i * n + l];
        axpy(f + l + 1, M + l * n + l + 1, d, n - l - 1);
        // M_ij -= 2 s_l T_lij (T_lij = T_ijl): the whole slab where M fits in L1 (one
        // contiguous pass), else only i < j (half the bytes)
        if (full)
          axpy(M, Tt + l * nn, d, nn);
        else
          slab_update(M, Tt + l * nn, d, n);
        s[l] = int8_t(-sl);
        ++flips;
      }
    }
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) M[j * n + i] = M[i * n + j];
  return flips;
}

// T (*B, N, N, N); x (*B, N) int8; M (*B, N, N); f (*B, N); key (*B, 2) u32; t0 (*B) u32;
// beta (*B) -> x out (*B, N), M out (*B, N, N), f out (*B, N), accepted (*B) int32.
// Leading dims of size 1 broadcast (vmap_method="expand_dims").
template <ffi::DataType DT>
ffi::Error PSpinSweepImpl(ffi::Buffer<DT> Tt, ffi::Buffer<ffi::S8> x, ffi::Buffer<DT> M,
                          ffi::Buffer<DT> f, ffi::Buffer<ffi::U32> key, ffi::Buffer<ffi::U32> t0,
                          ffi::Buffer<DT> beta, ffi::Result<ffi::Buffer<ffi::S8>> x_out,
                          ffi::Result<ffi::Buffer<DT>> M_out, ffi::Result<ffi::Buffer<DT>> f_out,
                          ffi::Result<ffi::Buffer<ffi::S32>> accepted, int64_t sweeps,
                          int64_t threads) {
  using T = ffi::NativeType<DT>;
  auto od = x_out->dimensions();
  if (od.size() < 1) return ffi::Error::InvalidArgument("p-spin sweep: spins need a spin axis");
  const int64_t n = od[od.size() - 1];
  const size_t nlead = od.size() - 1;
  Batch batch(od, nlead);
  std::vector<int64_t> tto, xo, mo, fo, ko, to, bo, oo, mmo;
  auto td = Tt.dimensions();
  auto md = M.dimensions();
  if (td.size() < 3 || td[td.size() - 1] != n || td[td.size() - 2] != n ||
      td[td.size() - 3] != n || md.size() < 2 || md[md.size() - 1] != n ||
      md[md.size() - 2] != n || !batch.offsets(td, 3, n * n * n, tto) ||
      !batch.offsets(x.dimensions(), 1, n, xo) || !batch.offsets(md, 2, n * n, mo) ||
      !batch.offsets(f.dimensions(), 1, n, fo) || !batch.offsets(key.dimensions(), 1, 2, ko) ||
      !batch.offsets(t0.dimensions(), 0, 1, to) || !batch.offsets(beta.dimensions(), 0, 1, bo) ||
      !batch.offsets(od, 1, n, oo) || !batch.offsets(M_out->dimensions(), 2, n * n, mmo))
    return ffi::Error::InvalidArgument("p-spin sweep: inconsistent shapes");
  const T* Tp = Tt.typed_data();
  const int8_t* xp = x.typed_data();
  const T* Mp = M.typed_data();
  const T* fp = f.typed_data();
  const uint32_t* kp = key.typed_data();
  const uint32_t* tp = t0.typed_data();
  const T* bp = beta.typed_data();
  int8_t* xs = x_out->typed_data();
  T* Ms = M_out->typed_data();
  T* fs = f_out->typed_data();
  int32_t* acc = accepted->typed_data();
  const int nthreads = resolve_threads(threads, batch.size);
#pragma omp parallel num_threads(nthreads)
  {
    std::vector<uint32_t> r(n + 4);
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < batch.size; ++b) {
      int8_t* s = xs + oo[b];
      T* Mb = Ms + mmo[b];
      T* fb = fs + oo[b];
      std::memcpy(s, xp + xo[b], n);
      std::memcpy(Mb, Mp + mo[b], n * n * sizeof(T));
      std::memcpy(fb, fp + fo[b], n * sizeof(T));
      acc[b] = int32_t(chain_sweeps<T>(Tp + tto[b], s, Mb, fb, double(bp[bo[b]]), n, tp[to[b]],
                                       kp[ko[b]], kp[ko[b] + 1], sweeps, r.data()));
    }
  }
  return ffi::Error::Success();
}

}  // namespace

#define DIFFPHYS_EXPORT extern "C" __attribute__((visibility("default")))
DIFFPHYS_EXPORT XLA_FFI_Error* DiffphysPSpinSweepF32(XLA_FFI_CallFrame*);
DIFFPHYS_EXPORT XLA_FFI_Error* DiffphysPSpinSweepF64(XLA_FFI_CallFrame*);

#define DIFFPHYS_PSPIN_BIND(DT)                 \
  ffi::Ffi::Bind()                              \
      .Arg<ffi::Buffer<DT>>()                   \
      .Arg<ffi::Buffer<ffi::S8>>()              \
      .Arg<ffi::Buffer<DT>>()                   \
      .Arg<ffi::Buffer<DT>>()                   \
      .Arg<ffi::Buffer<ffi::U32>>()             \
      .Arg<ffi::Buffer<ffi::U32>>()             \
      .Arg<ffi::Buffer<DT>>()                   \
      .Ret<ffi::Buffer<ffi::S8>>()              \
      .Ret<ffi::Buffer<DT>>()                   \
      .Ret<ffi::Buffer<DT>>()                   \
      .Ret<ffi::Buffer<ffi::S32>>()             \
      .Attr<int64_t>("sweeps")                  \
      .Attr<int64_t>("threads")

XLA_FFI_DEFINE_HANDLER_SYMBOL(DiffphysPSpinSweepF32, PSpinSweepImpl<ffi::DataType::F32>,
                              DIFFPHYS_PSPIN_BIND(ffi::DataType::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(DiffphysPSpinSweepF64, PSpinSweepImpl<ffi::DataType::F64>,
                              DIFFPHYS_PSPIN_BIND(ffi::DataType::F64));
