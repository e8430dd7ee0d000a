#pragma once

// Assertions that stay on in every build type. NDEBUG does not touch them:
// a broken invariant in production is better stopped than propagated, and the
// simulator depends on them to turn a race into a reported failure.

#include <string_view>

namespace seedpool {

struct AssertionInfo {
  std::string_view expression;
  std::string_view message;  // empty when the assertion carries none
  std::string_view file;
  int line = 0;
};

// Called on a failed assertion. A handler must not return: it either throws
// (the simulator turns the failure into a run result) or terminates.
using AssertionHandler = void (*)(const AssertionInfo&);

// Installs a handler for the calling thread and returns the previous one.
// nullptr restores the default, which prints the failure to stderr and aborts.
AssertionHandler set_assertion_handler(AssertionHandler handler) noexcept;

// Reports a failed assertion through the calling thread's handler. Never returns.
[[noreturn]] void assertion_failed(const AssertionInfo& info);

}  // namespace seedpool

#define SEEDPOOL_ASSERT(condition)                                                        \
  ((condition) ? static_cast<void>(0)                                                     \
               : ::seedpool::assertion_failed(                                            \
                     ::seedpool::AssertionInfo{#condition, {}, __FILE__, __LINE__}))

#define SEEDPOOL_ASSERT_MSG(condition, message)                                           \
  ((condition) ? static_cast<void>(0)                                                     \
               : ::seedpool::assertion_failed(                                            \
                     ::seedpool::AssertionInfo{#condition, (message), __FILE__, __LINE__}))
