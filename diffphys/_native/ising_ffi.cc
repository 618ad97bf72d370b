// Fused checkerboard Metropolis sweeps of the periodic 2D/3D Ising model, as XLA FFI
// custom calls (diffphys.models.fused_checkerboard, backend="native").
//
// Layout. The lattice (n_0, ..., n_{d-1}) is stored by checkerboard colour: spins[c][r][j],
// c = colour (sum of coordinates mod 2), r = the row (flat index of the first d-1
// coordinates), j = 0..m-1 with m = n_{d-1}/2; the colour-c site of pair j of row r sits at
// column 2j + ((parity(r) + c) mod 2). Couplings for the per-bond kernel come in the same
// layout, one array per neighbour slot k = (+e_0, -e_0, ..., +e_{d-1}, -e_{d-1}).
//
// Random numbers. Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11), keyed by two 32-bit
// words of the step key, counter (index, colour c, absolute sweep index, stream). Stream 0:
// one random byte per site of the colour-c plane (site r*m + j is byte p = r*m + j), made 128
// at a time by eight Philox blocks: byte p = 128 G + 32 w + 4 i + k is byte k of output word w
// of block 8 G + i (so the eight-lane generator stores its four output registers as they are,
// each one byte for 32 consecutive sites); stream 1: 64 more bits for site r*m + j.
// The stream depends only on (key, sweep index, site), so k + k sweeps == 2k sweeps exactly.
//
// Exact lazy acceptance. A site flips iff U < P, U uniform on 64 binary digits, P =
// floor(exp(-beta dE) 2^64) (flip always if dE <= 0). The first byte of U decides unless it
// equals the first byte of P (uniform couplings: P from a table per (s, sum of neighbours))
// or lies within a rounding margin of exp(-beta dE) (per-bond couplings: compared against
// -log(r/256), no exp); the rare undecided sites draw 64 more bits (stream 1).
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
#define DIFFPHYS_X86 1
#endif

#include "philox.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using diffphys_native::philox;
#if defined(__x86_64__) || defined(_M_X64)
using diffphys_native::philox8;
#endif

// 64 further random bits of site j of the colour-`row` plane (stream 1)
inline uint64_t extra_bits(int64_t j, uint32_t row, uint32_t t, uint32_t k0, uint32_t k1) {
  uint32_t c[4] = {uint32_t(j), row, t, 1u};
  philox(c, k0, k1);
  return (uint64_t(c[0]) << 32) | c[1];
}

// Random bytes of the 128-byte groups first .. first + ngrp - 1 (stream 0; header comment).
void row_bytes_scalar(uint8_t* __restrict out, int64_t first, int64_t ngrp, uint32_t row,
                      uint32_t t, uint32_t k0, uint32_t k1) {
  for (int64_t g = 0; g < ngrp; ++g)
    for (int i = 0; i < 8; ++i) {
      uint32_t c[4] = {uint32_t(8 * (first + g) + i), row, t, 0u};
      philox(c, k0, k1);
      for (int w = 0; w < 4; ++w) std::memcpy(out + 128 * g + 32 * w + 4 * i, c + w, 4);
    }
}

// Uniform couplings: decide every site of a row from its first random byte; ties[j] = 1
// marks the sites whose byte equals the first byte of P (left for the exact pass).
template <int D>
int64_t uniform_pass_scalar(int8_t* __restrict s, const int8_t* plus, const int8_t* minus,
                            const int8_t* const* rows, const uint8_t* rnd, uint32_t* ties,
                            int64_t j0, int64_t m, const uint8_t* top, const uint8_t* always,
                            int* any_tie) {
  int64_t flips = 0;
  for (int64_t j = j0; j < m; ++j) {
    int sum = plus[j] + minus[j];
    for (int a = 0; a < 2 * D - 2; ++a) sum += rows[a][j];
    const int8_t si = s[j];
    const int idx = (si > 0) * (2 * D + 1) + (sum + 2 * D) / 2;
    const uint8_t r8 = rnd[j];
    const bool flip = always[idx] | (r8 < top[idx]);
    const bool tie = !always[idx] & (r8 == top[idx]);
    ties[j >> 5] |= uint32_t(tie) << (j & 31);
    *any_tie |= tie;
    s[j] = flip ? int8_t(-si) : si;
    flips += flip;
  }
  return flips;
}

#ifdef DIFFPHYS_X86

