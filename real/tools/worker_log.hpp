#pragma once

// What `seedpool run` keeps of each worker for its own reports: the last
// lines the worker wrote to stderr and its latest state, taken from the
// pool's log and telemetry hooks. It also forwards every stderr line as it
// comes ("[pool/w0.1] line") unless told to be quiet.

#include <seedpool/core/telemetry.hpp>

#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace seedpool::tool {

// Lines kept per worker for a report; the pool keeps its own, longer tails.
inline constexpr std::size_t worker_log_lines_max = 20;

class WorkerLog final : public LogSink, public TelemetrySink {
 public:
  explicit WorkerLog(bool forward) : forward_(forward) {}

  void on_stderr(std::string_view pool, WorkerRef worker, std::string_view line) override;
  void on_event(const TelemetryEvent& event) override;

  // "--- stderr of worker w0.2 (still initializing), last 3 lines ---" and
  // the lines, for every worker starting or initializing now: the report of
  // a start that failed while they were.
  std::string tails_of_starting_workers() const;

 private:
  struct Entry {
    WorkerState state = WorkerState::starting;
    std::deque<std::string> lines;  // at most worker_log_lines_max
  };

  const bool forward_;
  mutable std::mutex mutex_;  // the pool's task writes, the main thread reads
  std::map<WorkerRef, Entry> workers_;  // workers not yet dead
};

}  // namespace seedpool::tool
