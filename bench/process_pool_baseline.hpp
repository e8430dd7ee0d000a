#pragma once

// The ProcessPoolExecutor baseline: runs bench/process_pool_baseline.py in a
// child process and reads the one JSON line it prints.

#include <seedpool/core/result.hpp>

#include <cstddef>
#include <string>

namespace seedpool::bench {

// How long the script may take before it is killed; a run of the default
// size takes well under a second.
inline constexpr int baseline_wait_ms_max = 120'000;

struct BaselineRun {
  std::string python;          // the interpreter as run (argv[0])
  std::string script;          // path of process_pool_baseline.py
  std::size_t workers = 4;
  std::size_t calls = 4000;
};

struct BaselineFigures {
  double calls_per_second = 0;
  double seconds = 0;       // the timed part alone, as the script measured it
  std::string report;       // the script's JSON line, for the log
};

// Runs the script and returns its figures. Fails with io_error carrying the
// script's output when it cannot be started, exits non-zero, or prints no
// calls_per_second.
Result<BaselineFigures> run_process_pool_baseline(const BaselineRun& run);

// The number after "key": in a flat JSON object, or a negative value when
// the key is missing or not followed by a number. Enough for the script's
// own output; not a JSON parser.
double json_number(const std::string& json, const std::string& key);

}  // namespace seedpool::bench
