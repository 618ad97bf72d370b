// Multispin-coded checkerboard Metropolis sweeps of an ensemble of periodic 2D/3D Ising
// lattices with uniform couplings, as an XLA FFI custom call
// (diffphys.models.multispin_checkerboard, backend="native").
//
// Layout. Bit b of word W[g][x] (uint64, lattice order x) is the spin (1 = up) of sample
// 64 g + b at site x. A colour update visits the sites of one checkerboard colour; the
// neighbour sum of all 64 samples is a bit-sliced count of antiparallel neighbours
// a = popcount_k(s ^ n_k) (three bit planes), and s * sum_k n_k = z - 2a.
//
// Random bits. Every sample has its own random bits (bit b of every random word), so the 64
// samples of a word are independent chains. Sample b flips iff U_b < P(case_b), U_b uniform
// on 64 binary digits (bit b of random words 0, 1, 2, ...: most significant first), P =
// floor(exp(-beta dE) 2^64) from a table over (a, s) (always when dE <= 0). The comparison is
// lazy and bit-sliced: word k decides every sample whose bit differs from bit 63 - k of its
// P, so all 64 samples are decided after ~log2(64) + 2 words. Words come from Philox4x32-10
// (Salmon, Moraes, Dror, Shaw, SC'11) keyed by two 32-bit words of the step key: words 0-7
// of site i (index in the colour list) of colour c of group g are blocks
// q = 4 ((2 g + c) Nc + i) + 0..3 of counter (q, 0, sweep, 2); word k >= 8 is half of block
// (w, k / 2, sweep, 3), w = (2 g + c) Nc + i. The bits of sample b depend only on (key,
// absolute sweep, site, b): k + k sweeps == 2k sweeps, and sample b's chain does not depend
// on the other samples (nor on how many groups there are).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define DIFFPHYS_MS_X86 1
#endif

#include "philox.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int kBulk = 8;  // random words per site made in bulk (4 Philox blocks)

using diffphys_native::philox;
#if defined(__x86_64__) || defined(_M_X64)
using diffphys_native::philox8;
#endif

// blocks first .. first + nblk - 1 of counter (q, 0, t, 2), 16 bytes each, into out
void bulk_scalar(uint32_t* __restrict out, uint32_t first, int64_t nblk, uint32_t t,
                 uint32_t k0, uint32_t k1) {
  for (int64_t b = 0; b < nblk; ++b) {
    uint32_t c[4] = {uint32_t(first + b), 0u, t, 2u};
    philox(c, k0, k1);
    std::memcpy(out + 4 * b, c, 16);
  }
}

#ifdef DIFFPHYS_MS_X86

__attribute__((target("avx2"))) void bulk_avx2(uint32_t* __restrict out, uint32_t first,
                                               int64_t nblk, uint32_t t, uint32_t k0,
                                               uint32_t k1) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  alignas(32) uint32_t w[4][8];
  int64_t b0 = 0;
  for (; b0 + 8 <= nblk; b0 += 8) {
    __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32(int(uint32_t(first + b0))), lane);
    __m256i x1 = _mm256_setzero_si256(), x2 = _mm256_set1_epi32(int(t));
    __m256i x3 = _mm256_set1_epi32(2);
    philox8(x0, x1, x2, x3, k0, k1);
    // transpose 4 x 8 -> 8 blocks of 4 words
    const __m256i t0 = _mm256_unpacklo_epi32(x0, x1), t1 = _mm256_unpackhi_epi32(x0, x1);
    const __m256i t2 = _mm256_unpacklo_epi32(x2, x3), t3 = _mm256_unpackhi_epi32(x2, x3);
    const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    // u0 = blocks 0, 4; u1 = 1, 5; u2 = 2, 6; u3 = 3, 7 (128-bit halves)
    __m256i* o = reinterpret_cast<__m256i*>(out + 4 * b0);
    _mm256_storeu_si256(o + 0, _mm256_permute2x128_si256(u0, u1, 0x20));
    _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(u2, u3, 0x20));
    _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(u0, u1, 0x31));
    _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(u2, u3, 0x31));
    (void)w;
  }
  bulk_scalar(out + 4 * b0, uint32_t(first + b0), nblk - b0, t, k0, k1);
}
const bool kMsAvx2 = __builtin_cpu_supports("avx2");
#else
const bool kMsAvx2 = false;
#endif

