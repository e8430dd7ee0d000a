#pragma once

// Forwards every line a worker writes to stderr as it comes
// ("[pool/w0.1] line"), unless told to be quiet. The reports of failures
// carry the pool's own tails, each under its worker.

#include <seedpool/core/telemetry.hpp>

#include <mutex>
#include <string_view>

namespace seedpool::tool {

class WorkerLog final : public LogSink {
 public:
  explicit WorkerLog(bool forward) : forward_(forward) {}

  void on_stderr(std::string_view pool, WorkerRef worker, std::string_view line) override;

 private:
  const bool forward_;
  std::mutex mutex_;  // whole lines, from the pool's tasks
};

}  // namespace seedpool::tool
