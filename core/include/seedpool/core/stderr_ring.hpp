#pragma once

// The last lines a worker wrote to stderr, kept so that every error about the
// worker can show why it died. Bounded in lines and in bytes per line.

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>

namespace seedpool {

class StderrRing {
 public:
  // Requires lines_max >= 1 and line_bytes_max >= 1.
  StderrRing(std::size_t lines_max, std::size_t line_bytes_max);

  // Keeps `line`, cut to line_bytes_max bytes (marked with "…[cut]"),
  // dropping the oldest line when full.
  void push(std::string_view line);

  // The kept lines joined with '\n', oldest first; at most `lines` of them.
  std::string tail(std::size_t lines) const;
  std::string tail() const { return tail(lines_max_); }

  std::size_t size() const noexcept { return lines_.size(); }
  std::size_t dropped() const noexcept { return dropped_; }

 private:
  std::size_t lines_max_;
  std::size_t line_bytes_max_;
  std::deque<std::string> lines_;
  std::size_t dropped_ = 0;
};

}  // namespace seedpool
