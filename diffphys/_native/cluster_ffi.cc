// Wolff single-cluster updates of the periodic 2D/3D Ising ferromagnet with one coupling J > 0
// and zero field, as an XLA FFI custom call (diffphys.models.wolff, backend="native").
//
// One call does `steps` Wolff updates of every chain of a batch (Wolff, PRL 62, 361 (1989)):
// pick a uniform seed site, grow its cluster depth first with an explicit stack, adding each
// neighbour that is aligned with the seed's original spin and not yet in the cluster with
// probability p = 1 - exp(-2 beta J) per bond examined, then the cluster is flipped (sites are
// flipped as they join, which also marks them). A neighbour reached over two bonds (linear
// size 2, where +e_a and -e_a coincide) gets two independent tries, as the two bonds of
// `models.Ising.energy` require. Chains are independent: OpenMP over the flattened batch.
//
// Energy. The state carries the integer bond sum S = sum over bonds of s_x s_y (E = -J S). A
// flip of cluster C changes S by -2 s0 sum_{x in C, y ~ x, y not in C} s_y (s0 the cluster's
// spin before the flip): a pass over the cluster list after the growth, with a per-chain
// stamp array telling members from non-members.
//
// Random numbers. Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11) keyed by the two 32-bit
// words of the step key. Step t (the absolute step index, kept in the state) reads a sequence
// of 64-bit words: word j is words (2 (j mod 2), 2 (j mod 2) + 1) of the block with counter
// (j / 2, t, 0, 0x574F). The seed site is Lemire's exact bounded integer (Lemire, ACM TOMACS
// 29, 3 (2019)) on the first word(s); then every bond try takes the next word U and succeeds
// iff U < P = floor(p 2^64) (p in double precision: the bond probability is P / 2^64, within
// 2^-53 relative of p). The words of step t depend only on (key, t, j), so k + k steps with
// one key equal 2k steps bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "philox.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using diffphys_native::philox;

constexpr uint32_t kStream = 0x574Fu;  // "WO"

// The 64-bit words of one step, in order.
struct Words {
  uint32_t k0, k1, t;
  uint64_t j = 0;
  uint32_t block[4];
  Words(uint32_t k0_, uint32_t k1_, uint32_t t_) : k0(k0_), k1(k1_), t(t_) {}
  inline uint64_t next() {
    const int half = int(j & 1);
    if (half == 0) {
      block[0] = uint32_t(j >> 1);
      block[1] = t;
      block[2] = uint32_t(j >> 33);  // 0 unless a step reads more than 2^33 words
      block[3] = kStream;
      philox(block, k0, k1);
    }
    ++j;
    return uint64_t(block[2 * half]) | (uint64_t(block[2 * half + 1]) << 32);
  }
  // uniform integer in [0, n), exactly (Lemire's multiply-and-reject)
  inline uint64_t below(uint64_t n) {
    unsigned __int128 m = (unsigned __int128)next() * n;
    uint64_t low = uint64_t(m);
    if (low < n) {
      const uint64_t thresh = (0 - n) % n;
      while (low < thresh) {
        m = (unsigned __int128)next() * n;
        low = uint64_t(m);
      }
    }
    return uint64_t(m >> 64);
  }
};

struct Lattice {
  int d;
  int64_t n[3];  // n[0..d-1]; site = ((c0 n1) + c1) n2 + c2 (row major)
  int64_t stride[3];
  int64_t size;
  Lattice(int d_, int64_t n0, int64_t n1, int64_t n2) : d(d_) {
    n[0] = n0;
    n[1] = n1;
    n[2] = d_ == 3 ? n2 : 1;
    stride[d - 1] = 1;
    for (int a = d - 2; a >= 0; --a) stride[a] = stride[a + 1] * n[a + 1];
    size = 1;
    for (int a = 0; a < d; ++a) size *= n[a];
  }
  // the 2d neighbours of site i, slots (+e_0, -e_0, +e_1, -e_1, ...)
  inline void neighbours(int64_t i, int64_t* out) const {
    int64_t rem = i;
    for (int a = 0; a < d; ++a) {
      const int64_t c = rem / stride[a];
      rem -= c * stride[a];
      const int64_t base = i - c * stride[a];
      out[2 * a] = base + (c + 1 == n[a] ? 0 : c + 1) * stride[a];
      out[2 * a + 1] = base + (c == 0 ? n[a] - 1 : c - 1) * stride[a];
    }
  }
};

