#pragma once

// The unit of the worker protocol. The wire encoding lives in codec.hpp; this
// header only names what a frame is, so that the Process interface can speak
// of frames without pulling in the codec.

#include <cstdint>
#include <string>
#include <string_view>

namespace seedpool {

// Frame kinds on the wire. The numeric values are part of the protocol.
enum class FrameKind : std::uint8_t {
  init = 1,      // pool -> worker: protocol version and worker id
  ready = 2,     // worker -> pool: init succeeded
  call = 3,      // pool -> worker: a request
  reply = 4,     // worker -> pool: the answer to a call
  error = 5,     // worker -> pool: init or a call failed; payload is the reason
  ping = 6,      // pool -> worker: health check
  pong = 7,      // worker -> pool: answer to ping
  shutdown = 8,  // pool -> worker: exit cleanly
};

// Returns "init", "ready", ... or "unknown".
std::string_view to_string(FrameKind kind) noexcept;
// The same with its article, for messages: "an init", "a ready", ...
std::string with_article(FrameKind kind);

// True for the values listed in FrameKind.
constexpr bool is_known_frame_kind(std::uint8_t value) noexcept { return value >= 1 && value <= 8; }

struct Frame {
  FrameKind kind = FrameKind::call;
  std::uint64_t request_id = 0;
  std::string payload;  // opaque to the pool

  friend bool operator==(const Frame&, const Frame&) = default;
};

}  // namespace seedpool
