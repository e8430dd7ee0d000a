// The pool's public handle: creating, starting and stopping the pool,
// checkouts (the caller takes its worker on the shelf itself when it can,
// shelf.hpp), execute, and stats. Lease and PendingCheckout are in lease.cpp.

#include "pending_state.hpp"
#include "shelf.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

#include <atomic>
#include <system_error>

namespace seedpool {

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
    case detail::Shelf::Taken::refused:
      state->refused = std::move(taken.refusal);
      (void)state->settle(detail::PendingState::answered);  // nothing left to cancel
      return PendingCheckout(std::move(state));
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
