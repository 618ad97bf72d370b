// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11), the counter-based generator of every native
// kernel: 10 rounds on a 128-bit counter `c` with the 64-bit key (k0, k1), in place.
#pragma once

#include <cstdint>
#include <cstring>

namespace diffphys_native {

inline void philox(uint32_t c[4], uint32_t k0, uint32_t k1) {
  for (int i = 0; i < 10; ++i) {
    uint64_t p0 = uint64_t(0xD2511F53u) * c[0];
    uint64_t p1 = uint64_t(0xCD9E8D57u) * c[2];
    uint32_t n0 = uint32_t(p1 >> 32) ^ c[1] ^ k0;
    uint32_t n1 = uint32_t(p1);
    uint32_t n2 = uint32_t(p0 >> 32) ^ c[3] ^ k1;
    uint32_t n3 = uint32_t(p0);
    c[0] = n0;
    c[1] = n1;
    c[2] = n2;
    c[3] = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

}  // namespace diffphys_native

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace diffphys_native {

// 32 x 32 -> 64-bit products of the eight lanes of x with M: high and low halves.
__attribute__((target("avx2"))) inline void mulhilo8(__m256i x, __m256i M, __m256i* hi,
                                                     __m256i* lo) {
  const __m256i pe = _mm256_mul_epu32(x, M);
  const __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), M);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
  *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
}

// `philox` on eight counters at once: lane i of (x0, x1, x2, x3) is counter i, in place (the
// same words as eight calls of the scalar `philox`).
__attribute__((target("avx2"))) inline void philox8(__m256i& x0, __m256i& x1, __m256i& x2,
                                                    __m256i& x3, uint32_t k0, uint32_t k1) {
  const __m256i M0 = _mm256_set1_epi32(int(0xD2511F53u)), M1 = _mm256_set1_epi32(int(0xCD9E8D57u));
  for (int round = 0; round < 10; ++round) {
    __m256i h0, l0, h1, l1;
    mulhilo8(x0, M0, &h0, &l0);
    mulhilo8(x2, M1, &h1, &l1);
    x0 = _mm256_xor_si256(_mm256_xor_si256(h1, x1), _mm256_set1_epi32(int(k0)));
    x2 = _mm256_xor_si256(_mm256_xor_si256(h0, x3), _mm256_set1_epi32(int(k1)));
    x1 = l1;
    x3 = l0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

}  // namespace diffphys_native
#endif

namespace diffphys_native {

// Counter-ordered Philox words of the sequential kernels (SK, Potts): r[4 b + k] = word k of
// block b, counter (b, t, 0, stream), for the blocks with 4 b < n, from block b0 on.
inline void philox_words_scalar(uint32_t* r, int64_t b0, int64_t n, uint32_t t, uint32_t stream,
                                uint32_t k0, uint32_t k1) {
  for (int64_t b = b0; 4 * b < n; ++b) {
    uint32_t c[4] = {uint32_t(b), t, 0u, stream};
    philox(c, k0, k1);
    std::memcpy(r + 4 * b, c, 16);
  }
}

#if defined(__x86_64__) || defined(_M_X64)
// The same words, 8 Philox blocks per AVX2 register.
__attribute__((target("avx2"))) inline void philox_words_avx2(uint32_t* r, int64_t n, uint32_t t,
                                                              uint32_t stream, uint32_t k0,
                                                              uint32_t k1) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  alignas(32) uint32_t w[4][8];
  int64_t b0 = 0;
  for (; 4 * (b0 + 8) <= n; b0 += 8) {
    __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32(int(uint32_t(b0))), lane);
    __m256i x1 = _mm256_set1_epi32(int(t)), x2 = _mm256_setzero_si256();
    __m256i x3 = _mm256_set1_epi32(int(stream));
    philox8(x0, x1, x2, x3, k0, k1);
    _mm256_store_si256(reinterpret_cast<__m256i*>(w[0]), x0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(w[1]), x1);
    _mm256_store_si256(reinterpret_cast<__m256i*>(w[2]), x2);
    _mm256_store_si256(reinterpret_cast<__m256i*>(w[3]), x3);
    for (int i = 0; i < 8; ++i)
      for (int k = 0; k < 4; ++k) r[4 * (b0 + i) + k] = w[k][i];
  }
  philox_words_scalar(r, b0, n, t, stream, k0, k1);
}
#endif

// `philox_words_scalar` from block 0, with the AVX2 path where the CPU has it.
inline void philox_words(uint32_t* r, int64_t n, uint32_t t, uint32_t stream, uint32_t k0,
                         uint32_t k1) {
#if defined(__x86_64__) || defined(_M_X64)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return philox_words_avx2(r, n, t, stream, k0, k1);
#endif
  philox_words_scalar(r, 0, n, t, stream, k0, k1);
}

}  // namespace diffphys_native
