#pragma once

// Lines from a descriptor (stdin), read so that a stop request ends the wait
// at once even while no input comes: poll() watches the descriptor and the
// stop's wake descriptor together. Bytes are kept as they are, NUL included.
// A line is kept up to a limit: of a longer one (stdin from /dev/zero, say)
// only the first limit + 1 bytes are kept and the rest is read past, so that
// memory stays bounded whatever the input.

#include <cstddef>
#include <optional>
#include <string>

namespace seedpool::tool {

class LineReader {
 public:
  // `fd` is read, never closed; `wake_fd` becoming readable ends the input.
  // Lines are kept up to `line_bytes_max` bytes.
  LineReader(int fd, int wake_fd, std::size_t line_bytes_max)
      : fd_(fd), wake_fd_(wake_fd), line_bytes_max_(line_bytes_max) {}

  // The next line without its '\n' (a last line without one is a line too).
  // nullopt at the end of input, once woken (a partial line is dropped), or
  // after a read error, which error() then describes. A line over the limit
  // comes as its first line_bytes_max + 1 bytes, with cut() true.
  std::optional<std::string> next();

  // Whether the line next() returned last was longer than the limit.
  bool cut() const noexcept { return cut_; }

  // Empty unless reading failed.
  const std::string& error() const noexcept { return error_; }

 private:
  // Waits for input and appends what one read returns; false at the end,
  // when woken or on an error.
  bool fill();

  int fd_;
  int wake_fd_;
  std::size_t line_bytes_max_;
  std::string buffer_;
  std::size_t start_ = 0;    // where the next line begins in buffer_
  std::size_t scanned_ = 0;  // buffer_ before this holds no '\n' after start_
  bool ended_ = false;
  bool cut_ = false;
  std::optional<std::string> long_line_;  // the kept start of a line being read past
  std::string error_;
};

}  // namespace seedpool::tool
