#pragma once

// FiguresReporter: Google Benchmark's console output, plus every figure of
// every repetition kept for a summary computed across benchmarks.

#include <benchmark/benchmark.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace seedpool::bench {

// Prints like the console reporter, but of the aggregates only the median
// (mean, stddev and cv of three values say little). Keeps each repetition's
// figures under "function/args:figure": "time" (seconds per iteration, real
// or manual) and every counter, e.g. "BM_PoolEagerStart/python/8:time" or
// "BM_PoolLeaseCall/echo:p50_us".
class FiguresReporter final : public benchmark::ConsoleReporter {
 public:
  using ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& reports) override;

  // The median over repetitions of a figure, if it was measured.
  std::optional<double> median(const std::string& figure) const;

  // Every repetition's value of a figure times `scale`, in run order:
  // "12.3 11.9 14". "-" when it was not measured.
  std::string values(const std::string& figure, double scale) const;

  // Benchmarks that failed, with the reason they gave.
  const std::map<std::string, std::string>& errors() const { return errors_; }

 private:
  static std::string key(const Run& run);

  std::map<std::string, std::vector<double>> figures_;
  std::map<std::string, std::string> errors_;
};

}  // namespace seedpool::bench
