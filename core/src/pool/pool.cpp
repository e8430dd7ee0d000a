// The public handles of the pool: Pool, Lease and PendingCheckout. They take
// and return workers on the shelf themselves (shelf.hpp), and talk to the
// pool task only through its mailbox and per-request reply channels.

#include "call_line.hpp"
#include "shared.hpp"
#include "shelf.hpp"

#include <seedpool/core/assert.hpp>
#include <seedpool/core/codec.hpp>

#include <fmt/format.h>

#include <atomic>
#include <system_error>

namespace seedpool {

namespace detail {

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
  std::shared_ptr<CheckoutReplyBox> box;     // otherwise, where the answer comes
  Channel<CheckoutReply>* reply = nullptr;   // box's channel
  std::atomic<int> own_phase{pending};       // the phase while there is no box
  std::atomic<int>* phase = &own_phase;
  bool waited = false;
};

}  // namespace detail

namespace {

Error shutting_down(const detail::PoolShared& shared) {
  return Error{ErrorCode::pool_shutting_down, fmt::format("pool '{}' is shut down", shared.config.name), {}};
}

}  // namespace

Result<CheckoutOptions> parse_checkout_kind(std::string_view text) {
  CheckoutOptions options;
  if (text == "anonymous") {
    return options;
  }
  constexpr std::string_view prefer = "affinity:";
  constexpr std::string_view strict = "affinity-strict:";
  if (text.starts_with(prefer) && text.size() > prefer.size()) {
    options.affinity_key = std::string(text.substr(prefer.size()));
    return options;
  }
  if (text.starts_with(strict) && text.size() > strict.size()) {
    options.affinity_key = std::string(text.substr(strict.size()));
    options.affinity_mode = AffinityMode::strict;
    return options;
  }
  return Error{ErrorCode::invalid_argument,
               fmt::format("unknown checkout kind '{}': expected 'anonymous', 'affinity:KEY' or "
                           "'affinity-strict:KEY'",
                           text),
               {}};
}

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
  const Result<std::uint64_t> begun = line.begin();
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

// ---------------------------------------------------------------- Pool

Result<std::unique_ptr<Pool>> Pool::create(World& world, PoolConfig config, PoolHooks hooks) {
  if (Status valid = config.validate(); !valid) {
    return valid.error();
  }
  auto shared = std::make_shared<detail::PoolShared>(world, std::move(config), hooks);
  return std::unique_ptr<Pool>(new Pool(std::move(shared)));
}

Pool::~Pool() {
  if (phase_.load() == started) {
    (void)shutdown();
  }
}

const PoolConfig& Pool::config() const noexcept { return shared_->config; }

Status Pool::start(std::optional<Instant> deadline) {
  int expected = created;
  if (!phase_.compare_exchange_strong(expected, started)) {
    SEEDPOOL_ASSERT_MSG(expected != started && expected != stopped_after_start, "Pool::start is callable once");
    return shutting_down(*shared_);
  }
  World& world = shared_->world;
  try {
    world.spawn(shared_->config.name, [shared = shared_] { detail::run_pool_task(shared); });
  } catch (const std::system_error& e) {
    phase_.store(stopped_before_start);  // nothing runs: shutdown has nothing to stop
    return Error{ErrorCode::launch_failed, fmt::format("cannot start the pool task: {}", e.what()), {}};
  }
  const std::size_t min_ready = shared_->config.init == InitMode::eager ? shared_->config.min_ready : 0;
  const Instant until = deadline.value_or(world.now() + shared_->config.init_timeout);
  auto reply = std::make_shared<Channel<Status>>(world, "start-reply", 1);
  if (!shared_->post(detail::StartRequest{min_ready, until, reply})) {
    return shutting_down(*shared_);
  }
  Received<Status> answer = reply->receive();
  if (!answer) {
    return shutting_down(*shared_);
  }
  return std::move(*answer.value);
}