// The same bytes as row_bytes_scalar: one group per call of the eight-lane generator, its
// four output registers stored as they are. The earlier block-contiguous layout needed a
// scalar transpose (a load and a store per 4 bytes); with this layout, the modulo-free energy
// pass and per-call tables the kernel went from 1.06 to 1.53 flips/ns per CPU-s at L = 256 and
// from 1.23 to 1.85 at L = 1024 (10 sweeps per call). The generator alone makes 4.4 bytes/ns
// on one core of this machine (one byte per site): the ceiling of this design.
__attribute__((target("avx2"))) void row_bytes_avx2(uint8_t* __restrict out, int64_t first,
                                                    int64_t ngrp, uint32_t row, uint32_t t,
                                                    uint32_t k0, uint32_t k1) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i x1r = _mm256_set1_epi32(int(row)), x2t = _mm256_set1_epi32(int(t));
  for (int64_t g = 0; g < ngrp; ++g) {
    __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32(int(uint32_t(8 * (first + g)))), lane);
    __m256i x1 = x1r, x2 = x2t, x3 = _mm256_setzero_si256();
    philox8(x0, x1, x2, x3, k0, k1);
    __m256i* o = reinterpret_cast<__m256i*>(out + 128 * g);
    _mm256_storeu_si256(o, x0);
    _mm256_storeu_si256(o + 1, x1);
    _mm256_storeu_si256(o + 2, x2);
    _mm256_storeu_si256(o + 3, x3);
  }
}

template <int D>
__attribute__((target("avx2"))) int64_t uniform_pass_avx2(
    int8_t* __restrict s, const int8_t* plus, const int8_t* minus, const int8_t* const* rows,
    const uint8_t* rnd, uint32_t* ties, int64_t m, const uint8_t* top, const uint8_t* always,
    int* any_tie) {
  // top and always are 16-byte tables (`Uniform`), always[v] = 0 or 1: -always is the mask
  const __m256i T = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(top)));
  const __m256i A = _mm256_sub_epi8(
      _mm256_setzero_si256(),
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(always))));
  const __m256i off = _mm256_set1_epi8(2 * D), up = _mm256_set1_epi8(2 * D + 1);
  const __m256i low7 = _mm256_set1_epi8(0x7F), zero = _mm256_setzero_si256();
#define ld(p) _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
  int64_t flips = 0;
  __m256i any = zero;
  int64_t j = 0;
  for (; j + 32 <= m; j += 32) {
    __m256i sum = _mm256_add_epi8(ld(plus + j), ld(minus + j));
    for (int a = 0; a < 2 * D - 2; ++a) sum = _mm256_add_epi8(sum, ld(rows[a] + j));
    const __m256i sv = ld(s + j);
    __m256i idx = _mm256_and_si256(_mm256_srli_epi16(_mm256_add_epi8(sum, off), 1), low7);
    idx = _mm256_add_epi8(idx, _mm256_and_si256(_mm256_cmpgt_epi8(sv, zero), up));
    const __m256i th = _mm256_shuffle_epi8(T, idx), al = _mm256_shuffle_epi8(A, idx);
    const __m256i r8 = ld(rnd + j);
    const __m256i ge = _mm256_cmpeq_epi8(_mm256_max_epu8(r8, th), r8);  // r8 >= th
    const __m256i flip = _mm256_or_si256(al, _mm256_andnot_si256(ge, _mm256_set1_epi8(-1)));
    const __m256i tie = _mm256_andnot_si256(al, _mm256_cmpeq_epi8(r8, th));
    any = _mm256_or_si256(any, tie);
    ties[j >> 5] = uint32_t(_mm256_movemask_epi8(tie));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(s + j),
                        _mm256_blendv_epi8(sv, _mm256_sub_epi8(zero, sv), flip));
    flips += __builtin_popcount(uint32_t(_mm256_movemask_epi8(flip)));
  }
#undef ld
  *any_tie = !_mm256_testz_si256(any, any);
  return flips + uniform_pass_scalar<D>(s, plus, minus, rows, rnd, ties, j, m, top, always,
                                        any_tie);
}

const bool kHaveAvx2 = __builtin_cpu_supports("avx2");
#else
const bool kHaveAvx2 = false;
#endif

inline void row_bytes(uint8_t* out, int64_t first, int64_t ngrp, uint32_t row, uint32_t t,
                      uint32_t k0, uint32_t k1) {
#ifdef DIFFPHYS_X86
  if (kHaveAvx2) return row_bytes_avx2(out, first, ngrp, row, t, k0, k1);
#endif
  row_bytes_scalar(out, first, ngrp, row, t, k0, k1);
}

