#include "worker_log.hpp"

#include "say.hpp"

#include <fmt/format.h>

namespace seedpool::tool {

void WorkerLog::on_stderr(std::string_view pool, WorkerRef worker, std::string_view line) {
  if (!forward_) {
    return;
  }
  std::lock_guard lock(mutex_);
  say("[{}/{}] {}\n", pool, worker.to_string(), line);
}

}  // namespace seedpool::tool
