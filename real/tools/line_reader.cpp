#include "line_reader.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <poll.h>
#include <unistd.h>

namespace seedpool::tool {
namespace {

// Bytes taken from the descriptor per read.
constexpr std::size_t read_bytes_max = std::size_t{64} * 1024;

}  // namespace

std::optional<std::string> LineReader::next() {
  cut_ = false;
  for (;;) {
    const std::size_t newline = buffer_.find('\n', scanned_);
    if (long_line_) {
      // Reading past the rest of a line over the limit.
      if (newline != std::string::npos || ended_) {
        start_ = scanned_ = newline != std::string::npos ? newline + 1 : buffer_.size();
        cut_ = true;
        return std::exchange(long_line_, std::nullopt);
      }
      start_ = scanned_ = buffer_.size();
    } else if (newline != std::string::npos && newline - start_ <= line_bytes_max_) {
      std::string line = buffer_.substr(start_, newline - start_);
      start_ = newline + 1;
      scanned_ = start_;
      return line;
    } else if (newline != std::string::npos || buffer_.size() - start_ > line_bytes_max_) {
      // Over the limit: keep its start, read past the rest.
      long_line_ = buffer_.substr(start_, line_bytes_max_ + 1);
      start_ = scanned_ = start_ + line_bytes_max_ + 1;
      continue;
    } else {
      scanned_ = buffer_.size();
      if (ended_) {
        if (start_ == buffer_.size()) {
          return std::nullopt;
        }
        std::string line = buffer_.substr(start_);
        start_ = scanned_ = buffer_.size();
        return line;
      }
    }
    // Drop what earlier lines used before the buffer grows.
    buffer_.erase(0, start_);
    scanned_ -= start_;
    start_ = 0;
    if (!fill()) {
      return std::nullopt;
    }
  }
}

bool LineReader::fill() {
  pollfd watched[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  for (;;) {
    const int ready = ::poll(watched, 2, -1);
    if (ready < 0 && errno == EINTR) {
      continue;
    }
    if (ready < 0) {
      error_ = fmt::format("waiting for stdin: {}", std::strerror(errno));
      return false;
    }
    if (watched[1].revents != 0) {
      return false;  // a stop was requested
    }
    if ((watched[0].revents & POLLNVAL) != 0) {
      error_ = "stdin is not open";
      return false;
    }
    if (watched[0].revents != 0) {
      break;
    }
  }
  const std::size_t size = buffer_.size();
  buffer_.resize(size + read_bytes_max);
  ssize_t got = -1;
  do {
    got = ::read(fd_, buffer_.data() + size, read_bytes_max);
  } while (got < 0 && errno == EINTR);
  const int read_error = got < 0 ? errno : 0;
  buffer_.resize(size + static_cast<std::size_t>(got > 0 ? got : 0));
  if (read_error == EAGAIN) {
    return true;  // a non-blocking stdin that had nothing after all
  }
  if (read_error != 0) {
    error_ = fmt::format("reading stdin: {}", std::strerror(read_error));
    return false;
  }
  ended_ = got == 0;
  return true;
}

}  // namespace seedpool::tool