Result<PendingCheckout> Pool::begin_checkout(CheckoutOptions options) {
  if (!task_started()) {
    return phase_.load() == stopped_before_start ? shutting_down(*shared_)
                      : Error{ErrorCode::invalid_argument, "checkout before Pool::start", {}};
  }
  World& world = shared_->world;
  auto state = std::make_shared<detail::PendingState>();
  state->shared = shared_;
  state->id = shared_->new_id();
  const Instant requested = world.now();
  state->deadline = options.deadline.value_or(requested + shared_->config.checkout_timeout);
  detail::Shelf::Attempt attempt{state->id, state->deadline, requested, std::move(options.affinity_key),
                                 options.affinity_mode};
  detail::Deliveries out;
  detail::Shelf::Taken taken = shared_->shelf().checkout(attempt, out);
  out.send();
  switch (taken.kind) {
    case detail::Shelf::Taken::granted: state->granted = std::move(taken.grant); return PendingCheckout(std::move(state));
    case detail::Shelf::Taken::waiting:
      state->wait_on(std::move(taken.box));
      if (taken.wake) {
        (void)shared_->post(detail::Wake{});
      }
      return PendingCheckout(std::move(state));
    case detail::Shelf::Taken::not_here: break;
  }
  // The pool task decides this one (shelf.hpp, rule 3).
  options.affinity_key = std::move(attempt.affinity_key);
  state->wait_on(std::make_shared<detail::CheckoutReplyBox>(world));
  const ChannelStatus sent = shared_->mailbox.send(
      detail::CheckoutRequest{state->id, state->deadline, requested, std::move(options.affinity_key),
                              options.affinity_mode,
                              std::shared_ptr<Channel<detail::CheckoutReply>>(state->box, &state->box->channel),
                              std::shared_ptr<std::atomic<int>>(state->box, &state->box->phase)},
      state->deadline);
  if (sent != ChannelStatus::ok) {
    (void)state->settle(detail::PendingState::answered);  // the pool never saw it: nothing to cancel
  }
  if (sent == ChannelStatus::closed) {
    return shutting_down(*shared_);
  }
  if (sent == ChannelStatus::timeout) {
    return Error{ErrorCode::timeout,
                 fmt::format("pool '{}' did not take the checkout before its deadline (mailbox full)",
                             shared_->config.name),
                 {}};
  }
  return PendingCheckout(std::move(state));
}

Result<Lease> Pool::checkout(CheckoutOptions options) {
  Result<PendingCheckout> pending = begin_checkout(std::move(options));
  if (!pending) {
    return pending.error();
  }
  return pending.value().wait();
}

Result<std::string> Pool::execute(std::string payload, ExecuteOptions options) {
  Result<Lease> lease = checkout(CheckoutOptions{options.deadline, std::move(options.affinity_key),
                                                 options.affinity_mode});
  if (!lease) {
    return lease.error();
  }
  Result<std::string> answer = lease.value().call(std::move(payload), options.deadline);
  lease.value().release();
  return answer;
}

PoolStats Pool::stats() {
  if (task_started()) {
    auto reply = std::make_shared<Channel<PoolStats>>(shared_->world, "stats-reply", 1);
    if (shared_->post(detail::StatsRequest{reply})) {
      if (Received<PoolStats> answer = reply->receive(); answer) {
        return std::move(*answer.value);
      }
    }
    MonitorLock lock(*shared_->final_stats_monitor);
    if (shared_->final_stats) {
      return *shared_->final_stats;
    }
  }
  PoolStats empty;
  empty.pool = shared_->config.name;
  return empty;
}

Status Pool::shutdown(std::optional<Instant> grace_deadline) {
  int phase = phase_.load();
  while (phase == created || phase == started) {
    const int to = phase == created ? stopped_before_start : stopped_after_start;
    if (phase_.compare_exchange_weak(phase, to)) {
      phase = to;
    }
  }
  if (phase == stopped_before_start) {
    return {};
  }
  // Every caller asks the pool task, even after the first: each must wait
  // for the end, and the task answers them all once every process is reaped.
  World& world = shared_->world;
  const Instant until = grace_deadline.value_or(world.now() + shared_->config.shutdown_grace);
  auto reply = std::make_shared<Channel<Status>>(world, "shutdown-reply", 1);
  if (!shared_->post(detail::ShutdownRequest{until, reply})) {
    return {};  // already finished
  }
  Received<Status> answer = reply->receive();
  if (!answer) {
    return Error{ErrorCode::closed, "the pool task ended before confirming shutdown", {}};
  }
  return std::move(*answer.value);
}

}  // namespace seedpool
