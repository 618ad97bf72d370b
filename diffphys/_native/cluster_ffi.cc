// Wolff single-cluster updates of the periodic 2D/3D Ising ferromagnet with one coupling J > 0
// and zero field, as an XLA FFI custom call (diffphys.models.wolff, backend="native").
//
// One call does `steps` Wolff updates of every chain of a batch (Wolff, PRL 62, 361 (1989)):
// pick a uniform seed site, grow its cluster breadth first from a queue, adding each
// neighbour that is aligned with the seed's original spin and not yet in the cluster with
// probability p = 1 - exp(-2 beta J) per bond examined, then the cluster is flipped (sites are
// flipped as they join, which also marks them). A neighbour reached over two bonds (linear
// size 2, where +e_a and -e_a coincide) gets two independent tries, as the two bonds of
// `models.Ising.energy` require. Chains are independent: OpenMP over the flattened batch.
// Memory: the spins, a queue of N int32 and a neighbour table of 2 d N int32 per thread (16
// bytes per site in 2D, 24 in 3D).
//
// Energy. The call returns the integer bond sum S = sum over bonds of s_x s_y (E = -J S) of the
// final configuration, from one O(N) pass at the end of the call (cheaper than a pass over
// each cluster's boundary, which needed a membership stamp per site and unpredictable
// branches: ~0.5 of the update's cost at T_c).
//
// Random numbers. Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11) keyed by the two 32-bit
// words of the step key. Update t (the absolute update index, kept in the state) reads a
// sequence of 32-bit words: word j is word (j mod 4) of the block with counter
// (j / 4, t, 0, 0x574F). The seed site is Lemire's exact bounded integer (Lemire, ACM TOMACS
// 29, 3 (2019)) on the first word(s); then every bond try takes the next word u and succeeds
// iff (u, u') < P = floor(p 2^64) as a 64-bit number, the second word u' being drawn only
// when u equals the high half of P (exact lazy comparison; p in double precision, so the bond
// probability is P / 2^64, within 2^-53 relative of p); u' is the m-th word of a side
// sequence (counters (m / 4, t, 1, 0x574F)) for the m-th tie of the update, and a tied
// neighbour is resolved after the other bonds of its site. The words of update t depend only on
// (key, t, j), so k + k updates with one key equal 2k updates bit for bit.
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

constexpr uint32_t kStream = 0x574Fu;  // "WO"

// The 32-bit words of one update, in order: word j is word (j mod 4) of the Philox block with
// counter (j / 4, t, 0, kStream); blocks are made eight at a time (AVX2 where available, the
// same words as the scalar generator) and appended to the unread words of the buffer, so
// `ensure(k)` makes k words readable at buf[pos..] without changing their order.
struct Words {
  uint32_t k0, k1, t;
  uint32_t block = 0;  // next block to make
  int pos = 0, end = 0;
  alignas(32) uint32_t buf[64];
  Words(uint32_t k0_, uint32_t k1_, uint32_t t_) : k0(k0_), k1(k1_), t(t_) {}
  void top_up();  // moves the unread words to the front and appends 32 new ones
  inline void ensure(int k) {
    if (end - pos < k) top_up();
  }
  inline uint32_t next() {
    ensure(1);
    return buf[pos++];
  }
  // the low word of a bond try whose first word tied with the threshold's high word: word
  // (m mod 4) of block (m / 4, t, 1, kStream) for the m-th tie of the update (a side sequence,
  // so the main one has no data-dependent second read in the bond loop)
  uint32_t n_ties = 0;
  uint32_t tie_word() {
    uint32_t c[4] = {n_ties / 4, t, 1u, kStream};
    philox(c, k0, k1);
    return c[n_ties++ % 4];
  }
  // uniform integer in [0, n), exactly (Lemire's multiply-and-reject, ACM TOMACS 29, 3, 2019)
  inline uint32_t below(uint32_t n) {
    uint64_t m = uint64_t(next()) * n;
    uint32_t low = uint32_t(m);
    if (low < n) {
      const uint32_t thresh = (0u - n) % n;
      while (low < thresh) {
        m = uint64_t(next()) * n;
        low = uint32_t(m);
      }
    }
    return uint32_t(m >> 32);
  }
};

// the 32 words of blocks block..block+7 into dst
void make_words_scalar(const Words& w, uint32_t* dst) {
  for (int b = 0; b < 8; ++b) {
    uint32_t c[4] = {w.block + uint32_t(b), w.t, 0u, kStream};
    philox(c, w.k0, w.k1);
    std::memcpy(dst + 4 * b, c, 16);
  }
}

