// The I/O loop; see io_loop.hpp.

#include "io_loop.hpp"

#include "task_threads.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <csignal>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <system_error>
#include <unistd.h>

namespace seedpool::real::detail {
namespace {

// The child's pidfd, or an invalid descriptor when the kernel has none
// (before Linux 5.3, or refused by a sandbox): the loop then polls waitid.
UniqueFd open_pidfd(pid_t pid) {
  const long fd = ::syscall(SYS_pidfd_open, pid, 0u);
  return fd < 0 ? UniqueFd{} : UniqueFd(static_cast<int>(fd));
}

// Blocks every signal in the calling thread for a scope, so that a thread
// started inside inherits the full mask.
class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    static_cast<void>(::pthread_sigmask(SIG_SETMASK, &all, &saved_));
  }
  ~SignalsBlocked() { static_cast<void>(::pthread_sigmask(SIG_SETMASK, &saved_, nullptr)); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  sigset_t saved_{};
};

}  // namespace

IoLoop::IoLoop(World& world, const RealWorldConfig& config)
    : world_(world),
      config_(config),
      clock_epoch_(Clock::now() - std::chrono::nanoseconds((world.now() - Instant::zero()).ns())),
      wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      read_buffer_(read_bytes_max) {
  if (!wake_fd_.valid()) {
    throw std::system_error(errno, std::generic_category(), "seedpool RealWorld: eventfd");
  }
  if (const int error = epoll_.add(wake_fd_.get(), epoll_tag(wake_key, Stream::stdin_pipe), EPOLLIN); error != 0) {
    throw std::system_error(error, std::generic_category(), "seedpool RealWorld: epoll_ctl");
  }
  const SignalsBlocked blocked;
  thread_ = std::thread([this] {
    set_thread_name("seedpool-io");
    run();
  });
}

IoLoop::~IoLoop() { stop(); }

Result<std::unique_ptr<Process>> IoLoop::adopt(const ProcessSpec& spec, SpawnedChild child) {
  UniqueFd exit_watch = config_.use_pidfd ? open_pidfd(child.pid) : UniqueFd{};
  const std::string name = spec.name.empty() ? spec.program : spec.name;
  // Registration and the hand-over share one critical section: the loop takes
  // the inbox right after every wait, so it knows the process before it
  // handles any event of its descriptors.
  std::lock_guard<std::mutex> lock(inbox_mutex_);
  const std::uint64_t key = next_key_++;
  auto shared = std::make_shared<ProcessShared>(world_, key, child.pid, name, std::move(child.stdin_fd),
                                                std::move(child.stdout_fd), config_.stdin_bytes_max,
                                                config_.frame_bytes_max, config_.process_events_max);
  auto io = std::make_unique<ProcessIo>(shared, std::move(child.stderr_fd), std::move(exit_watch), config_,
                                        read_bytes_max);
  const int error = stopped_ ? ECANCELED : io->register_with(epoll_);
  if (error != 0) {
    io->shut_down(epoll_);
    return launch_error(spec.program, error,
                        stopped_ ? "the RealWorld is being destroyed" : "registering its pipes with epoll");
  }
  inbox_.added.push_back(std::move(io));
  wake();
  return std::unique_ptr<Process>(std::make_unique<RealProcess>(std::move(shared), *this));
}

void IoLoop::request_service(std::uint64_t key) {
  std::lock_guard<std::mutex> lock(inbox_mutex_);
  inbox_.requests.push_back(key);
  wake();
}

void IoLoop::set_stdout_interest(std::uint64_t key, int fd, bool armed) {
  // Disarmed still names EPOLLONESHOT, so that a hang-up, which epoll always
  // reports, is reported once and not for as long as it lasts.
  epoll_.modify(fd, epoll_tag(key, Stream::stdout_pipe), armed ? (EPOLLIN | EPOLLONESHOT) : EPOLLONESHOT);
}

void IoLoop::stop() {
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    inbox_.stop = true;
    wake();
  }
  if (thread_.joinable()) {
    SEEDPOOL_ASSERT(thread_.get_id() != std::this_thread::get_id());
    thread_.join();
  }
}

