// The reporter that keeps figures; see figures_reporter.hpp.

#include "figures_reporter.hpp"

#include "samples.hpp"

#include <fmt/format.h>

namespace seedpool::bench {

void FiguresReporter::ReportRuns(const std::vector<Run>& reports) {
  std::vector<Run> shown;
  for (const Run& run : reports) {
    if (run.run_type == Run::RT_Aggregate) {
      if (run.aggregate_name == "median") {
        shown.push_back(run);
      }
      continue;
    }
    shown.push_back(run);
    if (run.error_occurred) {
      errors_[key(run)] = run.error_message;
      continue;
    }
    if (run.iterations == 0) {
      continue;
    }
    figures_[key(run) + ":time"].push_back(run.real_accumulated_time / static_cast<double>(run.iterations));
    for (const auto& [counter, value] : run.counters) {
      figures_[key(run) + ":" + counter].push_back(value.value);
    }
  }
  if (!shown.empty()) {
    ConsoleReporter::ReportRuns(shown);
  }
}

std::optional<double> FiguresReporter::median(const std::string& figure) const {
  const auto found = figures_.find(figure);
  if (found == figures_.end() || found->second.empty()) {
    return std::nullopt;
  }
  return seedpool::bench::median(found->second);
}

std::string FiguresReporter::values(const std::string& figure, double scale) const {
  const auto found = figures_.find(figure);
  std::string out;
  if (found != figures_.end()) {
    for (const double value : found->second) {
      out += fmt::format("{}{:.4g}", out.empty() ? "" : " ", value * scale);
    }
  }
  return out.empty() ? "-" : out;
}

std::string FiguresReporter::key(const Run& run) {
  return run.run_name.args.empty() ? run.run_name.function_name : run.run_name.function_name + "/" + run.run_name.args;
}

}  // namespace seedpool::bench