template <int D>
int64_t uniform_pass(int8_t* s, const int8_t* plus, const int8_t* minus,
                     const int8_t* const* rows, const uint8_t* rnd, uint32_t* ties, int64_t m,
                     const uint8_t* top, const uint8_t* always, int* any_tie) {
  *any_tie = 0;
  ties[m >> 5] = 0;  // the partial word of the scalar tail
#ifdef DIFFPHYS_X86
  if (kHaveAvx2) return uniform_pass_avx2<D>(s, plus, minus, rows, rnd, ties, m, top, always, any_tie);
#endif
  std::fill(ties, ties + m / 32 + 1, 0u);
  return uniform_pass_scalar<D>(s, plus, minus, rows, rnd, ties, 0, m, top, always, any_tie);
}

inline uint64_t fixed_point(double p) {  // floor(p 2^64), p in [0, 1]
  const double s = std::ldexp(p, 64);
  if (!(s < 18446744073709551615.0)) return std::numeric_limits<uint64_t>::max();
  return s > 0 ? uint64_t(s) : 0;
}

struct Geometry {
  int d;
  int64_t n[3];
  int64_t R, m;
  int parity(int64_t r) const {
    if (d == 2) return int(r & 1);
    return int(((r / n[1]) + (r % n[1])) & 1);
  }
  // rows of the neighbours along the first d-1 axes: (+e_0, -e_0[, +e_1, -e_1])
  void neighbour_rows(int64_t r, int64_t* out) const {
    auto up = [](int64_t i, int64_t n) { return i + 1 == n ? 0 : i + 1; };
    auto down = [](int64_t i, int64_t n) { return i == 0 ? n - 1 : i - 1; };
    if (d == 2) {
      out[0] = up(r, n[0]);
      out[1] = down(r, n[0]);
    } else {
      const int64_t i0 = r / n[1], i1 = r - i0 * n[1];
      out[0] = up(i0, n[0]) * n[1] + i1;
      out[1] = down(i0, n[0]) * n[1] + i1;
      out[2] = i0 * n[1] + up(i1, n[1]);
      out[3] = i0 * n[1] + down(i1, n[1]);
    }
  }
};

struct Uniform {  // acceptance table indexed by (s > 0) * (2d + 1) + (sum + 2d) / 2
  alignas(16) uint8_t top[16];
  alignas(16) uint8_t always[16];
  uint64_t P[14];
  double J, h;
};

struct Bonds {
  const float* J;  // (2, 2d, R, m)
  const float* h;  // (2, R, m)
  double beta;
  double sure_flip[256], sure_stay[256];
};

Uniform make_uniform(int d, double beta, double J, double h) {
  Uniform u{};
  u.J = J;
  u.h = h;
  for (int up = 0; up < 2; ++up) {
    for (int k = 0; k <= 2 * d; ++k) {
      const int idx = up * (2 * d + 1) + k;
      const double s = up ? 1.0 : -1.0, sum = 2.0 * k - 2.0 * d;
      const double x = beta * 2.0 * s * (J * sum + h);  // beta dE
      if (x <= 0) {
        u.always[idx] = 1;
        u.top[idx] = 255;
        u.P[idx] = std::numeric_limits<uint64_t>::max();
      } else {
        u.P[idx] = fixed_point(std::exp(-x));
        u.top[idx] = uint8_t(u.P[idx] >> 56);
        u.always[idx] = 0;
      }
    }
  }
  return u;
}

void fill_bond_tables(Bonds& b) {
  // flip for sure if x < sure_flip[r] (exp(-x) > (r+1)/256), stay if x > sure_stay[r]
  for (int r = 0; r < 256; ++r) {
    b.sure_flip[r] = -std::log((r + 1) / 256.0) * (1.0 - 1e-9) - 1e-12;
    b.sure_stay[r] = r == 0 ? std::numeric_limits<double>::infinity()
                            : -std::log(r / 256.0) * (1.0 + 1e-9) + 1e-12;
  }
}

struct Scratch {
  std::vector<uint8_t> rnd;
  std::vector<int8_t> ext;
  std::vector<uint32_t> ties;  // one bit per site
  std::vector<int8_t> seg;     // 3D segments: 4 neighbour planes of up to chunk rows
  explicit Scratch(int64_t m, int64_t chunk)
      : rnd(128 * (chunk * m / 128 + 3)), ext(m + 2), ties(chunk * m / 32 + 2),
        seg(4 * chunk * m + 64) {}
};