#if defined(__x86_64__) || defined(_M_X64)
__attribute__((target("avx2"))) void make_words_avx2(const Words& w, uint32_t* dst) {
  using diffphys_native::philox8;
  __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32(int(w.block)),
                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256i x1 = _mm256_set1_epi32(int(w.t)), x2 = _mm256_setzero_si256();
  __m256i x3 = _mm256_set1_epi32(int(kStream));
  philox8(x0, x1, x2, x3, w.k0, w.k1);
  // lanes -> blocks: dst[4 b + k] = word k of block b (a 4 x 8 transpose)
  const __m256i t0 = _mm256_unpacklo_epi32(x0, x1), t1 = _mm256_unpackhi_epi32(x0, x1);
  const __m256i t2 = _mm256_unpacklo_epi32(x2, x3), t3 = _mm256_unpackhi_epi32(x2, x3);
  const __m256i b0 = _mm256_unpacklo_epi64(t0, t2), b1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i b2 = _mm256_unpacklo_epi64(t1, t3), b3 = _mm256_unpackhi_epi64(t1, t3);
  // b0 = blocks (0, 4), b1 = (1, 5), b2 = (2, 6), b3 = (3, 7) as 128-bit halves
  __m256i* out = reinterpret_cast<__m256i*>(dst);
  _mm256_storeu_si256(out + 0, _mm256_permute2x128_si256(b0, b1, 0x20));
  _mm256_storeu_si256(out + 1, _mm256_permute2x128_si256(b2, b3, 0x20));
  _mm256_storeu_si256(out + 2, _mm256_permute2x128_si256(b0, b1, 0x31));
  _mm256_storeu_si256(out + 3, _mm256_permute2x128_si256(b2, b3, 0x31));
}
const bool kHaveAvx2 = __builtin_cpu_supports("avx2");
#endif

void Words::top_up() {
  const int left = end - pos;  // < 32 whenever ensure(k <= 32) calls this
  std::memmove(buf, buf + pos, sizeof(uint32_t) * size_t(left));
  pos = 0;
#if defined(__x86_64__) || defined(_M_X64)
  if (kHaveAvx2)
    make_words_avx2(*this, buf + left);
  else
    make_words_scalar(*this, buf + left);
#else
  make_words_scalar(*this, buf + left);
#endif
  end = left + 32;
  block += 8;
}

struct Site {
  int32_t i;
  int32_t c[3];
};

struct Lattice {
  int d;
  int32_t n[3];
  int32_t stride[3];
  int64_t size;
  Lattice(int d_, int64_t n0, int64_t n1, int64_t n2) : d(d_) {
    n[0] = int32_t(n0);
    n[1] = int32_t(n1);
    n[2] = d_ == 3 ? int32_t(n2) : 1;
    stride[d - 1] = 1;
    for (int a = d - 2; a >= 0; --a) stride[a] = stride[a + 1] * n[a + 1];
    size = 1;
    for (int a = 0; a < d; ++a) size *= n[a];
  }
  inline Site site(int64_t i) const {
    Site s{};
    s.i = int32_t(i);
    int64_t rem = i;
    for (int a = 0; a < d; ++a) {
      s.c[a] = int32_t(rem / stride[a]);
      rem -= int64_t(s.c[a]) * stride[a];
    }
    return s;
  }
  // the 2d neighbours of x, slots (+e_0, -e_0, +e_1, -e_1, ...), without division
  template <int D>
  inline void neighbours(const Site& x, Site* out) const {
    for (int a = 0; a < D; ++a) {
      const int32_t c = x.c[a];
      const int32_t up = c + 1 == n[a] ? 0 : c + 1, dn = c == 0 ? n[a] - 1 : c - 1;
      out[2 * a] = x;
      out[2 * a].c[a] = up;
      out[2 * a].i = x.i + (up - c) * stride[a];
      out[2 * a + 1] = x;
      out[2 * a + 1].c[a] = dn;
      out[2 * a + 1].i = x.i + (dn - c) * stride[a];
    }
  }
};

