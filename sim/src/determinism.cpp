#include <seedpool/sim/determinism.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace seedpool::sim {
namespace {

std::string describe_at(const RunResult& run, std::size_t index) {
  const auto& events = run.trace.events();
  if (index >= events.size()) {
    return fmt::format("(end of trace after {} events)", events.size());
  }
  return run.trace.describe(events[index], run.task_names);
}

bool same_event(const RunResult& a, const RunResult& b, std::size_t i) {
  const TraceEvent& x = a.trace.events()[i];
  const TraceEvent& y = b.trace.events()[i];
  if (x.step != y.step || x.time != y.time || x.task != y.task || x.kind != y.kind || x.arg != y.arg) {
    return false;
  }
  return a.trace.labels()[x.label] == b.trace.labels()[y.label];
}

}  // namespace

std::string DeterminismReport::describe() const {
  if (deterministic) {
    return fmt::format("deterministic: both runs hashed {:016x}", first_hash);
  }
  return fmt::format("NOT deterministic: hashes {:016x} and {:016x}; first divergence at event {}:\n  first run:  {}\n"
                     "  second run: {}",
                     first_hash, second_hash, divergence_index, first_event, second_event);
}

DeterminismReport compare_runs(const RunResult& first, const RunResult& second) {
  DeterminismReport report;
  report.first_hash = first.trace_hash;
  report.second_hash = second.trace_hash;
  const auto& a = first.trace.events();
  const auto& b = second.trace.events();
  const std::size_t common = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < common && same_event(first, second, i)) {
    ++i;
  }
  report.deterministic = first.trace_hash == second.trace_hash && i == common && a.size() == b.size();
  if (!report.deterministic) {
    report.divergence_index = i;
    report.first_event = describe_at(first, i);
    report.second_event = describe_at(second, i);
  }
  return report;
}

DeterminismReport check_determinism(const SimConfig& config, const std::function<void(SimWorld&)>& body) {
  SimConfig kept = config;
  kept.keep_trace_events = true;
  const RunResult first = simulate(kept, body);
  const RunResult second = simulate(kept, body);
  return compare_runs(first, second);
}

}  // namespace seedpool::sim
