// Fused sequential single-site sweeps of the dense pairwise Potts model (models.PairwisePotts),
// Metropolis or heat bath, as XLA FFI custom calls (diffphys.models.potts_sequential,
// backend="native").
//
// Model: E(s) = -sum_i h_i(s_i) - 1/2 sum_{i != j} J_ij(s_i, s_j), s_i in 0..q-1, with
// J_ij(a, b) = J_ji(b, a). The kernel keeps the table of local fields
// F[j][a] = h_j(a) + sum_k J_kj(s_k, a), so that E(s with s_j = a) = const - F[j][a]. A change
// of site k from state o to state n updates every field with two rows of the couplings,
// F[j][a] += J_kj(n, a) - J_kj(o, a): O(N q), in the field type (as the pure-JAX kernel; taking
// the difference in double and rounding once was 1.6-2x slower at N <= 512, q = 4, for a
// sqrt(2) smaller drift); a rejected or unchanged site costs nothing. The sums over sites (the
// energy) and the acceptance / heat-bath probabilities are computed in double. One sweep visits
// sites 0..N-1 in order; `sweeps` sweeps per call. Chains are independent: OpenMP over the
// flattened batch, each chain running all its sweeps before the next (its couplings in cache).
//
// Random numbers. Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11) keyed by the two words of the
// chain's step key: block (i / 2, absolute sweep t, 0, 0x5054), words 2 (i mod 2) and
// 2 (i mod 2) + 1 are the two 32-bit words (w0, w1) of site i in sweep t. The stream depends
// only on (key, t, i), so k + k sweeps with one key equal 2k sweeps bit for bit.
//
// Metropolis (Metropolis et al. 1953): proposal b = o + 1 + floor(w0 (q - 1) / 2^32) (mod q),
// uniform over the q - 1 other states up to (q - 1) 2^-32; accepted iff beta dE <= 0 or
// (w1 + 1/2) 2^-32 < exp(-beta dE), dE = F[i][o] - F[i][b] (exp in double).
// Heat bath (Glauber 1963; Geman & Geman 1984): s_i = the first a with
// u sum_b p_b < sum_{b <= a} p_b, p_a = exp(beta (F[i][a] - max_b F[i][b])) in double and
// u = (2^32 w0 + w1 + 1/2) 2^-64.
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

constexpr uint32_t kStream = 0x5054u;  // "PT"

#if defined(__x86_64__) || defined(_M_X64)
const bool kHaveAvx2 = __builtin_cpu_supports("avx2");
#endif

// the words of sweep t: `philox_words` (philox.h) on this kernel's stream
inline void sweep_words(uint32_t* r, int64_t n, uint32_t t, uint32_t k0, uint32_t k1) {
  diffphys_native::philox_words(r, n, t, kStream, k0, k1);
}

// F[j][a] += J_kj(n, a) - J_kj(o, a) for all j, a; `row` = J[k] of shape (N, q, q).
template <typename T, int Q>
inline void field_update_fixed(T* __restrict F, const T* __restrict row, int64_t n, int64_t o,
                               int64_t nn) {
  for (int64_t j = 0; j < n; ++j) {
    const T* blk = row + j * Q * Q;
    T* f = F + j * Q;
    for (int a = 0; a < Q; ++a) f[a] += blk[nn * Q + a] - blk[o * Q + a];
  }
}

template <typename T>
inline void field_update_any(T* __restrict F, const T* __restrict row, int64_t n, int64_t q,
                             int64_t o, int64_t nn) {
  for (int64_t j = 0; j < n; ++j) {
    const T* blk = row + j * q * q;
    T* f = F + j * q;
    for (int64_t a = 0; a < q; ++a) f[a] += blk[nn * q + a] - blk[o * q + a];
  }
}

#if defined(__x86_64__) || defined(_M_X64)
template <typename T, int Q>
__attribute__((target("avx2"))) void field_update_fixed_avx2(T* __restrict F,
                                                             const T* __restrict row, int64_t n,
                                                             int64_t o, int64_t nn) {
  field_update_fixed<T, Q>(F, row, n, o, nn);
}
template <typename T>
__attribute__((target("avx2"))) void field_update_any_avx2(T* __restrict F,
                                                           const T* __restrict row, int64_t n,
                                                           int64_t q, int64_t o, int64_t nn) {
  field_update_any<T>(F, row, n, q, o, nn);
}
#endif

