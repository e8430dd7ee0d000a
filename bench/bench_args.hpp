#pragma once

// Command-line handling shared by the benchmark binaries: --quick is ours, the
// rest goes to Google Benchmark.

#include <seedpool/core/assert.hpp>

#include <string_view>
#include <vector>

namespace seedpool::bench {

// `argv` without --quick (program name first, no terminator yet); sets `quick`.
inline std::vector<char*> without_quick_flag(int argc, char** argv, bool& quick) {
  std::vector<char*> args;
  quick = false;
  for (int i = 0; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--quick") {
      quick = true;
    } else {
      args.push_back(argv[i]);
    }
  }
  SEEDPOOL_ASSERT(!args.empty());
  return args;
}

}  // namespace seedpool::bench