inline void bulk(uint32_t* out, uint32_t first, int64_t nblk, uint32_t t, uint32_t k0,
                 uint32_t k1) {
#ifdef DIFFPHYS_MS_X86
  if (kMsAvx2) return bulk_avx2(out, first, nblk, t, k0, k1);
#endif
  bulk_scalar(out, first, nblk, t, k0, k1);
}

inline uint64_t extra_word(uint32_t w, int k, uint32_t t, uint32_t k0, uint32_t k1) {
  uint32_t c[4] = {w, uint32_t(k / 2), t, 3u};
  philox(c, k0, k1);
  return k & 1 ? (uint64_t(c[3]) << 32) | c[2] : (uint64_t(c[1]) << 32) | c[0];
}

inline uint64_t fixed_point_ms(double p) {  // floor(p 2^64), p in [0, 1]
  const double s = std::ldexp(p, 64);
  if (!(s < 18446744073709551615.0)) return std::numeric_limits<uint64_t>::max();
  return s > 0 ? uint64_t(s) : 0;
}

// bit-sliced counter: plane i holds bit i of 64 per-sample counts
inline void vadd(uint64_t* cnt, uint64_t x) {
  for (int i = 0; x; ++i) {
    const uint64_t carry = cnt[i] & x;
    cnt[i] ^= x;
    x = carry;
  }
}
constexpr int kPlanes = 48;

void vflush(const uint64_t* cnt, int64_t* out) {  // add the 64 counts into out[0..63]
  for (int i = 0; i < kPlanes; ++i)
    for (uint64_t bits = cnt[i]; bits; bits &= bits - 1) out[__builtin_ctzll(bits)] += int64_t(1) << i;
}

struct Table {
  int z;
  int nval;                  // distinct probabilities P < 1
  uint64_t P[14];            // their fixed-point values
  uint16_t cases[14];        // bit (up * (z + 1) + a) set when case (a, s) has P[v]
  uint16_t always;           // cases with dE <= 0
};

Table make_table(int d, double beta, double J, double h) {
  Table T{};
  T.z = 2 * d;
  for (int up = 0; up < 2; ++up)
    for (int a = 0; a <= T.z; ++a) {
      const int cs = up * (T.z + 1) + a;
      const double s = up ? 1.0 : -1.0;
      const double x = beta * 2.0 * (s * h + J * (T.z - 2 * a));  // beta dE
      if (x <= 0) {
        T.always |= uint16_t(1u << cs);
        continue;
      }
      const uint64_t P = fixed_point_ms(std::exp(-x));
      int v = 0;
      while (v < T.nval && T.P[v] != P) ++v;
      if (v == T.nval) T.P[T.nval++] = P;
      T.cases[v] |= uint16_t(1u << cs);
    }
  return T;
}

struct Lattice {
  int d, z;
  int64_t N, Nc;
  std::vector<int32_t> sites[2];  // sites of each colour, lattice order
  std::vector<int32_t> nb;        // (N, z) neighbours: +e_0, -e_0, ...
  Lattice(int d_, const int64_t* n) : d(d_), z(2 * d_) {
    N = 1;
    for (int a = 0; a < d; ++a) N *= n[a];
    Nc = N / 2;
    nb.resize(N * z);
    for (int64_t x = 0; x < N; ++x) {
      int64_t co[3], rem = x;
      for (int a = d - 1; a >= 0; --a) {
        co[a] = rem % n[a];
        rem /= n[a];
      }
      int64_t par = 0;
      for (int a = 0; a < d; ++a) par += co[a];
      sites[par & 1].push_back(int32_t(x));
      int64_t stride = 1;
      for (int a = d - 1; a >= 0; --a) {
        const int64_t up = co[a] + 1 == n[a] ? -(n[a] - 1) : 1;
        const int64_t dn = co[a] == 0 ? n[a] - 1 : -1;
        nb[x * z + 2 * a] = int32_t(x + up * stride);
        nb[x * z + 2 * a + 1] = int32_t(x + dn * stride);
        stride *= n[a];
      }
    }
  }
};