void IoLoop::wake() {
  const std::uint64_t one = 1;
  // Fails only when the counter would overflow, and then a wake-up is pending.
  static_cast<void>(::write(wake_fd_.get(), &one, sizeof one));
}

void IoLoop::drain_wake() {
  std::uint64_t count = 0;
  static_cast<void>(::read(wake_fd_.get(), &count, sizeof count));
}

void IoLoop::run() {
  std::array<epoll_event, epoll_events_max> events{};
  for (;;) {
    const int n = epoll_.wait(events.data(), epoll_events_max, timeout_ms(Clock::now()));
    const Clock::time_point now = Clock::now();
    // The eventfd is reset before the inbox is read, never after: a wake-up
    // posted in between then finds the counter set and wakes the next wait.
    if (std::any_of(events.begin(), events.begin() + n,
                    [](const epoll_event& event) { return tag_key(event.data.u64) == wake_key; })) {
      drain_wake();
    }
    if (!take_inbox(now)) {
      break;
    }
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
      dispatch(events[i], now);
    }
    serve_due(now);
  }
  std::lock_guard<std::mutex> lock(inbox_mutex_);
  stopped_ = true;
  for (std::unique_ptr<ProcessIo>& io : inbox_.added) {  // adopted after the last take
    io->shut_down(epoll_);
  }
  inbox_.added.clear();
  for (auto& [key, io] : processes_) {
    io->shut_down(epoll_);
  }
  processes_.clear();
  timed_.clear();
}

// Returns false when the loop must stop; new processes are taken first, so
// that a stop never forgets a child.
bool IoLoop::take_inbox(Clock::time_point now) {
  Inbox inbox;
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    std::swap(inbox, inbox_);
    inbox_.stop = inbox.stop;
  }
  for (std::unique_ptr<ProcessIo>& io : inbox.added) {
    ProcessIo& added = *io;
    processes_.emplace(added.key(), std::move(io));
    serve(added, now);
  }
  for (const std::uint64_t key : inbox.requests) {
    if (const auto it = processes_.find(key); it != processes_.end()) {
      ProcessIo& io = *it->second;
      io.on_request(epoll_);
      serve(io, now);
    }
  }
  return !inbox.stop;
}

void IoLoop::dispatch(const epoll_event& event, Clock::time_point now) {
  const std::uint64_t tag = event.data.u64;
  if (tag_key(tag) == wake_key) {
    return;  // drained by run()
  }
  const auto it = processes_.find(tag_key(tag));
  if (it == processes_.end()) {
    return;  // the process finished earlier in this batch
  }
  ProcessIo& io = *it->second;
  io.on_event(tag_stream(tag), event.events, epoll_, read_buffer_, now);
  serve(io, now);
}

void IoLoop::serve(ProcessIo& io, Clock::time_point now) {
  const std::uint64_t key = io.key();
  if (io.advance(epoll_, read_buffer_, now)) {
    timed_.erase(key);
    processes_.erase(key);
    return;
  }
  if (io.deadline() != Clock::time_point::max()) {
    timed_.insert(key);
  } else {
    timed_.erase(key);
  }
}

void IoLoop::serve_due(Clock::time_point now) {
  std::vector<std::uint64_t> due;
  for (const std::uint64_t key : timed_) {
    if (processes_.at(key)->deadline() <= now) {
      due.push_back(key);
    }
  }
  for (const std::uint64_t key : due) {
    if (const auto it = processes_.find(key); it != processes_.end()) {
      serve(*it->second, now);
    }
  }
}

// Milliseconds until the earliest process deadline, rounded up so that the
// loop never wakes just before it; -1 (wait for events) when there is none.
int IoLoop::timeout_ms(Clock::time_point now) const {
  Clock::time_point earliest = Clock::time_point::max();
  for (const std::uint64_t key : timed_) {
    earliest = std::min(earliest, processes_.at(key)->deadline());
  }
  if (earliest == Clock::time_point::max()) {
    return -1;
  }
  if (earliest <= now) {
    return 0;
  }
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(earliest - now).count();
  return static_cast<int>(std::min<std::int64_t>((ns + 999'999) / 1'000'000, INT_MAX));
}

}  // namespace seedpool::real::detail
