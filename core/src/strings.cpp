// String forms of core's small enums and value types.

#include <seedpool/core/channel.hpp>
#include <seedpool/core/frame.hpp>
#include <seedpool/core/process.hpp>

#include <string>

namespace seedpool {

std::string_view to_string(FrameKind kind) noexcept {
  switch (kind) {
    case FrameKind::init: return "init";
    case FrameKind::ready: return "ready";
    case FrameKind::call: return "call";
    case FrameKind::reply: return "reply";
    case FrameKind::error: return "error";
    case FrameKind::ping: return "ping";
    case FrameKind::pong: return "pong";
    case FrameKind::shutdown: return "shutdown";
  }
  return "unknown";
}

std::string with_article(FrameKind kind) {
  const std::string_view name = to_string(kind);
  const bool vowel = name.find_first_of("aeiou") == 0;  // "init", "error", "unknown"
  return std::string(vowel ? "an " : "a ") + std::string(name);
}

std::string_view to_string(ChannelStatus status) noexcept {
  switch (status) {
    case ChannelStatus::ok: return "ok";
    case ChannelStatus::closed: return "closed";
    case ChannelStatus::timeout: return "timeout";
    case ChannelStatus::full: return "full";
    case ChannelStatus::empty: return "empty";
  }
  return "unknown";
}

std::string ExitStatus::describe() const {
  if (signaled) {
    return "killed by signal " + std::to_string(signal);
  }
  return "exit code " + std::to_string(code);
}

}  // namespace seedpool
