#pragma once

// The one error family of seedpool's public API. Functions that can fail
// return Result<T> (or Status); nothing on the public API throws for an
// expected failure. Every Error carries a message a user can act on and, when
// the error concerns a worker, the tail of that worker's stderr.

#include <seedpool/core/assert.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace seedpool {

enum class ErrorCode {
  invalid_argument,   // a bad option or configuration value; the message names it
  launch_failed,      // a worker program could not be started
  protocol_error,     // a worker sent bytes that break the frame protocol
  timeout,            // a deadline passed
  cancelled,          // the caller cancelled
  closed,             // the channel or object was closed
  worker_crashed,     // the worker exited while serving the caller
  worker_error,       // the worker answered with an error frame
  pool_saturated,     // the waiter queue is full
  pool_unavailable,   // the circuit breaker is open
  pool_shutting_down, // the pool no longer accepts work
  io_error,           // an operating-system call failed
};

// Returns the stable lower-case name of a code, e.g. "worker_crashed".
std::string_view to_string(ErrorCode code) noexcept;

struct Error {
  ErrorCode code = ErrorCode::invalid_argument;
  std::string message;
  std::string stderr_tail;  // empty when the error concerns no worker

  // "worker_crashed: worker 3 exited with status 1" plus the stderr tail, if any.
  std::string describe() const;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // Requires ok().
  T& value() & {
    SEEDPOOL_ASSERT_MSG(ok(), "value() of a failed Result");
    return std::get<0>(state_);
  }
  const T& value() const& {
    SEEDPOOL_ASSERT_MSG(ok(), "value() of a failed Result");
    return std::get<0>(state_);
  }
  T&& value() && {
    SEEDPOOL_ASSERT_MSG(ok(), "value() of a failed Result");
    return std::get<0>(std::move(state_));
  }

  // Requires !ok().
  const Error& error() const {
    SEEDPOOL_ASSERT_MSG(!ok(), "error() of a successful Result");
    return std::get<1>(state_);
  }

 private:
  std::variant<T, Error> state_;
};

// The result of an operation that yields nothing but may fail.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT: implicit by design

  bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }

  // Requires !ok().
  const Error& error() const {
    SEEDPOOL_ASSERT_MSG(failed_, "error() of a successful Status");
    return error_;
  }

 private:
  Error error_;
  bool failed_ = false;
};

}  // namespace seedpool
