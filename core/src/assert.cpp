#include <seedpool/core/assert.hpp>

#include <cstdio>
#include <cstdlib>

namespace seedpool {
namespace {

thread_local AssertionHandler current_handler = nullptr;

[[noreturn]] void print_and_abort(const AssertionInfo& info) {
  std::fprintf(stderr, "seedpool: assertion failed: %.*s%s%.*s at %.*s:%d\n",
               static_cast<int>(info.expression.size()), info.expression.data(),
               info.message.empty() ? "" : " — ", static_cast<int>(info.message.size()),
               info.message.data(), static_cast<int>(info.file.size()), info.file.data(),
               info.line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace

AssertionHandler set_assertion_handler(AssertionHandler handler) noexcept {
  AssertionHandler previous = current_handler;
  current_handler = handler;
  return previous;
}

void assertion_failed(const AssertionInfo& info) {
  if (current_handler != nullptr) {
    current_handler(info);
  }
  // A handler that returned broke its contract; stopping is the only safe move.
  print_and_abort(info);
}

}  // namespace seedpool
