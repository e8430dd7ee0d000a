#include "worker_log.hpp"

#include <fmt/format.h>

namespace seedpool::tool {

void WorkerLog::on_stderr(std::string_view pool, WorkerRef worker, std::string_view line) {
  std::lock_guard lock(mutex_);
  if (forward_) {
    fmt::print(stderr, "[{}/{}] {}\n", pool, worker.to_string(), line);
  }
  std::deque<std::string>& lines = workers_[worker].lines;
  lines.emplace_back(line);
  if (lines.size() > worker_log_lines_max) {
    lines.pop_front();
  }
}

void WorkerLog::on_event(const TelemetryEvent& event) {
  if (event.kind != TelemetryKind::worker_state || !event.worker) {
    return;
  }
  std::lock_guard lock(mutex_);
  if (event.to == WorkerState::dead) {
    workers_.erase(*event.worker);  // bounds the map by the workers alive
  } else {
    workers_[*event.worker].state = event.to;
  }
}

std::string WorkerLog::tails_of_starting_workers() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [worker, entry] : workers_) {
    if (entry.lines.empty() || (entry.state != WorkerState::starting && entry.state != WorkerState::initializing)) {
      continue;
    }
    out += fmt::format("--- stderr of worker {} (still {}), last {} line{} ---\n", worker.to_string(),
                       to_string(entry.state), entry.lines.size(), entry.lines.size() == 1 ? "" : "s");
    for (const std::string& line : entry.lines) {
      out += line;
      out += '\n';
    }
  }
  return out;
}

}  // namespace seedpool::tool
