// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11), the counter-based generator of every native
// kernel: 10 rounds on a 128-bit counter `c` with the 64-bit key (k0, k1), in place.
#pragma once

#include <cstdint>

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
