#include <seedpool/core/result.hpp>

namespace seedpool {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::launch_failed: return "launch_failed";
    case ErrorCode::protocol_error: return "protocol_error";
    case ErrorCode::timeout: return "timeout";
    case ErrorCode::cancelled: return "cancelled";
    case ErrorCode::closed: return "closed";
    case ErrorCode::worker_crashed: return "worker_crashed";
    case ErrorCode::worker_error: return "worker_error";
    case ErrorCode::pool_saturated: return "pool_saturated";
    case ErrorCode::pool_unavailable: return "pool_unavailable";
    case ErrorCode::pool_shutting_down: return "pool_shutting_down";
    case ErrorCode::io_error: return "io_error";
  }
  return "unknown";
}

std::string Error::describe() const {
  std::string out(to_string(code));
  out += ": ";
  out += message;
  if (!stderr_tail.empty()) {
    out += "\n--- worker stderr (tail) ---\n";
    out += stderr_tail;
  }
  return out;
}

}  // namespace seedpool