// 3D, uniform couplings: one colour update of the rows (i0, i1a .. i1b - 1) at once, a
// "segment" of (i1b - i1a) m contiguous sites. Its four in-plane neighbour arrays (+-e_2 from
// the row itself with the checkerboard offset, +-e_1 from the rows i1 +- 1) are copied into
// contiguous buffers, so the vector pass runs over the whole segment: at L = 64 a row is a
// single 32-site vector, and one pass per row spent most of its time outside the vector loop.
template <bool UNI>
int64_t update_segment3(int8_t* S, const Geometry& g, int c, int64_t i0, int64_t i1a,
                        int64_t i1b, uint32_t t, uint32_t k0, uint32_t k1, const Uniform& U,
                        Scratch& w, const uint8_t* rnd) {
  const int64_t R = g.R, m = g.m, n0 = g.n[0], n1 = g.n[1];
  const int64_t len = (i1b - i1a) * m, r0 = i0 * n1 + i1a;
  int8_t* s = S + (c * R + r0) * m;
  const int8_t* oth = S + (1 - c) * R * m;  // the other colour's plane
  int8_t* plus = w.seg.data();
  int8_t* minus = plus + len;
  int8_t* e1p = minus + len;
  int8_t* e1m = e1p + len;
  for (int64_t i1 = i1a; i1 < i1b; ++i1) {
    const int8_t* o = oth + (i0 * n1 + i1) * m;
    const int64_t k = (i1 - i1a) * m;
    const int off = int((i0 + i1 + c) & 1);
    // plus[j] = o[(j + off) mod m], minus[j] = o[(j + off - 1) mod m]
    if (off) {
      std::memcpy(plus + k, o + 1, m - 1);
      plus[k + m - 1] = o[0];
      std::memcpy(minus + k, o, m);
    } else {
      std::memcpy(plus + k, o, m);
      minus[k] = o[m - 1];
      std::memcpy(minus + k + 1, o, m - 1);
    }
    const int64_t up1 = i1 + 1 == n1 ? 0 : i1 + 1, dn1 = i1 == 0 ? n1 - 1 : i1 - 1;
    std::memcpy(e1p + k, oth + (i0 * n1 + up1) * m, m);
    std::memcpy(e1m + k, oth + (i0 * n1 + dn1) * m, m);
  }
  const int64_t up0 = i0 + 1 == n0 ? 0 : i0 + 1, dn0 = i0 == 0 ? n0 - 1 : i0 - 1;
  const int8_t* rows[4] = {oth + (up0 * n1 + i1a) * m, oth + (dn0 * n1 + i1a) * m, e1p, e1m};
  int any_tie = 0;
  uint32_t* ties = w.ties.data();
  int64_t flips = uniform_pass<3>(s, plus, minus, rows, rnd, ties, len, U.top, U.always,
                                  &any_tie);
  const uint32_t row = uint32_t(c);
  const int64_t site0 = r0 * m;
  for (int64_t word = 0; any_tie && word <= len / 32; ++word) {
    for (uint32_t bits = ties[word]; bits; bits &= bits - 1) {
      const int64_t j = 32 * word + __builtin_ctz(bits);
      const int sum = plus[j] + minus[j] + rows[0][j] + rows[1][j] + rows[2][j] + rows[3][j];
      const int si = s[j];
      const int idx = (si > 0) * 7 + (sum + 6) / 2;
      const uint64_t u = (uint64_t(rnd[j]) << 56) | (extra_bits(site0 + j, row, t, k0, k1) >> 8);
      if (u < U.P[idx]) {
        s[j] = int8_t(-si);
        ++flips;
      }
    }
  }
  return flips;
}

