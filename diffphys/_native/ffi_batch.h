// Batching helpers shared by the native kernels: the chains of a vmapped call
// (vmap_method="expand_dims") as a flattened batch, and the OpenMP thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "xla/ffi/api/ffi.h"

namespace diffphys_native {

// The leading (batch) dimensions of an output, flattened to `size` chains.
struct Batch {
  std::vector<int64_t> dims;
  int64_t size = 1;
  Batch(xla::ffi::Span<const int64_t> out, size_t nlead) {
    for (size_t i = 0; i < nlead; ++i) {
      dims.push_back(out[i]);
      size *= out[i];
    }
  }
  // element offsets of each chain's block in an input with leading dims `in` (1 = broadcast)
  // and `core` trailing dims of `elem` elements in all; false if the shapes do not match
  bool offsets(xla::ffi::Span<const int64_t> in, size_t core, int64_t elem,
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

// OpenMP threads for `chains` independent chains: `threads` (0: all), at most one per chain
inline int resolve_threads(int64_t threads, int64_t chains) {
#ifdef _OPENMP
  int t = threads > 0 ? int(threads) : omp_get_max_threads();
  return int(std::max<int64_t>(1, std::min<int64_t>(t, chains)));
#else
  (void)threads;
  (void)chains;
  return 1;
#endif
}

}  // namespace diffphys_native