// `steps` Wolff updates of one chain in place. Returns the summed cluster size; *bonds is the
// bond sum, updated. `mark` (size N, zero on entry) and `stack` (size N) are scratch.
int64_t chain_steps(const Lattice& L, int8_t* s, int32_t* bonds, uint64_t P, uint32_t t0,
                    uint32_t k0, uint32_t k1, int64_t steps, uint32_t* mark, int32_t* stack,
                    int32_t* members) {
  int64_t total = 0;
  int64_t nb[6];
  const int deg = 2 * L.d;
  for (int64_t k = 0; k < steps; ++k) {
    const uint32_t stamp = uint32_t(k + 1);
    Words w(k0, k1, uint32_t(t0 + uint32_t(k)));
    const int64_t seed = int64_t(w.below(uint64_t(L.size)));
    const int8_t s0 = s[seed];
    int64_t top = 0, count = 0;
    s[seed] = int8_t(-s0);
    mark[seed] = stamp;
    stack[top++] = int32_t(seed);
    members[count++] = int32_t(seed);
    while (top > 0) {
      const int64_t x = stack[--top];
      L.neighbours(x, nb);
      for (int q = 0; q < deg; ++q) {
        const int64_t y = nb[q];
        if (s[y] == s0 && w.next() < P) {  // aligned and not yet flipped: one bond try
          s[y] = int8_t(-s0);
          mark[y] = stamp;
          stack[top++] = int32_t(y);
          members[count++] = int32_t(y);
        }
      }
    }
    // bond sum change: boundary bonds (x in C, y not in C) change sign
    int64_t boundary = 0;  // sum of s0 s_y over boundary bonds
    for (int64_t m = 0; m < count; ++m) {
      L.neighbours(members[m], nb);
      for (int q = 0; q < deg; ++q)
        if (mark[nb[q]] != stamp) boundary += s0 * s[nb[q]];
    }
    *bonds -= int32_t(2 * boundary);
    total += count;
  }
  return total;
}

struct Batch {
  std::vector<int64_t> dims;
  int64_t size = 1;
  Batch(ffi::Span<const int64_t> out, size_t nlead) {
    for (size_t i = 0; i < nlead; ++i) {
      dims.push_back(out[i]);
      size *= out[i];
    }
  }
  // element offsets of each chain's block in an input with leading dims `in` (1 = broadcast)
  bool offsets(ffi::Span<const int64_t> in, size_t core, int64_t elem,
               std::vector<int64_t>& off) const {
    if (in.size() != dims.size() + core) return false;
    off.assign(size, 0);
    std::vector<int64_t> stride(dims.size());
    int64_t st = 1;
    for (size_t i = dims.size(); i-- > 0;) {
      if (in[i] != 1 && in[i] != dims[i]) return false;
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
    return true;
  }
};

// P = floor(p 2^64), p = 1 - exp(-2 beta J) in double (saturated below 2^64)
uint64_t threshold(double beta, double J) {
  const double p = -std::expm1(-2.0 * beta * J);
  if (!(p > 0.0)) return 0;
  if (p >= 1.0) return ~uint64_t(0);
  const double scaled = std::ldexp(p, 64);
  return scaled >= 0x1p64 ? ~uint64_t(0) : uint64_t(scaled);
}

// x (*B, N) int8; key (*B, 2) u32; t0 (*B) u32; params (*B, 2) f32 = (beta, J);
// bonds (*B) s32 -> x out (*B, N), bonds out (*B), cluster sizes summed over the steps (*B).
ffi::Error WolffImpl(ffi::Buffer<ffi::S8> x, ffi::Buffer<ffi::U32> key, ffi::Buffer<ffi::U32> t0,
                     ffi::Buffer<ffi::F32> params, ffi::Buffer<ffi::S32> bonds,
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
  std::vector<int64_t> xo, ko, to, po, bo, oo, so;
  if (!batch.offsets(x.dimensions(), 1, L.size, xo) ||
      !batch.offsets(key.dimensions(), 1, 2, ko) || !batch.offsets(t0.dimensions(), 0, 1, to) ||
      !batch.offsets(params.dimensions(), 1, 2, po) ||
      !batch.offsets(bonds.dimensions(), 0, 1, bo) || !batch.offsets(od, 1, L.size, oo) ||
      !batch.offsets(bonds_out->dimensions(), 0, 1, so))
    return ffi::Error::InvalidArgument("Wolff: inconsistent shapes");
  const int8_t* xp = x.typed_data();
  const uint32_t* kp = key.typed_data();
  const uint32_t* tp = t0.typed_data();
  const float* pp = params.typed_data();
  const int32_t* bp = bonds.typed_data();
  int8_t* xs = x_out->typed_data();
  int32_t* bs = bonds_out->typed_data();
  int32_t* cs = sizes->typed_data();
  int nthreads = 1;
#ifdef _OPENMP
  nthreads = threads > 0 ? int(threads) : omp_get_max_threads();
  nthreads = int(std::max<int64_t>(1, std::min<int64_t>(nthreads, batch.size)));
#else
  (void)threads;
#endif
#pragma omp parallel num_threads(nthreads)
  {
    std::vector<uint32_t> mark(L.size);
    std::vector<int32_t> stack(L.size), members(L.size);
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < batch.size; ++b) {
      int8_t* s = xs + oo[b];
      std::memcpy(s, xp + xo[b], size_t(L.size));
      std::fill(mark.begin(), mark.end(), 0u);
      int32_t bsum = bp[bo[b]];
      const uint64_t P = threshold(double(pp[po[b]]), double(pp[po[b] + 1]));
      const int64_t total = chain_steps(L, s, &bsum, P, tp[to[b]], kp[ko[b]], kp[ko[b] + 1],
                                        steps, mark.data(), stack.data(), members.data());
      bs[so[b]] = bsum;
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
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S8>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Attr<int64_t>("d")
                                  .Attr<int64_t>("n0")
                                  .Attr<int64_t>("n1")
                                  .Attr<int64_t>("n2")
                                  .Attr<int64_t>("steps")
                                  .Attr<int64_t>("threads"));
