#include <seedpool/core/assert.hpp>
#include <seedpool/core/stderr_ring.hpp>

#include <algorithm>

namespace seedpool {

StderrRing::StderrRing(std::size_t lines_max, std::size_t line_bytes_max)
    : lines_max_(lines_max), line_bytes_max_(line_bytes_max) {
  SEEDPOOL_ASSERT(lines_max_ >= 1);
  SEEDPOOL_ASSERT(line_bytes_max_ >= 1);
}

void StderrRing::push(std::string_view line) {
  if (lines_.size() == lines_max_) {
    lines_.pop_front();
    ++dropped_;
  }
  if (line.size() > line_bytes_max_) {
    lines_.emplace_back(line.substr(0, line_bytes_max_));
    lines_.back() += "…[cut]";
  } else {
    lines_.emplace_back(line);
  }
  SEEDPOOL_ASSERT(lines_.size() <= lines_max_);
}

std::string StderrRing::tail(std::size_t lines) const {
  const std::size_t count = std::min(lines, lines_.size());
  std::string out;
  for (std::size_t i = lines_.size() - count; i < lines_.size(); ++i) {
    if (!out.empty()) {
      out += '\n';
    }
    out += lines_[i];
  }
  return out;
}

}  // namespace seedpool