// one colour update of sites i0 .. i1 - 1 (colour list) of group g
template <int Z>
void update(uint64_t* __restrict W, const Lattice& L, const Table& T, int c, int64_t g,
            int64_t i0, int64_t i1, uint32_t t, uint32_t k0, uint32_t k1,
            std::vector<uint32_t>& rnd, uint64_t* cnt) {
  const int64_t n = i1 - i0;
  rnd.resize(size_t(4 * 4 * n));
  const uint32_t wbase = uint32_t((2 * g + c) * L.Nc);
  bulk(rnd.data(), 4 * (wbase + uint32_t(i0)), 4 * n, t, k0, k1);
  const uint64_t* R = reinterpret_cast<const uint64_t*>(rnd.data());
  const int32_t* sites = L.sites[c].data();
  const int32_t* nb = L.nb.data();
  for (int64_t i = i0; i < i1; ++i) {
    const int32_t x = sites[i];
    const uint64_t s = W[x];
    uint64_t c0 = 0, c1 = 0, c2 = 0;
#pragma GCC unroll 6
    for (int k = 0; k < Z; ++k) {
      const uint64_t y = s ^ W[nb[x * Z + k]];
      const uint64_t t0 = c0 & y;
      c0 ^= y;
      const uint64_t t1 = c1 & t0;
      c1 ^= t0;
      c2 |= t1;
    }
    // case masks: bit a of the count; case (a, up) -> eq(a) & (up ? s : ~s)
    uint64_t eq[Z + 1];
#pragma GCC unroll 7
    for (int a = 0; a <= Z; ++a)
      eq[a] = (a & 1 ? c0 : ~c0) & (a & 2 ? c1 : ~c1) & (a & 4 ? c2 : ~c2);
    auto mask_of = [&](uint16_t cases) {
      uint64_t m = 0;
      for (int a = 0; a <= Z; ++a) {
        const uint64_t dn = (cases >> a) & 1 ? ~s : 0, upm = (cases >> (Z + 1 + a)) & 1 ? s : 0;
        m |= eq[a] & (dn | upm);
      }
      return m;
    };
    uint64_t flip = mask_of(T.always);
    uint64_t mv[14], und = 0;
    for (int v = 0; v < T.nval; ++v) {
      mv[v] = mask_of(T.cases[v]);
      und |= mv[v];
    }
    const uint64_t* r = R + kBulk * (i - i0);
    for (int k = 0; und && k < 64; ++k) {
      const uint64_t u = k < kBulk ? r[k] : extra_word(wbase + uint32_t(i), k, t, k0, k1);
      uint64_t pk = 0;
      for (int v = 0; v < T.nval; ++v) pk |= mv[v] & (0 - ((T.P[v] >> (63 - k)) & 1));
      flip |= und & ~u & pk;
      und &= ~(u ^ pk);
    }
    W[x] = s ^ flip;
    vadd(cnt, flip);
  }
}

// per-sample energies of group g: E = -J sum_bonds s s' - h sum s
void energies(const uint64_t* W, const Lattice& L, double J, double h, float* out) {
  std::vector<uint64_t> anti(kPlanes, 0), up(kPlanes, 0);
  for (int64_t x = 0; x < L.N; ++x) {
    for (int a = 0; a < L.d; ++a) vadd(anti.data(), W[x] ^ W[L.nb[x * L.z + 2 * a]]);
    vadd(up.data(), W[x]);
  }
  std::vector<int64_t> na(64, 0), nu(64, 0);
  vflush(anti.data(), na.data());
  vflush(up.data(), nu.data());
  for (int b = 0; b < 64; ++b)
    out[b] = float(-J * double(L.d * L.N - 2 * na[b]) - h * double(2 * nu[b] - L.N));
}

