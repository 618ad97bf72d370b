// Fused sequential single-spin Metropolis sweeps for dense symmetric couplings (SK, Hopfield,
// any `models.SK`), as XLA FFI custom calls (diffphys.models.sk_metropolis, backend="native").
//
// One call runs `sweeps` sweeps over spins 0..N-1 of every chain of a batch. The local fields
// f = J s + h are kept up to date: an accepted flip of spin i does f <- f - 2 s_i J[i, :]
// (O(N), a multiply by +-2 is exact, so one rounding per field as in the pure-JAX kernel); a
// rejection costs nothing. Chains are independent: OpenMP over the flattened batch, each
// chain running all its sweeps before the next (its couplings stay in cache).
//
// Random numbers. Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11) keyed by the two 32-bit
// words of the chain's step key; word (i mod 4) of the block with counter
// (i / 4, absolute sweep index t, 0, 0x534B) is the 32-bit word r_i of spin i in sweep t.
// The stream depends only on (key, t, i), so k + k sweeps with one key equal 2k sweeps.
//
// Acceptance. Spin i flips iff beta dE <= 0 or (r_i + 1/2) 2^-32 < exp(-beta dE), dE =
// 2 s_i f_i (Metropolis et al. 1953): the Metropolis probability up to 2^-32 (exp in double).
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

using diffphys_native::philox;
#if defined(__x86_64__) || defined(_M_X64)
using diffphys_native::philox8;
#endif

constexpr uint32_t kStream = 0x534Bu;  // "SK"

template <typename T>
inline void row_update_generic(T* __restrict f, const T* __restrict row, T d, int64_t n) {
  for (int64_t j = 0; j < n; ++j) f[j] -= d * row[j];
}

#if defined(__x86_64__) || defined(_M_X64)
template <typename T>
__attribute__((target("avx2"))) void row_update_avx2(T* __restrict f, const T* __restrict row,
                                                     T d, int64_t n) {
  row_update_generic(f, row, d, n);
}
const bool kHaveAvx2 = __builtin_cpu_supports("avx2");
#endif

// the words of sweep t: `philox_words` (philox.h) on this kernel's stream
inline void sweep_words(uint32_t* r, int64_t n, uint32_t t, uint32_t k0, uint32_t k1) {
  diffphys_native::philox_words(r, n, t, kStream, k0, k1);
}

template <typename T>
void row_update(T* f, const T* row, T d, int64_t n) {
#if defined(__x86_64__) || defined(_M_X64)
  if (kHaveAvx2) return row_update_avx2(f, row, d, n);
#endif
  row_update_generic(f, row, d, n);
}

// `sweeps` sequential sweeps of one chain, in place; returns the number of accepted flips.
template <typename T>
int64_t chain_sweeps(const T* J, int8_t* s, T* f, double beta, int64_t n, uint32_t t0,
                     uint32_t k0, uint32_t k1, int64_t sweeps, uint32_t* r) {
  int64_t flips = 0;
  for (int64_t k = 0; k < sweeps; ++k) {
    sweep_words(r, n, uint32_t(t0 + k), k0, k1);
    for (int64_t i = 0; i < n; ++i) {
      const int8_t si = s[i];
      const double bde = beta * (2.0 * double(si) * double(f[i]));
      bool acc = bde <= 0.0;
      if (!acc && bde < 23.0)  // exp(-23) < 2^-33 <= (r + 1/2) 2^-32: rejected anyway
        acc = (double(r[i]) + 0.5) * 0x1p-32 < std::exp(-bde);
      if (acc) {
        row_update(f, J + i * n, T(2 * si), n);
        s[i] = int8_t(-si);
        ++flips;
      }
    }
  }
  return flips;
}

