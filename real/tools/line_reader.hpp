#pragma once

// Lines from a descriptor (stdin), read so that a stop request ends the wait
// at once even while no input comes: poll() watches the descriptor and the
// stop's wake descriptor together. Bytes are kept as they are, NUL included.

#include <cstddef>
#include <optional>
#include <string>

namespace seedpool::tool {

class LineReader {
 public:
  // `fd` is read, never closed; `wake_fd` becoming readable ends the input.
  LineReader(int fd, int wake_fd) : fd_(fd), wake_fd_(wake_fd) {}

  // The next line without its '\n' (a last line without one is a line too).
  // nullopt at the end of input, once woken (a partial line is dropped), or
  // after a read error, which error() then describes.
  std::optional<std::string> next();

  // Empty unless reading failed.
  const std::string& error() const noexcept { return error_; }

 private:
  // Waits for input and appends what one read returns; false at the end,
  // when woken or on an error.
  bool fill();

  int fd_;
  int wake_fd_;
  std::string buffer_;
  std::size_t start_ = 0;    // where the next line begins in buffer_
  std::size_t scanned_ = 0;  // buffer_ before this holds no '\n' after start_
  bool ended_ = false;
  std::string error_;
};

}  // namespace seedpool::tool