// words (G, N, 2) u32 (= (G, N) u64); key (2,) u32; t0 () u32; params (3,) f32 = (beta, J, h)
// -> words out, stats (G * 64, 2) f32 = (acceptance rate, energy) per sample.
ffi::Error MultispinImpl(ffi::Buffer<ffi::U32> words, ffi::Buffer<ffi::U32> key,
                         ffi::Buffer<ffi::U32> t0, ffi::Buffer<ffi::F32> params,
                         ffi::Result<ffi::Buffer<ffi::U32>> out,
                         ffi::Result<ffi::Buffer<ffi::F32>> stats, int64_t d, int64_t n0,
                         int64_t n1, int64_t n2, int64_t sweeps, int64_t threads) {
  if (d != 2 && d != 3) return ffi::Error::InvalidArgument("multispin kernel: d must be 2 or 3");
  const int64_t n[3] = {n0, n1, n2};
  auto wd = words.dimensions();
  if (wd.size() != 3 || wd[2] != 2 || key.element_count() != 2 || t0.element_count() != 1 ||
      params.element_count() != 3)
    return ffi::Error::InvalidArgument("multispin kernel: inputs have the wrong shape");
  const Lattice L(int(d), n);
  if (wd[1] != L.N) return ffi::Error::InvalidArgument("multispin kernel: wrong lattice size");
  const int64_t G = wd[0];
  if (8 * G * L.Nc >= (int64_t(1) << 32))
    return ffi::Error::InvalidArgument("multispin kernel: ensemble too large for the counter");
  uint64_t* W = reinterpret_cast<uint64_t*>(out->typed_data());
  std::memcpy(W, words.typed_data(), size_t(G * L.N * 8));
  const float* p = params.typed_data();
  const double beta = p[0], J = p[1], h = p[2];
  const Table T = make_table(int(d), beta, J, h);
  const uint32_t k0 = key.typed_data()[0], k1 = key.typed_data()[1], t = t0.typed_data()[0];
#ifdef _OPENMP
  const int nth = threads > 0 ? int(threads) : omp_get_max_threads();
#else
  const int nth = 1;
  (void)threads;
#endif
  const int64_t chunk = 512, nchunk = (L.Nc + chunk - 1) / chunk, items = G * nchunk;
  std::vector<int64_t> flips(G * 64, 0);
  float* st = stats->typed_data();
#pragma omp parallel num_threads(nth) if (nth > 1 && items > 1)
  {
    std::vector<uint32_t> rnd;
    std::vector<uint64_t> cnt(G * kPlanes, 0);
    for (int64_t sw = 0; sw < sweeps; ++sw)
      for (int c = 0; c < 2; ++c) {
#pragma omp for schedule(static)
        for (int64_t it = 0; it < items; ++it) {
          const int64_t g = it / nchunk, q = it % nchunk;
          const int64_t i0 = q * chunk, i1 = std::min(L.Nc, i0 + chunk);
          uint64_t* Wg = W + g * L.N;
          if (d == 2)
            update<4>(Wg, L, T, c, g, i0, i1, uint32_t(t + sw), k0, k1, rnd, &cnt[g * kPlanes]);
          else
            update<6>(Wg, L, T, c, g, i0, i1, uint32_t(t + sw), k0, k1, rnd, &cnt[g * kPlanes]);
        }
      }
    std::vector<int64_t> mine(G * 64, 0);
    for (int64_t g = 0; g < G; ++g) vflush(&cnt[g * kPlanes], &mine[g * 64]);
#pragma omp critical
    for (int64_t i = 0; i < G * 64; ++i) flips[i] += mine[i];
#pragma omp for schedule(static)
    for (int64_t g = 0; g < G; ++g) {
      float e[64];
      energies(W + g * L.N, L, J, h, e);
      for (int b = 0; b < 64; ++b) st[2 * (g * 64 + b) + 1] = e[b];
    }
  }
  for (int64_t i = 0; i < G * 64; ++i)
    st[2 * i] = float(double(flips[i]) / double(L.N) / double(sweeps));
  return ffi::Error::Success();
}

}  // namespace

#define DIFFPHYS_MS_EXPORT extern "C" __attribute__((visibility("default")))
DIFFPHYS_MS_EXPORT XLA_FFI_Error* DiffphysIsingMultispin(XLA_FFI_CallFrame*);

XLA_FFI_DEFINE_HANDLER_SYMBOL(DiffphysIsingMultispin, MultispinImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::U32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("d")
                                  .Attr<int64_t>("n0")
                                  .Attr<int64_t>("n1")
                                  .Attr<int64_t>("n2")
                                  .Attr<int64_t>("sweeps")
                                  .Attr<int64_t>("threads"));
