#pragma once

// What a checkout is while its caller has not taken its answer: shared by
// the caller's PendingCheckout (lease.cpp), its cancel tokens, and
// Pool::begin_checkout (pool.cpp), which makes it.

#include "shared.hpp"

#include <seedpool/core/channel.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

namespace seedpool::detail {

struct PendingState {
  // A checkout ends exactly once: wait() takes its grant, the caller gives
  // up (cancel, or the deadline in wait()), or the pool fails it, whichever
  // comes first. Deciding that with one atomic step means a grant is either
  // handed to the caller or given back, never both, and a failure is either
  // what the caller sees or counted as what the caller saw instead.
  enum Phase : int {
    pending = checkout_pending,
    answered = checkout_answered,
    cancelled = checkout_cancelled,
    expired = checkout_expired,
  };

  PendingState() = default;
  PendingState(const PendingState&) = delete;
  PendingState& operator=(const PendingState&) = delete;

  // Moves pending to `to`; false when the checkout had already ended.
  bool settle(Phase to) {
    int expected = pending;
    return phase->compare_exchange_strong(expected, to);
  }

  // cancel() of the PendingCheckout or of any of its tokens: safe from any
  // task, since settling is one atomic step and the rest is done only by the
  // one caller that settled it.
  bool cancel() {
    if (!settle(cancelled)) {
      return false;  // wait() has returned, the pool failed it, or an earlier cancel() did this
    }
    if (reply != nullptr) {
      reply->close();
    }
    // The pool drops the waiter, or takes back a grant that crossed the
    // cancel (or that the shelf made at once), whether or not the caller
    // ever calls wait().
    (void)shared->post(CheckoutCancel{id});
    return true;
  }

  // The checkout waits on a reply box: the phase is the box's, which the
  // pool reads.
  void wait_on(std::shared_ptr<CheckoutReplyBox> waited_box) {
    box = std::move(waited_box);
    reply = &box->channel;
    phase = &box->phase;
  }

  std::shared_ptr<PoolShared> shared;
  std::uint64_t id = 0;
  Instant deadline;
  std::optional<Grant> granted;              // taken on the shelf at once: no reply box
  std::optional<Error> refused;              // failed on the shelf at once (counted so): no reply box
  std::shared_ptr<CheckoutReplyBox> box;     // otherwise, where the answer comes
  Channel<CheckoutReply>* reply = nullptr;   // box's channel
  std::atomic<int> own_phase{pending};       // the phase while there is no box
  std::atomic<int>* phase = &own_phase;
  bool waited = false;
};

}  // namespace seedpool::detail
