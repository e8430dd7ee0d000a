// A worker's stderr as lines; see output_streams.hpp.

#include "output_streams.hpp"

#include <seedpool/core/assert.hpp>

#include <algorithm>

namespace seedpool::real::detail {

StderrLines::StderrLines(std::size_t line_bytes_max) : line_bytes_max_(line_bytes_max) {
  SEEDPOOL_ASSERT(line_bytes_max_ >= 1);
}

void StderrLines::feed(std::string_view bytes, std::deque<ProcessEvent>& out) {
  for (;;) {
    const std::size_t newline = bytes.find('\n');
    if (newline == std::string_view::npos) {
      append(bytes, out);
      return;
    }
    append(bytes.substr(0, newline), out);
    emit(out);
    bytes.remove_prefix(newline + 1);
  }
}

void StderrLines::end(std::deque<ProcessEvent>& out) {
  if (!partial_.empty()) {
    emit(out);
  }
}

// A full piece is cut only when more of its line arrives, so a line of
// exactly line_bytes_max bytes is one line, not a line and an empty one.
void StderrLines::append(std::string_view piece, std::deque<ProcessEvent>& out) {
  while (!piece.empty()) {
    if (partial_.size() == line_bytes_max_) {
      emit(out);
    }
    const std::size_t take = std::min(line_bytes_max_ - partial_.size(), piece.size());
    partial_.append(piece.substr(0, take));
    piece.remove_prefix(take);
  }
  SEEDPOOL_ASSERT(partial_.size() <= line_bytes_max_);
}

void StderrLines::emit(std::deque<ProcessEvent>& out) {
  out.emplace_back(StderrLine{std::move(partial_)});
  partial_.clear();
}

}  // namespace seedpool::real::detail