// The bond sum sum_<xy> s_x s_y of the periodic lattice: one pass per direction over rows of
// the last axis (the wrap-around neighbour of a row's last site handled apart), no division.
int64_t bond_sum(const Lattice& L, const int8_t* s) {
  int64_t total = 0;
  const int32_t n_last = L.n[L.d - 1];
  const int64_t rows = L.size / n_last;
  for (int64_t r = 0; r < rows; ++r) {  // last axis, stride 1
    const int8_t* row = s + r * n_last;
    int32_t acc = 0;
    for (int32_t c = 0; c + 1 < n_last; ++c) acc += row[c] * row[c + 1];
    total += acc + row[n_last - 1] * row[0];
  }
  for (int a = 0; a < L.d - 1; ++a) {  // axis a: site x and x + stride[a], wrapping at n[a]
    const int64_t block = int64_t(L.n[a]) * L.stride[a];  // one period of axis a
    for (int64_t base = 0; base < L.size; base += block) {
      for (int32_t c = 0; c < L.n[a]; ++c) {
        const int8_t* p = s + base + int64_t(c) * L.stride[a];
        const int8_t* q = s + base + int64_t(c + 1 == L.n[a] ? 0 : c + 1) * L.stride[a];
        int32_t acc = 0;
        for (int32_t j = 0; j < L.stride[a]; ++j) acc += p[j] * q[j];
        total += acc;
      }
    }
  }
  return total;
}

// The neighbour table of the lattice: nbr[2 d x + q] is neighbour q of site x (slots
// +e_0, -e_0, +e_1, ...). Kept per thread across calls while the lattice is the same.
const int32_t* neighbour_table(const Lattice& L) {
  thread_local std::vector<int32_t> table;
  thread_local int64_t key[4] = {0, 0, 0, 0};
  const int64_t want[4] = {L.d, L.n[0], L.n[1], L.n[2]};
  if (!std::equal(want, want + 4, key) || table.empty()) {
    const int deg = 2 * L.d;
    table.resize(size_t(L.size * deg));
    Site nb[6];
    for (int64_t i = 0; i < L.size; ++i) {
      const Site x = L.site(i);
      if (L.d == 2)
        L.neighbours<2>(x, nb);
      else
        L.neighbours<3>(x, nb);
      for (int q = 0; q < deg; ++q) table[size_t(i * deg + q)] = nb[q].i;
    }
    std::copy(want, want + 4, key);
  }
  return table.data();
}

// `steps` Wolff updates of one chain in place; returns the summed cluster size. `queue`
// (size N) is scratch.
//
// The cluster grows breadth first from a queue of its members (sites are flipped as they
// join, so "aligned with s0" means "not in the cluster and aligned"), with no data-dependent
// branch per bond: the next random word is read in any case and consumed only by an aligned
// neighbour, the spin is written with a select and the queue's tail advanced by the outcome.
// At T_c, L = 64 this costs ~16 ns per cluster site against ~35-45 ns for the depth-first,
// branchy loop with per-site coordinates it replaced (standalone C++ loop, one core, quiet
// machine; `benchmarks/results/cluster.md`).
template <int D>
int64_t chain_steps(const Lattice& L, const int32_t* nbr, int8_t* s, uint64_t P, uint32_t t0,
                    uint32_t k0, uint32_t k1, int64_t steps, int32_t* queue) {
  int64_t total = 0;
  constexpr int deg = 2 * D;
  const uint32_t phi = uint32_t(P >> 32), plo = uint32_t(P);
  for (int64_t k = 0; k < steps; ++k) {
    Words w(k0, k1, uint32_t(t0 + uint32_t(k)));
    const int32_t seed = int32_t(w.below(uint32_t(L.size)));
    const int8_t s0 = s[seed];
    const int8_t flipped = int8_t(-s0);
    int64_t head = 0, tail = 0;
    s[seed] = flipped;
    queue[tail++] = seed;
    while (head < tail) {
      const int32_t* nx = nbr + int64_t(queue[head++]) * deg;
      w.ensure(deg);  // one word per try readable at buf[pos..]
      const uint32_t* buf = w.buf;
      int pos = w.pos;
      unsigned ties = 0;
      for (int q = 0; q < deg; ++q) {
        const int32_t y = nx[q];
        const int8_t sy = s[y];
        const uint32_t u = buf[pos];
        const int aligned = sy == s0;
        pos += aligned;
        const int take = aligned & (u < phi);
        ties |= unsigned(aligned & (u == phi)) << q;
        s[y] = int8_t(sy * (1 - 2 * take));  // arithmetic, not a select the compiler may branch
        queue[tail] = y;
        tail += take;
      }
      w.pos = pos;
      if (__builtin_expect(ties != 0, 0)) {  // high words tied (probability 2^-32 per try)
        for (int q = 0; q < deg; ++q) {
          const int32_t y = nx[q];
          if (((ties >> q) & 1u) && s[y] == s0 && w.tie_word() < plo) {
            s[y] = flipped;
            queue[tail++] = y;
          }
        }
      }
    }
    total += tail;
  }
  return total;
}