// One colour update of one row; returns the number of flips.
template <int D, bool UNI>
int64_t update_row(int8_t* S, const Geometry& g, int c, int64_t r, const int64_t* nr, int par,
                   uint32_t t, uint32_t k0, uint32_t k1, const Uniform& U, const Bonds& B,
                   Scratch& w, const uint8_t* rnd) {
  const int64_t R = g.R, m = g.m;
  int8_t* s = S + (c * R + r) * m;
  const int8_t* o = S + ((1 - c) * R + r) * m;
  const int8_t* rows[2 * D - 2];
  for (int a = 0; a < 2 * D - 2; ++a) rows[a] = S + ((1 - c) * R + nr[a]) * m;
  int8_t* ext = w.ext.data();
  ext[0] = o[m - 1];
  std::memcpy(ext + 1, o, m);
  ext[m + 1] = o[0];
  const int off = (par + c) & 1;
  const int8_t* plus = off ? ext + 2 : ext + 1;   // neighbour at column + 1
  const int8_t* minus = off ? ext + 1 : ext;      // neighbour at column - 1
  const uint32_t row = uint32_t(c);  // the stream of the colour-c plane
  const int64_t site0 = r * m;       // the plane index of site j is site0 + j
  int64_t flips = 0;
  if constexpr (UNI) {
    int any_tie = 0;
    flips = uniform_pass<D>(s, plus, minus, rows, rnd, w.ties.data(), m, U.top, U.always,
                            &any_tie);
    for (int64_t word = 0; any_tie && word <= m / 32; ++word) {
      for (uint32_t bits = w.ties[word]; bits; bits &= bits - 1) {
        const int64_t j = 32 * word + __builtin_ctz(bits);
        // recompute the table index (s[j] has not been flipped: a tie never flips in pass 1)
        int sum = plus[j] + minus[j];
        for (int a = 0; a < 2 * D - 2; ++a) sum += rows[a][j];
        const int si = s[j];
        const int idx = (si > 0) * (2 * D + 1) + (sum + 2 * D) / 2;
        const uint64_t u = (uint64_t(rnd[j]) << 56) | (extra_bits(site0 + j, row, t, k0, k1) >> 8);
        if (u < U.P[idx]) {
          s[j] = int8_t(-si);
          ++flips;
        }
      }
    }
  } else {
    const int64_t plane = R * m;
    const float* J = B.J + (c * 2 * D) * plane + r * m;
    const float* h = B.h + c * plane + r * m;
    for (int64_t j = 0; j < m; ++j) {
      float f = h[j];
      for (int a = 0; a < 2 * D - 2; ++a) f += J[a * plane + j] * float(rows[a][j]);
      f += J[(2 * D - 2) * plane + j] * float(plus[j]);
      f += J[(2 * D - 1) * plane + j] * float(minus[j]);
      const int si = s[j];
      const double x = B.beta * 2.0 * double(si) * double(f);
      const uint8_t r8 = rnd[j];
      bool flip;
      if (x <= 0 || x < B.sure_flip[r8]) {
        flip = true;
      } else if (x > B.sure_stay[r8]) {
        flip = false;
      } else {
        const uint64_t P = fixed_point(std::exp(-x));
        const uint64_t u = (uint64_t(r8) << 56) | (extra_bits(site0 + j, row, t, k0, k1) >> 8);
        flip = u < P;
      }
      s[j] = flip ? int8_t(-si) : int8_t(si);
      flips += flip;
    }
  }
  return flips;
}

// One colour update of rows ra .. rb - 1 (their random bytes made in one go).
template <int D, bool UNI>
int64_t update_rows(int8_t* S, const Geometry& g, int c, int64_t ra, int64_t rb, uint32_t t,
                    uint32_t k0, uint32_t k1, const Uniform& U, const Bonds& B, Scratch& w) {
  const int64_t first = ra * g.m / 128, last = (rb * g.m + 127) / 128;
  row_bytes(w.rnd.data(), first, last - first, uint32_t(c), t, k0, k1);
  int64_t flips = 0;
  if constexpr (D == 3 && UNI) {  // whole segments of rows with the same i0
    for (int64_t r = ra; r < rb;) {
      const int64_t i0 = r / g.n[1], i1a = r - i0 * g.n[1];
      const int64_t i1b = std::min(g.n[1], i1a + (rb - r));
      flips += update_segment3<UNI>(S, g, c, i0, i1a, i1b, t, k0, k1, U, w,
                                    w.rnd.data() + (r * g.m - 128 * first));
      r += i1b - i1a;
    }
    return flips;
  }
  // the row's coordinates advance without division (3D rows were ~40% index arithmetic at
  // L = 64, where a row is one 32-site vector)
  int64_t i0 = D == 3 ? ra / g.n[1] : ra, i1 = D == 3 ? ra - i0 * g.n[1] : 0;
  for (int64_t r = ra; r < rb; ++r) {
    int64_t nr[4];
    const int64_t up0 = i0 + 1 == g.n[0] ? 0 : i0 + 1, dn0 = i0 == 0 ? g.n[0] - 1 : i0 - 1;
    if constexpr (D == 2) {
      nr[0] = up0;
      nr[1] = dn0;
    } else {
      const int64_t n1 = g.n[1];
      nr[0] = up0 * n1 + i1;
      nr[1] = dn0 * n1 + i1;
      nr[2] = i0 * n1 + (i1 + 1 == n1 ? 0 : i1 + 1);
      nr[3] = i0 * n1 + (i1 == 0 ? n1 - 1 : i1 - 1);
    }
    const int par = int((i0 + i1) & 1);
    flips += update_row<D, UNI>(S, g, c, r, nr, par, t, k0, k1, U, B, w,
                                w.rnd.data() + (r * g.m - 128 * first));
    if constexpr (D == 3) {
      if (++i1 == g.n[1]) {
        i1 = 0;
        ++i0;
      }
    } else {
      ++i0;
    }
  }
  return flips;
}