template <typename T>
void field_update(T* F, const T* row, int64_t n, int64_t q, int64_t o, int64_t nn) {
#if defined(__x86_64__) || defined(_M_X64)
  if (kHaveAvx2) {
    switch (q) {
      case 2: return field_update_fixed_avx2<T, 2>(F, row, n, o, nn);
      case 3: return field_update_fixed_avx2<T, 3>(F, row, n, o, nn);
      case 4: return field_update_fixed_avx2<T, 4>(F, row, n, o, nn);
      default: return field_update_any_avx2<T>(F, row, n, q, o, nn);
    }
  }
#endif
  switch (q) {
    case 2: return field_update_fixed<T, 2>(F, row, n, o, nn);
    case 3: return field_update_fixed<T, 3>(F, row, n, o, nn);
    case 4: return field_update_fixed<T, 4>(F, row, n, o, nn);
    default: return field_update_any<T>(F, row, n, q, o, nn);
  }
}

// `sweeps` sequential sweeps of one chain, in place; returns the number of site changes.
// rule 0: Metropolis, 1: heat bath. r: 2 n + 4 words; p: q doubles.
template <typename T>
int64_t chain_sweeps(const T* J, int8_t* s, T* F, double beta, int64_t n, int64_t q, int rule,
                     uint32_t t0, uint32_t k0, uint32_t k1, int64_t sweeps, uint32_t* r,
                     double* p) {
  int64_t changes = 0;
  const int64_t nq2 = n * q * q;
  for (int64_t k = 0; k < sweeps; ++k) {
    sweep_words(r, 2 * n, uint32_t(t0 + k), k0, k1);
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t w0 = r[2 * i], w1 = r[2 * i + 1];
      const T* fi = F + i * q;
      const int64_t o = s[i];
      int64_t b;
      if (rule == 0) {
        b = q == 2 ? 1 - o : (o + 1 + int64_t((uint64_t(w0) * uint64_t(q - 1)) >> 32)) % q;
        const double bde = beta * (double(fi[o]) - double(fi[b]));
        bool acc = bde <= 0.0;
        if (!acc && bde < 23.0)  // exp(-23) < 2^-33 <= (w1 + 1/2) 2^-32: rejected anyway
          acc = (double(w1) + 0.5) * 0x1p-32 < std::exp(-bde);
        if (!acc) continue;
      } else {
        double m = double(fi[0]);
        for (int64_t a = 1; a < q; ++a) m = std::max(m, double(fi[a]));
        double total = 0.0;
        for (int64_t a = 0; a < q; ++a) {
          total += std::exp(beta * (double(fi[a]) - m));
          p[a] = total;
        }
        const double u =
            ((double(w0) * 0x1p32 + double(w1)) + 0.5) * 0x1p-64 * total;
        b = q - 1;
        for (int64_t a = 0; a < q - 1; ++a)
          if (u < p[a]) {
            b = a;
            break;
          }
        if (b == o) continue;
      }
      field_update<T>(F, J + i * nq2, n, q, o, b);
      s[i] = int8_t(b);
      ++changes;
    }
  }
  return changes;
}

// E = -1/2 sum_i (F[i][s_i] + h_i(s_i)), in double.
template <typename T>
double energy_from_fields(const T* F, const T* h, const int8_t* s, int64_t n, int64_t q) {
  double e = 0.0;
  for (int64_t i = 0; i < n; ++i) e += double(F[i * q + s[i]]) + double(h[i * q + s[i]]);
  return -0.5 * e;
}

