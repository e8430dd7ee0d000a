#pragma once

// Turning a worker's output bytes into process events. Pure: no OS calls, so
// the I/O loop's reading and these rules can be reasoned about separately.

#include <seedpool/core/codec.hpp>
#include <seedpool/core/process.hpp>

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>

namespace seedpool::real::detail {

// A worker's stdout: frames. Bytes are decoded with core's FrameDecoder; the
// first protocol error becomes one OutputCorrupt, after which every later byte
// is ignored (the stream cannot be resynchronised, and the pool kills the
// worker on that event).
class StdoutFrames {
 public:
  explicit StdoutFrames(std::size_t frame_bytes_max) : decoder_(frame_bytes_max) {}

  // Appends to `out` the frames `bytes` completes, then an OutputCorrupt if
  // they break the protocol.
  void feed(std::string_view bytes, std::deque<ProcessEvent>& out);

  // At end of stream: appends an OutputCorrupt when the stream ended inside a
  // frame and no corruption was reported yet.
  void end(std::deque<ProcessEvent>& out);

  bool corrupt() const noexcept { return corrupt_; }

 private:
  void report(const DecodeError& error, std::deque<ProcessEvent>& out);

  FrameDecoder decoder_;
  bool corrupt_ = false;
  bool ended_ = false;
};

// A worker's stderr: lines split on '\n', the newline removed and every other
// byte kept as written (invalid UTF-8 and '\r' included). A line longer than
// line_bytes_max is delivered in pieces of line_bytes_max bytes, so one
// endless line cannot grow memory without bound.
class StderrLines {
 public:
  // Requires line_bytes_max >= 1.
  explicit StderrLines(std::size_t line_bytes_max);

  // Appends to `out` one StderrLine per line `bytes` completes.
  void feed(std::string_view bytes, std::deque<ProcessEvent>& out);

  // At end of stream: appends the last line if it had no newline.
  void end(std::deque<ProcessEvent>& out);

 private:
  void append(std::string_view piece, std::deque<ProcessEvent>& out);
  void emit(std::deque<ProcessEvent>& out);

  const std::size_t line_bytes_max_;
  std::string partial_;
};

}  // namespace seedpool::real::detail