// E = -sum_bonds J s s' - sum h s: every bond has exactly one colour-0 end. `ext` (m + 2
// bytes) takes the colour-1 row with its periodic wrap, so the loops have no index
// arithmetic and vectorise (with `%` per site this pass cost as much as ~5 sweeps).
template <int D, bool UNI>
double row_energy(const int8_t* S, const Geometry& g, int64_t r, const Uniform& U,
                  const Bonds& B, int8_t* ext) {
  const int64_t R = g.R, m = g.m;
  int64_t nr[4] = {0, 0, 0, 0};
  g.neighbour_rows(r, nr);
  const int off = g.parity(r) & 1;
  double e = 0;
  for (int c = 0; c < 2; ++c) {
    const int8_t* s = S + (c * R + r) * m;
    if constexpr (UNI) {
      int64_t ms = 0;
      for (int64_t j = 0; j < m; ++j) ms += s[j];
      e -= U.h * double(ms);
    } else {
      const float* h = B.h + c * R * m + r * m;
      for (int64_t j = 0; j < m; ++j) e -= double(h[j]) * s[j];
    }
  }
  const int8_t* s = S + r * m;  // colour 0
  const int8_t* o = S + (R + r) * m;
  ext[0] = o[m - 1];
  std::memcpy(ext + 1, o, m);
  ext[m + 1] = o[0];
  const int8_t* p = off ? ext + 2 : ext + 1;  // the neighbour at column + 1
  const int8_t* q = off ? ext + 1 : ext;      // the neighbour at column - 1
  const int8_t* rows[2 * D - 2];
  for (int a = 0; a < 2 * D - 2; ++a) rows[a] = S + (R + nr[a]) * m;
  if constexpr (UNI) {
    int64_t acc = 0;
    for (int64_t j = 0; j < m; ++j) {
      int sum = p[j] + q[j];
      for (int a = 0; a < 2 * D - 2; ++a) sum += rows[a][j];
      acc += s[j] * sum;
    }
    e -= U.J * double(acc);
  } else {
    const int64_t plane = R * m;
    const float* J = B.J + r * m;
    for (int64_t j = 0; j < m; ++j) {
      double f = double(J[(2 * D - 2) * plane + j]) * p[j] + double(J[(2 * D - 1) * plane + j]) * q[j];
      for (int a = 0; a < 2 * D - 2; ++a) f += double(J[a * plane + j]) * rows[a][j];
      e -= double(s[j]) * f;
    }
  }
  return e;
}

// Leading (vmapped) dimensions: element b of the output batch reads element
// offset(b) of an input whose leading dimensions are either the output's or 1.
struct Batch {
  std::vector<int64_t> dims;
  int64_t size = 1;
  explicit Batch(ffi::Span<const int64_t> out, size_t nlead) {
    for (size_t i = 0; i < nlead; ++i) {
      dims.push_back(out[i]);
      size *= out[i];
    }
  }
  std::vector<int64_t> offsets(ffi::Span<const int64_t> in, int64_t elem) const {
    std::vector<int64_t> off(size);
    std::vector<int64_t> stride(dims.size());
    int64_t st = 1;
    for (size_t i = dims.size(); i-- > 0;) {
      stride[i] = in[i] == 1 ? 0 : st;
      st *= in[i];
    }
    for (int64_t b = 0; b < size; ++b) {
      int64_t rem = b, o = 0;
      for (size_t i = dims.size(); i-- > 0;) {
        o += (rem % dims[i]) * stride[i];
        rem /= dims[i];
      }
      off[b] = o * elem;
    }
    return off;
  }
};