// P = floor(p 2^64), p = 1 - exp(-2 beta J) in double (saturated below 2^64)
uint64_t threshold(double beta, double J) {
  const double p = -std::expm1(-2.0 * beta * J);
  if (!(p > 0.0)) return 0;
  if (p >= 1.0) return ~uint64_t(0);
  const double scaled = std::ldexp(p, 64);
  return scaled >= 0x1p64 ? ~uint64_t(0) : uint64_t(scaled);
}

// x (*B, N) int8; key (*B, 2) u32; t0 (*B) u32; params (*B, 2) f32 = (beta, J);
// -> x out (*B, N), bond sum of x out (*B), cluster sizes summed over the steps (*B).
ffi::Error WolffImpl(ffi::Buffer<ffi::S8> x, ffi::Buffer<ffi::U32> key, ffi::Buffer<ffi::U32> t0,
                     ffi::Buffer<ffi::F32> params,
                     ffi::Result<ffi::Buffer<ffi::S8>> x_out,
                     ffi::Result<ffi::Buffer<ffi::S32>> bonds_out,
                     ffi::Result<ffi::Buffer<ffi::S32>> sizes, int64_t d, int64_t n0, int64_t n1,
                     int64_t n2, int64_t steps, int64_t threads) {
  if (d != 2 && d != 3) return ffi::Error::InvalidArgument("Wolff: d must be 2 or 3");
  const Lattice L(int(d), n0, n1, n2);
  auto od = x_out->dimensions();
  if (od.size() < 1 || od[od.size() - 1] != L.size)
    return ffi::Error::InvalidArgument("Wolff: spins must end with an axis of N sites");
  if (L.size >= (int64_t(1) << 31)) return ffi::Error::InvalidArgument("Wolff: N >= 2^31");
  const size_t nlead = od.size() - 1;
  Batch batch(od, nlead);
  std::vector<int64_t> xo, ko, to, po, oo, so;
  if (!batch.offsets(x.dimensions(), 1, L.size, xo) ||
      !batch.offsets(key.dimensions(), 1, 2, ko) || !batch.offsets(t0.dimensions(), 0, 1, to) ||
      !batch.offsets(params.dimensions(), 1, 2, po) ||
      !batch.offsets(od, 1, L.size, oo) ||
      !batch.offsets(bonds_out->dimensions(), 0, 1, so))
    return ffi::Error::InvalidArgument("Wolff: inconsistent shapes");
  const int8_t* xp = x.typed_data();
  const uint32_t* kp = key.typed_data();
  const uint32_t* tp = t0.typed_data();
  const float* pp = params.typed_data();
  int8_t* xs = x_out->typed_data();
  int32_t* bs = bonds_out->typed_data();
  int32_t* cs = sizes->typed_data();
  const int nthreads = resolve_threads(threads, batch.size);
#pragma omp parallel num_threads(nthreads)
  {
    std::vector<int32_t> queue(L.size);
    const int32_t* nbr = neighbour_table(L);
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < batch.size; ++b) {
      int8_t* s = xs + oo[b];
      std::memcpy(s, xp + xo[b], size_t(L.size));
      const uint64_t P = threshold(double(pp[po[b]]), double(pp[po[b] + 1]));
      const int64_t total =
          L.d == 2 ? chain_steps<2>(L, nbr, s, P, tp[to[b]], kp[ko[b]], kp[ko[b] + 1], steps,
                                    queue.data())
                   : chain_steps<3>(L, nbr, s, P, tp[to[b]], kp[ko[b]], kp[ko[b] + 1], steps,
                                    queue.data());
      bs[so[b]] = int32_t(bond_sum(L, s));
      cs[so[b]] = int32_t(total);
    }
  }
  return ffi::Error::Success();
}

}  // namespace

#define DIFFPHYS_EXPORT extern "C" __attribute__((visibility("default")))
DIFFPHYS_EXPORT XLA_FFI_Error* DiffphysWolffIsing(XLA_FFI_CallFrame*);

XLA_FFI_DEFINE_HANDLER_SYMBOL(DiffphysWolffIsing, WolffImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::S8>>()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::S8>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Attr<int64_t>("d")
                                  .Attr<int64_t>("n0")
                                  .Attr<int64_t>("n1")
                                  .Attr<int64_t>("n2")
                                  .Attr<int64_t>("steps")
                                  .Attr<int64_t>("threads"));
