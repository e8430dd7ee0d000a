// A worker's stdout as frames; see output_streams.hpp.

#include "output_streams.hpp"

#include <seedpool/core/assert.hpp>

#include <utility>

namespace seedpool::real::detail {

void StdoutFrames::feed(std::string_view bytes, std::deque<ProcessEvent>& out) {
  SEEDPOOL_ASSERT(!ended_);
  if (corrupt_) {
    return;
  }
  decoder_.feed(bytes);
  for (;;) {
    DecodeResult result = decoder_.next();
    switch (result.status()) {
      case DecodeStatus::frame: out.emplace_back(FrameReceived{std::move(result).frame()}); continue;
      case DecodeStatus::need_more_bytes: return;
      case DecodeStatus::error: report(result.error(), out); return;
    }
  }
}

void StdoutFrames::end(std::deque<ProcessEvent>& out) {
  SEEDPOOL_ASSERT(!ended_);
  ended_ = true;
  if (corrupt_) {
    return;
  }
  if (const std::optional<DecodeError> error = decoder_.at_end_of_stream()) {
    report(*error, out);
  }
}

void StdoutFrames::report(const DecodeError& error, std::deque<ProcessEvent>& out) {
  SEEDPOOL_ASSERT(!corrupt_);
  corrupt_ = true;
  out.emplace_back(OutputCorrupt{to_error(error)});
}

}  // namespace seedpool::real::detail