// J (*B, N, N, q, q); h (*B, N, q); x (*B, N) int8; F (*B, N, q); key (*B, 2) u32; t0 (*B) u32;
// beta (*B) -> x out (*B, N), F out (*B, N, q), energy (*B), changes (*B) int32 (over all
// sweeps). Leading dims of size 1 broadcast (vmap_method="expand_dims").
template <ffi::DataType DT>
ffi::Error PottsSweepImpl(ffi::Buffer<DT> J, ffi::Buffer<DT> h, ffi::Buffer<ffi::S8> x,
                          ffi::Buffer<DT> F, ffi::Buffer<ffi::U32> key, ffi::Buffer<ffi::U32> t0,
                          ffi::Buffer<DT> beta, ffi::Result<ffi::Buffer<ffi::S8>> x_out,
                          ffi::Result<ffi::Buffer<DT>> F_out,
                          ffi::Result<ffi::Buffer<DT>> energy,
                          ffi::Result<ffi::Buffer<ffi::S32>> changes, int64_t sweeps,
                          int64_t threads, int64_t rule) {
  using T = ffi::NativeType<DT>;
  auto od = F_out->dimensions();
  if (od.size() < 2) return ffi::Error::InvalidArgument("Potts sweep: fields need (N, q) axes");
  const int64_t n = od[od.size() - 2], q = od[od.size() - 1];
  if (q < 2 || q > 127 || (rule != 0 && rule != 1))
    return ffi::Error::InvalidArgument("Potts sweep: need 2 <= q <= 127 and rule 0 or 1");
  const size_t nlead = od.size() - 2;
  Batch batch(od, nlead);
  std::vector<int64_t> jo, ho, xo, fo, ko, to, bo, oxo, ofo;
  auto jd = J.dimensions();
  if (jd.size() < 4 || jd[jd.size() - 4] != n || jd[jd.size() - 3] != n ||
      jd[jd.size() - 2] != q || jd[jd.size() - 1] != q || !batch.offsets(jd, 4, n * n * q * q, jo) ||
      !batch.offsets(h.dimensions(), 2, n * q, ho) || !batch.offsets(x.dimensions(), 1, n, xo) ||
      !batch.offsets(F.dimensions(), 2, n * q, fo) ||
      !batch.offsets(key.dimensions(), 1, 2, ko) || !batch.offsets(t0.dimensions(), 0, 1, to) ||
      !batch.offsets(beta.dimensions(), 0, 1, bo) ||
      !batch.offsets(x_out->dimensions(), 1, n, oxo) || !batch.offsets(od, 2, n * q, ofo))
    return ffi::Error::InvalidArgument("Potts sweep: inconsistent shapes");
  const T* Jp = J.typed_data();
  const T* hp = h.typed_data();
  const int8_t* xp = x.typed_data();
  const T* fp = F.typed_data();
  const uint32_t* kp = key.typed_data();
  const uint32_t* tp = t0.typed_data();
  const T* bp = beta.typed_data();
  int8_t* xs = x_out->typed_data();
  T* fs = F_out->typed_data();
  T* es = energy->typed_data();
  int32_t* ch = changes->typed_data();
  const int nthreads = resolve_threads(threads, batch.size);
  int bad = 0;
#pragma omp parallel num_threads(nthreads) reduction(| : bad)
  {
    std::vector<uint32_t> r(2 * n + 8);
    std::vector<double> p(q);
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < batch.size; ++b) {
      int8_t* s = xs + oxo[b];
      T* fb = fs + ofo[b];
      std::memcpy(s, xp + xo[b], n);
      std::memcpy(fb, fp + fo[b], n * q * sizeof(T));
      bool ok = true;
      for (int64_t i = 0; i < n; ++i) ok = ok && s[i] >= 0 && s[i] < q;
      if (!ok) {  // a state outside 0..q-1 would index outside the field table
        bad = 1;
        ch[b] = 0;
        es[b] = T(NAN);
        continue;
      }
      ch[b] = int32_t(chain_sweeps<T>(Jp + jo[b], s, fb, double(bp[bo[b]]), n, q, int(rule),
                                      tp[to[b]], kp[ko[b]], kp[ko[b] + 1], sweeps, r.data(),
                                      p.data()));
      es[b] = T(energy_from_fields<T>(fb, hp + ho[b], s, n, q));
    }
  }
  if (bad) return ffi::Error::InvalidArgument("Potts sweep: a state outside 0..q-1");
  return ffi::Error::Success();
}

}  // namespace

#define DIFFPHYS_EXPORT extern "C" __attribute__((visibility("default")))
DIFFPHYS_EXPORT XLA_FFI_Error* DiffphysPottsSweepF32(XLA_FFI_CallFrame*);
DIFFPHYS_EXPORT XLA_FFI_Error* DiffphysPottsSweepF64(XLA_FFI_CallFrame*);

#define DIFFPHYS_POTTS_BIND(DT)                 \
  ffi::Ffi::Bind()                              \
      .Arg<ffi::Buffer<DT>>()                   \
      .Arg<ffi::Buffer<DT>>()                   \
      .Arg<ffi::Buffer<ffi::S8>>()              \
      .Arg<ffi::Buffer<DT>>()                   \
      .Arg<ffi::Buffer<ffi::U32>>()             \
      .Arg<ffi::Buffer<ffi::U32>>()             \
      .Arg<ffi::Buffer<DT>>()                   \
      .Ret<ffi::Buffer<ffi::S8>>()              \
      .Ret<ffi::Buffer<DT>>()                   \
      .Ret<ffi::Buffer<DT>>()                   \
      .Ret<ffi::Buffer<ffi::S32>>()             \
      .Attr<int64_t>("sweeps")                  \
      .Attr<int64_t>("threads")                 \
      .Attr<int64_t>("rule")

XLA_FFI_DEFINE_HANDLER_SYMBOL(DiffphysPottsSweepF32, PottsSweepImpl<ffi::DataType::F32>,
                              DIFFPHYS_POTTS_BIND(ffi::DataType::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(DiffphysPottsSweepF64, PottsSweepImpl<ffi::DataType::F64>,
                              DIFFPHYS_POTTS_BIND(ffi::DataType::F64));