// J (*B, N, N); x (*B, N) int8; f (*B, N); key (*B, 2) u32; t0 (*B) u32; beta (*B)
// -> x out (*B, N), f out (*B, N), accepted (*B) int32 (flips over all sweeps).
// Leading dims of size 1 broadcast (vmap_method="expand_dims").
template <ffi::DataType DT>
ffi::Error SkSweepImpl(ffi::Buffer<DT> J, ffi::Buffer<ffi::S8> x, ffi::Buffer<DT> f,
                       ffi::Buffer<ffi::U32> key, ffi::Buffer<ffi::U32> t0, ffi::Buffer<DT> beta,
                       ffi::Result<ffi::Buffer<ffi::S8>> x_out, ffi::Result<ffi::Buffer<DT>> f_out,
                       ffi::Result<ffi::Buffer<ffi::S32>> accepted, int64_t sweeps,
                       int64_t threads) {
  using T = ffi::NativeType<DT>;
  auto od = x_out->dimensions();
  if (od.size() < 1) return ffi::Error::InvalidArgument("SK sweep: spins need a spin axis");
  const int64_t n = od[od.size() - 1];
  const size_t nlead = od.size() - 1;
  Batch batch(od, nlead);
  std::vector<int64_t> jo, xo, fo, ko, to, bo, oo;
  auto jd = J.dimensions();
  if (jd.size() < 2 || jd[jd.size() - 1] != n || jd[jd.size() - 2] != n ||
      !batch.offsets(jd, 2, n * n, jo) || !batch.offsets(x.dimensions(), 1, n, xo) ||
      !batch.offsets(f.dimensions(), 1, n, fo) || !batch.offsets(key.dimensions(), 1, 2, ko) ||
      !batch.offsets(t0.dimensions(), 0, 1, to) || !batch.offsets(beta.dimensions(), 0, 1, bo) ||
      !batch.offsets(od, 1, n, oo))
    return ffi::Error::InvalidArgument("SK sweep: inconsistent shapes");
  const T* Jp = J.typed_data();
  const int8_t* xp = x.typed_data();
  const T* fp = f.typed_data();
  const uint32_t* kp = key.typed_data();
  const uint32_t* tp = t0.typed_data();
  const T* bp = beta.typed_data();
  int8_t* xs = x_out->typed_data();
  T* fs = f_out->typed_data();
  int32_t* acc = accepted->typed_data();
  const int nthreads = resolve_threads(threads, batch.size);
#pragma omp parallel num_threads(nthreads)
  {
    std::vector<uint32_t> r(n + 4);
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < batch.size; ++b) {
      int8_t* s = xs + oo[b];
      T* fb = fs + oo[b];
      std::memcpy(s, xp + xo[b], n);
      std::memcpy(fb, fp + fo[b], n * sizeof(T));
      acc[b] = int32_t(chain_sweeps<T>(Jp + jo[b], s, fb, double(bp[bo[b]]), n, tp[to[b]],
                                       kp[ko[b]], kp[ko[b] + 1], sweeps, r.data()));
    }
  }
  return ffi::Error::Success();
}

}  // namespace

#define DIFFPHYS_EXPORT extern "C" __attribute__((visibility("default")))
DIFFPHYS_EXPORT XLA_FFI_Error* DiffphysSkSweepF32(XLA_FFI_CallFrame*);
DIFFPHYS_EXPORT XLA_FFI_Error* DiffphysSkSweepF64(XLA_FFI_CallFrame*);

#define DIFFPHYS_SK_BIND(DT)                    \
  ffi::Ffi::Bind()                              \
      .Arg<ffi::Buffer<DT>>()                   \
      .Arg<ffi::Buffer<ffi::S8>>()              \
      .Arg<ffi::Buffer<DT>>()                   \
      .Arg<ffi::Buffer<ffi::U32>>()             \
      .Arg<ffi::Buffer<ffi::U32>>()             \
      .Arg<ffi::Buffer<DT>>()                   \
      .Ret<ffi::Buffer<ffi::S8>>()              \
      .Ret<ffi::Buffer<DT>>()                   \
      .Ret<ffi::Buffer<ffi::S32>>()             \
      .Attr<int64_t>("sweeps")                  \
      .Attr<int64_t>("threads")

XLA_FFI_DEFINE_HANDLER_SYMBOL(DiffphysSkSweepF32, SkSweepImpl<ffi::DataType::F32>,
                              DIFFPHYS_SK_BIND(ffi::DataType::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(DiffphysSkSweepF64, SkSweepImpl<ffi::DataType::F64>,
                              DIFFPHYS_SK_BIND(ffi::DataType::F64));
