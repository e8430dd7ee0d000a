// RealWorld: clock, sleep, tasks, monitors, randomness, and the order of
// destruction; launch() is in launch.cpp.

#include <seedpool/real/real_world.hpp>

#include "io_loop.hpp"
#include "real_monitor.hpp"
#include "real_sync.hpp"
#include "task_threads.hpp"

#include <seedpool/core/assert.hpp>

#include <csignal>
#include <limits>
#include <thread>

namespace seedpool::real {
namespace {

// The longest single sleep; a longer one is taken in pieces so that no time
// point overflows.
constexpr std::chrono::hours sleep_piece_max{24};

// SIG_IGN for SIGPIPE unless the program chose a disposition of its own.
void ignore_sigpipe() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    static_cast<void>(::sigaction(SIGPIPE, &ignore, nullptr));
  }
}

}  // namespace

RealWorld::RealWorld(RealWorldConfig config)
    : config_(config),
      epoch_(std::chrono::steady_clock::now()),
      random_(std::random_device{}()),
      tasks_(std::make_unique<detail::TaskThreads>()) {
  SEEDPOOL_ASSERT(config_.process_events_max >= 1);
  SEEDPOOL_ASSERT(config_.stdin_bytes_max >= kFrameHeaderBytes);
  SEEDPOOL_ASSERT(config_.frame_bytes_max >= kFrameHeaderBytes);
  SEEDPOOL_ASSERT(config_.stderr_line_bytes_max >= 1);
  SEEDPOOL_ASSERT(config_.drain_after_exit_max >= Duration::zero());
  ignore_sigpipe();
  io_ = std::make_unique<detail::IoLoop>(*this, config_);
}

RealWorld::~RealWorld() {
  destroying_.store(true, std::memory_order_release);
  tasks_->join_all();
  stopping_.store(true);
  io_->stop();
}

Instant RealWorld::now() const {
  const auto elapsed = std::chrono::steady_clock::now() - epoch_;
  return Instant::from_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
}

bool RealWorld::to_time_point(Instant instant, std::chrono::steady_clock::time_point& out) const noexcept {
  const std::int64_t epoch_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(epoch_.time_since_epoch()).count();
  std::int64_t at_ns = 0;
  if (instant.is_max() || __builtin_add_overflow(epoch_ns, instant.ns(), &at_ns)) {
    return false;
  }
  out = std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::nanoseconds(at_ns)));
  return true;
}

void RealWorld::sleep_until(Instant deadline) {
  for (;;) {
    const Duration left = deadline - now();
    if (left <= Duration::zero()) {
      return;
    }
    const auto piece = std::min<std::chrono::nanoseconds>(std::chrono::nanoseconds(left.ns()), sleep_piece_max);
    std::this_thread::sleep_for(piece);
  }
}

void RealWorld::spawn(std::string name, std::function<void()> body) {
  SEEDPOOL_ASSERT(body != nullptr);
  tasks_->spawn(std::move(name), std::move(body));
}

std::unique_ptr<Monitor> RealWorld::make_monitor(std::string /*name: for wait reasons in sim*/) {
  return std::make_unique<detail::RealMonitor>(*this);
}

std::unique_ptr<MutexBackend> RealWorld::make_mutex(std::string name) {
  return std::make_unique<detail::RealMutex>(std::move(name));
}

std::unique_ptr<ConditionBackend> RealWorld::make_condition(std::string name) {
  return std::make_unique<detail::RealCondition>(*this, std::move(name));
}

std::unique_ptr<JoinableTask> RealWorld::spawn_joinable(std::string name, std::function<void()> body) {
  SEEDPOOL_ASSERT(body != nullptr);
  auto state = std::make_shared<detail::JoinState>();
  state->task_id = detail::next_task_id();
  auto handle = std::make_unique<detail::RealJoinable>(name, state);
  tasks_->spawn(std::move(name), [state, body = std::move(body)] {
    detail::adopt_task_id(state->task_id);
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      state->thread = std::this_thread::get_id();
    }
    body();
    std::lock_guard<std::mutex> lock(state->mutex);
    state->done = true;
    state->finished.notify_all();
  });
  return handle;
}

std::uint64_t RealWorld::current_task_id() const noexcept { return detail::current_task_id(); }

std::uint64_t RealWorld::random_below(std::uint64_t bound) {
  SEEDPOOL_ASSERT(bound >= 1);
  std::uniform_int_distribution<std::uint64_t> distribution(0, bound - 1);
  std::lock_guard<std::mutex> lock(random_mutex_);
  return distribution(random_);
}

}  // namespace seedpool::real