template <int D, bool UNI>
void run_all(int8_t* out, const Geometry& g, const Batch& batch, const std::vector<int64_t>& so,
             const uint32_t* key, const std::vector<int64_t>& ko, const uint32_t* t0,
             const std::vector<int64_t>& to, const std::vector<Uniform>& uni,
             const std::vector<Bonds>& bonds, float* stats, int64_t sweeps, int threads) {
  const int64_t N = 2 * g.R * g.m;
  const int64_t chunk = std::max<int64_t>(1, 8192 / g.m), nchunk = (g.R + chunk - 1) / chunk;
  const bool per_lattice = batch.size >= threads || N < (1 << 15);
  auto energy = [&](int64_t b, Scratch& w) {
    double e = 0;
    for (int64_t r = 0; r < g.R; ++r)
      e += row_energy<D, UNI>(out + so[b], g, r, uni[b], bonds[b], w.ext.data());
    return e;
  };
  if (per_lattice) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1 && batch.size > 1)
    for (int64_t b = 0; b < batch.size; ++b) {
      Scratch w(g.m, chunk);
      int8_t* S = out + so[b];
      const uint32_t k0 = key[ko[b]], k1 = key[ko[b] + 1], t = t0[to[b]];
      int64_t flips = 0;
      for (int64_t i = 0; i < sweeps; ++i)
        for (int c = 0; c < 2; ++c)
          for (int64_t q = 0; q < nchunk; ++q)
            flips += update_rows<D, UNI>(S, g, c, q * chunk, std::min(g.R, (q + 1) * chunk),
                                         uint32_t(t + i), k0, k1, uni[b], bonds[b], w);
      stats[2 * b] = float(double(flips) / double(N) / double(sweeps));
      stats[2 * b + 1] = float(energy(b, w));
    }
    return;
  }
  for (int64_t b = 0; b < batch.size; ++b) {
    int8_t* S = out + so[b];
    const uint32_t k0 = key[ko[b]], k1 = key[ko[b] + 1], t = t0[to[b]];
    int64_t flips = 0;
    double e = 0;
#pragma omp parallel num_threads(threads) reduction(+ : flips, e)
    {
      Scratch w(g.m, chunk);
      for (int64_t i = 0; i < sweeps; ++i)
        for (int c = 0; c < 2; ++c) {
#pragma omp for schedule(static)
          for (int64_t q = 0; q < nchunk; ++q)
            flips += update_rows<D, UNI>(S, g, c, q * chunk, std::min(g.R, (q + 1) * chunk),
                                         uint32_t(t + i), k0, k1, uni[b], bonds[b], w);
        }
#pragma omp for schedule(static)
      for (int64_t r = 0; r < g.R; ++r)
        e += row_energy<D, UNI>(S, g, r, uni[b], bonds[b], w.ext.data());
    }
    stats[2 * b] = float(double(flips) / double(N) / double(sweeps));
    stats[2 * b + 1] = float(e);
  }
}

int resolve_threads(int64_t threads) {
#ifdef _OPENMP
  return threads > 0 ? int(threads) : omp_get_max_threads();
#else
  (void)threads;
  return 1;
#endif
}

ffi::Error check_geometry(Geometry& g, int64_t d, int64_t n0, int64_t n1, int64_t n2,
                          ffi::Span<const int64_t> sd) {
  if (d != 2 && d != 3) return ffi::Error::InvalidArgument("fused Ising kernel: d must be 2 or 3");
  g.d = int(d);
  g.n[0] = n0;
  g.n[1] = n1;
  g.n[2] = n2;
  g.R = d == 2 ? n0 : n0 * n1;
  g.m = (d == 2 ? n1 : n2) / 2;
  if (sd.size() < 3 || sd[sd.size() - 3] != 2 || sd[sd.size() - 2] != g.R ||
      sd[sd.size() - 1] != g.m)
    return ffi::Error::InvalidArgument("fused Ising kernel: spins have the wrong shape");
  return ffi::Error::Success();
}

template <bool UNI>
void dispatch(int d, int8_t* out, const Geometry& g, const Batch& batch,
              const std::vector<int64_t>& so, const uint32_t* key, const std::vector<int64_t>& ko,
              const uint32_t* t0, const std::vector<int64_t>& to, const std::vector<Uniform>& uni,
              const std::vector<Bonds>& bonds, float* stats, int64_t sweeps, int threads) {
  if (d == 2)
    run_all<2, UNI>(out, g, batch, so, key, ko, t0, to, uni, bonds, stats, sweeps, threads);
  else
    run_all<3, UNI>(out, g, batch, so, key, ko, t0, to, uni, bonds, stats, sweeps, threads);
}

