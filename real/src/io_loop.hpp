#pragma once

// The I/O loop: one thread per RealWorld that owns every child's pipes and
// exit watch. Other threads talk to it only through a small inbox (new
// processes, requests to serve a process's stdin, stop) and an
// eventfd that wakes it; it talks back only through each process's channel.

#include "epoll.hpp"
#include "process_io.hpp"
#include "spawn.hpp"

#include <seedpool/core/process.hpp>
#include <seedpool/core/world.hpp>
#include <seedpool/real/real_world.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

namespace seedpool::real::detail {

// Bytes taken from one pipe per readiness event; also bounds the events one
// read can produce.
inline constexpr std::size_t read_bytes_max = std::size_t{64} * 1024;
// Events taken from epoll per wait.
inline constexpr int epoll_events_max = 64;

class IoLoop {
 public:
  // Starts the loop thread, with every signal blocked in it so that the
  // program's signals go to its own threads. Throws std::system_error when
  // the kernel refuses the epoll set, the eventfd or the thread.
  IoLoop(World& world, const RealWorldConfig& config);
  // stop().
  ~IoLoop();
  IoLoop(const IoLoop&) = delete;
  IoLoop& operator=(const IoLoop&) = delete;

  // Any thread. Takes charge of a child posix_spawn just started and returns
  // its handle. On failure (the loop is stopped, or epoll refuses its
  // descriptors) the child is killed and reaped and launch_failed returned.
  Result<std::unique_ptr<Process>> adopt(const ProcessSpec& spec, SpawnedChild child);

  // Any thread. Asks the loop to serve process `key` again: bytes wait for
  // its stdin, its stdin broke, or its handle is gone.
  void request_service(std::uint64_t key);

  // Any thread, with the process's SharedStdout::mutex held: arms (for
  // reading, oneshot) or disarms the loop's interest in stdout `fd` of
  // process `key`.
  void set_stdout_interest(std::uint64_t key, int fd, bool armed);

  // Any thread: the World's clock and configuration.
  Instant now() const { return world_.now(); }
  // An Instant of that clock as a time point of the steady clock it counts
  // from (to within the two reads of clock_epoch_).
  Clock::time_point clock_of(Instant at) const {
    return clock_epoch_ + std::chrono::nanoseconds((at - Instant::zero()).ns());
  }
  const RealWorldConfig& config() const noexcept { return config_; }

  // Any thread but the loop's. Ends the loop: every child still running is
  // killed and reaped, every descriptor closed, every channel closed (Exited
  // last if it fits). Idempotent.
  void stop();

 private:
  struct Inbox {
    std::vector<std::unique_ptr<ProcessIo>> added;
    std::vector<std::uint64_t> requests;
    bool stop = false;
  };

  void run();
  bool take_inbox(Clock::time_point now);
  void dispatch(const epoll_event& event, Clock::time_point now);
  void serve(ProcessIo& io, Clock::time_point now);
  void serve_due(Clock::time_point now);
  int timeout_ms(Clock::time_point now) const;
  void wake();
  void drain_wake();

  World& world_;
  const RealWorldConfig& config_;
  const Clock::time_point clock_epoch_;  // the steady clock's time at the World's Instant::zero()
  Epoll epoll_;
  UniqueFd wake_fd_;
  std::vector<char> read_buffer_;

  // The loop thread's alone.
  std::unordered_map<std::uint64_t, std::unique_ptr<ProcessIo>> processes_;
  std::set<std::uint64_t> timed_;  // processes whose deadline() is not max

  std::mutex inbox_mutex_;  // guards the members below
  Inbox inbox_;
  std::uint64_t next_key_ = 1;  // keys are never reused
  bool stopped_ = false;        // adopt() refuses from here on

  std::thread thread_;
};

}  // namespace seedpool::real::detail
