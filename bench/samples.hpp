#pragma once

// Order statistics over a run's samples. Header-only and free of OS calls.

#include <seedpool/core/assert.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

namespace seedpool::bench {

// The q-quantile (0 <= q <= 1) of `values` by the nearest-rank method: the
// smallest value with at least q of the values at or below it. Takes a copy,
// so callers keep their samples in arrival order. Requires at least one value.
inline double quantile(std::vector<double> values, double q) {
  SEEDPOOL_ASSERT(!values.empty());
  SEEDPOOL_ASSERT(q >= 0.0 && q <= 1.0);
  const auto n = static_cast<double>(values.size());
  const auto rank = static_cast<std::size_t>(std::max(1.0, std::ceil(q * n)));
  const auto at = values.begin() + static_cast<std::ptrdiff_t>(rank - 1);
  std::nth_element(values.begin(), at, values.end());
  return *at;
}

// The median, as the lower middle value for an even count (a value that was
// actually measured, not an average of two).
inline double median(std::vector<double> values) { return quantile(std::move(values), 0.5); }

}  // namespace seedpool::bench
