#pragma once

// PoolConfig: everything a pool is told. validate() names the first bad
// field and why, so a typo in a configuration file is an error message, not a
// hang at run time.

#include <seedpool/core/result.hpp>
#include <seedpool/core/time.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seedpool {

// eager: start() launches size.min workers at once and can wait for them.
// lazy: workers are started on demand, still outside the pool loop.
enum class InitMode { eager, lazy };

// "eager" or "lazy"; anything else is an invalid_argument error naming it.
Result<InitMode> parse_init_mode(std::string_view text);
std::string_view to_string(InitMode mode) noexcept;

struct WorkerCommand {
  std::string program;                                   // executable path; never run through a shell
  std::vector<std::string> args;                         // argv[1..]
  std::vector<std::pair<std::string, std::string>> env;  // added to the inherited environment
  std::string working_dir;                               // empty: inherit
};

struct PoolConfig {
  std::string name = "pool";
  WorkerCommand command;

  struct Size {
    std::size_t min = 1;  // workers kept running (eager mode)
    std::size_t max = 4;  // never more active workers than this
  } size;

  InitMode init = InitMode::eager;
  std::size_t min_ready = 1;  // start() succeeds once this many are ready

  Duration init_timeout = seconds(30);      // launch + init handshake, per worker
  Duration checkout_timeout = seconds(5);   // default checkout deadline
  Duration call_timeout = seconds(30);      // default call deadline

  Duration health_interval = seconds(10);   // idle workers are pinged this often; zero disables
  Duration health_timeout = seconds(2);     // a pong must arrive within this

  std::uint64_t max_calls = 0;              // recycle after this many calls; 0: never
  Duration max_lifetime = Duration::zero(); // recycle after this long; zero: never
  Duration max_lifetime_jitter = Duration::zero();  // up to this much earlier, drawn per worker

  // Restarts are per worker slot. A failed start (launch or init), or an
  // exit within ready_exit_window after `ready`, is a failure of its slot:
  // the slot's next start waits restart_backoff_base, doubled for each
  // further failure in a row, capped at restart_backoff_max, less up to
  // restart_backoff_jitter_percent; such failures also count toward the
  // breaker. A worker that was ready for ready_exit_window or longer clears
  // its slot's failures when it leaves, so a burst of deaths of healthy
  // workers restarts each at once. Zero: no exit counts as a failed start.
  Duration restart_backoff_base = milliseconds(100);  // first delay after a failure
  Duration restart_backoff_max = seconds(30);         // the delay never grows beyond this
  std::uint32_t restart_backoff_jitter_percent = 20;  // delay reduced by up to this share
  Duration ready_exit_window = seconds(1);

  std::size_t breaker_failures = 5;         // failed starts within the window that open the breaker
  Duration breaker_window = seconds(60);
  Duration breaker_cooldown = seconds(30);  // open -> half-open after this

  std::size_t waiters_max = 1024;           // queued checkouts; a checkout that would wait beyond this: pool_saturated
  std::size_t affinity_keys_max = 4096;     // remembered key -> worker bindings
  std::size_t mailbox_depth_max = 4096;     // messages queued for the pool task

  Duration shutdown_grace = seconds(10);    // leases may finish within this
  Duration terminate_grace = seconds(5);    // after terminate, before kill
  std::size_t stderr_lines_kept = 100;      // per worker
  std::size_t stderr_line_bytes_max = 4096; // longer lines are cut

  // The largest frame a worker accepts, length field included (the
  // protocol's default, 16 MiB; docs/protocol.md). A call whose frame would
  // be larger is refused by the pool with invalid_argument naming the limit,
  // never written: the worker keeps serving. At least an empty frame (13
  // bytes), at most 4 GiB + 3 (the length field's range).
  std::uint64_t frame_bytes_max = 16 * 1024 * 1024;

  // Returns ok, or invalid_argument naming the first bad field, its value and
  // the rule it breaks.
  Status validate() const;
};

}  // namespace seedpool