// spins (*B, 2, R, m) int8; key (*B, 2) uint32; t0 (*B) uint32; params (*B, 3) f32
// = (beta, J, h) -> spins out, stats (*B, 2) f32 = (acceptance rate, energy).
ffi::Error IsingUniformImpl(ffi::AnyBuffer spins, ffi::Buffer<ffi::U32> key,
                            ffi::Buffer<ffi::U32> t0, ffi::Buffer<ffi::F32> params,
                            ffi::Result<ffi::AnyBuffer> out, ffi::Result<ffi::Buffer<ffi::F32>> stats,
                            int64_t d, int64_t n0, int64_t n1, int64_t n2, int64_t sweeps,
                            int64_t threads) {
  Geometry g{};
  auto sd = out->dimensions();
  if (auto err = check_geometry(g, d, n0, n1, n2, sd); err.failure()) return err;
  const size_t nlead = sd.size() - 3;
  Batch batch(sd, nlead);
  const int64_t N = 2 * g.R * g.m;
  auto si = batch.offsets(spins.dimensions(), N);
  auto so = batch.offsets(sd, N);
  auto ko = batch.offsets(key.dimensions(), 2);
  auto to = batch.offsets(t0.dimensions(), 1);
  auto po = batch.offsets(params.dimensions(), 3);
  const int8_t* in = reinterpret_cast<const int8_t*>(spins.untyped_data());
  int8_t* o = reinterpret_cast<int8_t*>(out->untyped_data());
  for (int64_t b = 0; b < batch.size; ++b) std::memcpy(o + so[b], in + si[b], N);
  std::vector<Uniform> uni(batch.size);
  std::vector<Bonds> bonds(batch.size);
  const float* p = params.typed_data();
  for (int64_t b = 0; b < batch.size; ++b)
    uni[b] = make_uniform(g.d, p[po[b]], p[po[b] + 1], p[po[b] + 2]);
  dispatch<true>(g.d, o, g, batch, so, key.typed_data(), ko, t0.typed_data(), to, uni, bonds,
                 stats->typed_data(), sweeps, resolve_threads(threads));
  return ffi::Error::Success();
}

// As IsingUniform with per-bond couplings J (*B, 2, 2d, R, m), fields h (*B, 2, R, m) and
// params (*B, 1) = (beta).
ffi::Error IsingBondsImpl(ffi::AnyBuffer spins, ffi::Buffer<ffi::U32> key,
                          ffi::Buffer<ffi::U32> t0, ffi::Buffer<ffi::F32> params,
                          ffi::Buffer<ffi::F32> J, ffi::Buffer<ffi::F32> h,
                          ffi::Result<ffi::AnyBuffer> out, ffi::Result<ffi::Buffer<ffi::F32>> stats,
                          int64_t d, int64_t n0, int64_t n1, int64_t n2, int64_t sweeps,
                          int64_t threads) {
  Geometry g{};
  auto sd = out->dimensions();
  if (auto err = check_geometry(g, d, n0, n1, n2, sd); err.failure()) return err;
  const size_t nlead = sd.size() - 3;
  Batch batch(sd, nlead);
  const int64_t N = 2 * g.R * g.m;
  auto si = batch.offsets(spins.dimensions(), N);
  auto so = batch.offsets(sd, N);
  auto ko = batch.offsets(key.dimensions(), 2);
  auto to = batch.offsets(t0.dimensions(), 1);
  auto po = batch.offsets(params.dimensions(), 1);
  auto jo = batch.offsets(J.dimensions(), 2 * d * N);
  auto ho = batch.offsets(h.dimensions(), N);
  const int8_t* in = reinterpret_cast<const int8_t*>(spins.untyped_data());
  int8_t* o = reinterpret_cast<int8_t*>(out->untyped_data());
  for (int64_t b = 0; b < batch.size; ++b) std::memcpy(o + so[b], in + si[b], N);
  std::vector<Uniform> uni(batch.size);
  std::vector<Bonds> bonds(batch.size);
  for (int64_t b = 0; b < batch.size; ++b) {
    bonds[b].J = J.typed_data() + jo[b];
    bonds[b].h = h.typed_data() + ho[b];
    bonds[b].beta = params.typed_data()[po[b]];
    fill_bond_tables(bonds[b]);
  }
  dispatch<false>(g.d, o, g, batch, so, key.typed_data(), ko, t0.typed_data(), to, uni, bonds,
                  stats->typed_data(), sweeps, resolve_threads(threads));
  return ffi::Error::Success();
}

}  // namespace

// exported despite -fvisibility=hidden (the library is loaded with ctypes)
#define DIFFPHYS_EXPORT extern "C" __attribute__((visibility("default")))
DIFFPHYS_EXPORT XLA_FFI_Error* DiffphysIsingUniform(XLA_FFI_CallFrame*);
DIFFPHYS_EXPORT XLA_FFI_Error* DiffphysIsingBonds(XLA_FFI_CallFrame*);

XLA_FFI_DEFINE_HANDLER_SYMBOL(DiffphysIsingUniform, IsingUniformImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("d")
                                  .Attr<int64_t>("n0")
                                  .Attr<int64_t>("n1")
                                  .Attr<int64_t>("n2")
                                  .Attr<int64_t>("sweeps")
                                  .Attr<int64_t>("threads"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(DiffphysIsingBonds, IsingBondsImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("d")
                                  .Attr<int64_t>("n0")
                                  .Attr<int64_t>("n1")
                                  .Attr<int64_t>("n2")
                                  .Attr<int64_t>("sweeps")
                                  .Attr<int64_t>("threads"));
