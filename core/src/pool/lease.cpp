// The caller's handles on a worker: Lease (the calls and the release) and
// PendingCheckout (the wait for a grant). They take and return workers on
// the shelf themselves (shelf.hpp) and tell the pool task the rest through
// its mailbox.

#include "call_line.hpp"
#include "pending_state.hpp"
#include "shelf.hpp"

#include <seedpool/core/assert.hpp>
#include <seedpool/core/codec.hpp>
#include <seedpool/core/pool.hpp>

#include <fmt/format.h>

namespace seedpool {

// ---------------------------------------------------------------- Lease

Lease::Lease(std::shared_ptr<detail::PoolShared> shared, std::uint64_t id, WorkerRef worker,
             std::shared_ptr<detail::CallLine> line)
    : shared_(std::move(shared)), id_(id), worker_(worker), line_(std::move(line)) {}

Lease::Lease(Lease&& other) noexcept
    : shared_(std::move(other.shared_)), id_(other.id_), worker_(other.worker_), line_(std::move(other.line_)) {}

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    shared_ = std::move(other.shared_);
    id_ = other.id_;
    worker_ = other.worker_;
    line_ = std::move(other.line_);
  }
  return *this;
}

Lease::~Lease() { release(); }

// The worker goes straight back on the shelf, or to the first waiter, when
// it is fit to; the pool task decides the rest (shelf.hpp, rule 4).
void Lease::release() {
  if (shared_ == nullptr) {
    return;
  }
  detail::Deliveries out;
  if (shared_->shelf().release(id_, out) == detail::Shelf::Released::to_pool_task) {
    (void)shared_->post(detail::Checkin{id_});
  }
  out.send();
  shared_.reset();
  line_.reset();
}

Result<std::string> Lease::call(std::string payload, std::optional<Instant> deadline) {
  if (shared_ == nullptr) {
    return Error{ErrorCode::invalid_argument, "call on a lease that is not held", {}};
  }
  const auto refused = [&](Error error) {
    if (!shared_->post(detail::CallRefused{id_, worker_, error.code})) {
      shared_->count_late_call(error.code);
    }
    return error;
  };
  if (const std::uint64_t frame = kFrameHeaderBytes + std::uint64_t{payload.size()};
      frame > shared_->config.frame_bytes_max) {
    // Refused here, never written: a worker that enforces the limit would
    // fail on it and be restarted. The lease and the worker stay as they were.
    return refused(Error{ErrorCode::invalid_argument,
                         fmt::format("payload of {} bytes makes a call frame of {} bytes, over frame_bytes_max {} "
                                     "of pool '{}'; the call was not sent",
                                     payload.size(), frame, shared_->config.frame_bytes_max, shared_->config.name),
                         {}});
  }
  const Instant started = shared_->world.now();
  const Instant until = deadline.value_or(started + shared_->config.call_timeout);
  detail::CallLine& line = *line_;
  const Result<std::uint64_t> begun = line.begin(started);
  if (!begun) {
    return refused(begun.error());
  }
  if (Status sent = line.send(begun.value(), std::move(payload)); !sent) {
    // The call stays waiting; the pool fails the worker, which answers it.
    (void)shared_->post(detail::CallUnsent{id_, sent.error()});
  }
  detail::CallLine::Waited waited = line.wait(begun.value(), until);
  if (waited.reply) {
    if (waited.records_full) {
      (void)shared_->post(detail::CallsReport{id_});
    }
    return std::move(*waited.reply);
  }
  // The worker may still answer later; the pool must kill it.
  (void)shared_->post(detail::CallAbandon{id_});
  return Error{ErrorCode::timeout,
               fmt::format("call to worker {} of pool '{}' got no reply within {}", worker_.to_string(),
                           shared_->config.name, detail::ms(until - started)),
               {}};
}

// ---------------------------------------------------------------- PendingCheckout

PendingCheckout& PendingCheckout::operator=(PendingCheckout&& other) noexcept {
  if (this != &other) {
    drop();
    state_ = std::move(other.state_);
  }
  return *this;
}

PendingCheckout::~PendingCheckout() { drop(); }

// A checkout dropped without wait() or cancel() is a cancel, so that its
// grant cannot keep a worker busy forever.
void PendingCheckout::drop() noexcept {
  if (state_ != nullptr && state_->settle(detail::PendingState::cancelled)) {
    (void)state_->shared->post(detail::CheckoutCancel{state_->id});
  }
  state_.reset();
}

Result<Lease> PendingCheckout::wait() {
  SEEDPOOL_ASSERT_MSG(state_ != nullptr, "wait() on a moved-from PendingCheckout");
  detail::PendingState& s = *state_;
  if (s.waited) {
    return Error{ErrorCode::invalid_argument, "PendingCheckout::wait called twice", {}};
  }
  s.waited = true;
  const auto cancelled = [] { return Error{ErrorCode::cancelled, "the checkout was cancelled", {}}; };
  if (s.refused) {
    return std::move(*s.refused);
  }
  if (s.granted) {
    if (!s.settle(detail::PendingState::answered)) {
      return cancelled();  // cancel() came first; its CheckoutCancel gives the grant back
    }
    return Lease(s.shared, s.id, s.granted->worker, std::move(s.granted->line));
  }
  Received<detail::CheckoutReply> answer = s.reply->receive(s.deadline);
  if (answer) {
    detail::CheckoutReply& reply = *answer.value;
    if (!reply) {
      // The pool settled the checkout as it failed it, and counted it so.
      return reply.error();
    }
    if (!s.settle(detail::PendingState::answered)) {
      // cancel() came first; its CheckoutCancel gives the grant back.
      return cancelled();
    }
    return Lease(s.shared, s.id, reply.value().worker, std::move(reply.value().line));
  }
  if (!s.settle(detail::PendingState::expired)) {
    if (s.phase->load() == detail::PendingState::answered) {
      // The pool settled the checkout first, failing it; the failure is sent
      // right after, and stands: it is how the pool counted the checkout.
      Received<detail::CheckoutReply> failure = s.reply->receive();
      SEEDPOOL_ASSERT_MSG(failure && !*failure.value, "a checkout settled by the pool without its failure");
      return failure.value->error();
    }
    return cancelled();  // the channel was closed by cancel(), which has told the pool itself
  }
  // From now on the pool cannot deliver, and counts what it could not
  // deliver as this timeout; a grant that came first goes back (below).
  s.reply->close();
  // Expired: the pool drops the waiter, or takes back a grant that crossed
  // the deadline.
  (void)s.shared->post(detail::CheckoutCancel{s.id, true});
  return Error{ErrorCode::timeout,
               fmt::format("no worker of pool '{}' became available before the checkout deadline",
                           s.shared->config.name),
               {}};
}

std::uint64_t PendingCheckout::id() const noexcept { return state_ == nullptr ? 0 : state_->id; }

bool PendingCheckout::cancel() {
  SEEDPOOL_ASSERT_MSG(state_ != nullptr, "cancel() on a moved-from PendingCheckout");
  return state_->cancel();
}

CheckoutCancelToken PendingCheckout::cancel_token() const {
  SEEDPOOL_ASSERT_MSG(state_ != nullptr, "cancel_token() of a moved-from PendingCheckout");
  return CheckoutCancelToken(state_);
}

bool CheckoutCancelToken::cancel() const { return state_ != nullptr && state_->cancel(); }

std::uint64_t CheckoutCancelToken::id() const noexcept { return state_ == nullptr ? 0 : state_->id; }

}  // namespace seedpool
