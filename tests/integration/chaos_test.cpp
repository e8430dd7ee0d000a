// Chaos: 32 callers keep the pool busy for a bounded time while a killer
// SIGKILLs random workers every few tens of milliseconds, a few impatient
// callers abandon calls mid-flight (which makes the pool kill those workers
// too), and health checks and recycling go on underneath. Safety while it runs: every call ends exactly once, with the caller's
// own payload or a typed error that the situation explains. Liveness after
// the faults stop: the pool gets back to size and serves again. Hygiene after
// shutdown: no process of any worker's group, no child in any state, and (in
// the fixture) no descriptor left.

#include "integration/integration_support.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace seedpool::integration {
namespace {

using Chaos = PoolIntegrationTest;

constexpr std::size_t pool_size = 4;
constexpr int callers_count = 32;
// Callers 0..impatient_count-1 give each call only a millisecond or two, so
// that some calls are abandoned with the reply in flight.
constexpr int impatient_count = 2;
constexpr Duration chaos_duration = seconds(6);
constexpr Duration impatient_call_deadline = milliseconds(2);
// Between kills, uniformly.
constexpr int kill_gap_ms_min = 20;
constexpr int kill_gap_ms_max = 60;
// A caller's loop must end within this after chaos_duration; past it the
// test reports a hang and aborts, since a stuck thread cannot be joined.
constexpr std::chrono::seconds callers_hang_guard{120};

// What one caller saw. Written by that caller only, read after it ends.
struct CallerLog {
  std::uint64_t attempts = 0;  // checkouts begun
  std::uint64_t calls = 0;     // calls sent on a lease
  std::uint64_t replies = 0;   // answers equal to the caller's own payload
  std::map<std::string, std::uint64_t> checkout_errors;
  std::map<std::string, std::uint64_t> call_errors;
  std::vector<std::string> violations;
};

// The payload of call `seq` of `caller`, padded to a few hundred bytes so that
// frames still fit a pipe's atomic write (a worker killed mid-reply cannot
// leave half a frame behind, which would be a protocol_error).
std::string payload_of(int caller, std::uint64_t seq) {
  std::string out = "caller=" + std::to_string(caller) + ";seq=" + std::to_string(seq) + ";";
  out.append(static_cast<std::size_t>(seq % 200), static_cast<char>('a' + caller % 26));
  return out;
}

// Runs one caller until `stop`: checkout, one to three calls on the lease,
// release. Errors that chaos explains are counted; anything else is a
// violation: another payload, a call timeout for a patient caller (the pool
// lost the reply of a worker it should have seen die), or an unexpected code.
void run_caller(Pool& pool, real::RealWorld& world, int caller, const std::atomic<bool>& stop, CallerLog& log) {
  const bool impatient = caller < impatient_count;
  std::uint64_t seq = 0;
  while (!stop.load()) {
    ++log.attempts;
    Result<Lease> lease = pool.checkout(CheckoutOptions{world.now() + seconds(20), {}, AffinityMode::prefer});
    if (!lease) {
      const ErrorCode code = lease.error().code;
      ++log.checkout_errors[std::string(to_string(code))];
      if (code != ErrorCode::timeout && code != ErrorCode::pool_unavailable) {
        log.violations.push_back("checkout: " + lease.error().describe());
      }
      continue;
    }
    const std::uint64_t calls_on_lease = 1 + seq % 3;
    for (std::uint64_t i = 0; i < calls_on_lease && !stop.load(); ++i) {
      const std::string payload = payload_of(caller, seq++);
      const Instant deadline = world.now() + (impatient ? impatient_call_deadline : seconds(20));
      ++log.calls;
      Result<std::string> r = lease.value().call(payload, deadline);
      if (r.ok()) {
        if (r.value() == payload) {
          ++log.replies;
        } else {
          log.violations.push_back("caller " + std::to_string(caller) + " sent '" + payload + "' and got '" +
                                   r.value() + "'");
        }
        continue;
      }
      const ErrorCode code = r.error().code;
      ++log.call_errors[std::string(to_string(code))];
      const bool explained = code == ErrorCode::worker_crashed || (impatient && code == ErrorCode::timeout);
      if (!explained) {
        log.violations.push_back("call: " + r.error().describe());
      }
      break;  // the lease is lost with its worker
    }
    lease.value().release();
  }
}

// SIGKILLs a random live worker every few tens of milliseconds until `stop`,
// and remembers every worker pid (each leads its own process group).
void run_killer(const std::atomic<bool>& stop, std::set<pid_t>& groups, std::vector<pid_t>& victims) {
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> gap(kill_gap_ms_min, kill_gap_ms_max);
  while (!stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(gap(random)));
    const std::vector<pid_t> pids = worker_pids(echo_worker);
    for (const pid_t pid : pids) {
      groups.insert(pid);
    }
    if (pids.empty()) {
      continue;
    }
    const pid_t victim = pids[std::uniform_int_distribution<std::size_t>(0, pids.size() - 1)(random)];
    if (kill_child(victim)) {
      victims.push_back(victim);
    }
  }
}

// Waits for every caller to finish, or reports the hang and aborts: a caller
// stuck in the pool cannot be joined, and waiting for ctest's timeout would
// say less.
void join_or_abort(std::vector<std::thread>& threads, std::atomic<int>& finished) {
  std::mutex mutex;
  std::condition_variable cv;
  const auto deadline = std::chrono::steady_clock::now() + callers_hang_guard;
  while (finished.load() < static_cast<int>(threads.size())) {
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "chaos: only %d of %zu callers returned within the hang guard; a call never ended\n",
                   finished.load(), threads.size());
      std::abort();
    }
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait_for(lock, std::chrono::milliseconds(20));
  }
  for (std::thread& t : threads) {
    t.join();
  }
}

std::uint64_t count_all(const std::map<std::string, std::uint64_t>& counts) {
  std::uint64_t sum = 0;
  for (const auto& [name, n] : counts) {
    sum += n;
  }
  return sum;
}

CallerLog merge(const std::vector<CallerLog>& logs) {
  CallerLog total;
  for (const CallerLog& log : logs) {
    total.attempts += log.attempts;
    total.calls += log.calls;
    total.replies += log.replies;
    for (const auto& [code, n] : log.checkout_errors) {
      total.checkout_errors[code] += n;
    }
    for (const auto& [code, n] : log.call_errors) {
      total.call_errors[code] += n;
    }
    total.violations.insert(total.violations.end(), log.violations.begin(), log.violations.end());
  }
  return total;
}

std::string summarize(const CallerLog& total, std::uint64_t kills) {
  return "kills " + std::to_string(kills) + ", checkouts " + std::to_string(total.attempts) + ", calls " +
         std::to_string(total.calls) + ", replies " + std::to_string(total.replies) + ", call errors " +
         ::testing::PrintToString(total.call_errors) + ", checkout errors " +
         ::testing::PrintToString(total.checkout_errors);
}

TEST_F(Chaos, CallersKeepCallingWhileWorkersAreKilledAndThePoolRecovers) {
  PoolConfig c = config("chaos", echo_command(), pool_size);
  c.restart_backoff_base = milliseconds(5);
  c.restart_backoff_max = milliseconds(100);
  // A worker killed while starting counts as a failed start. The breaker is
  // not what this test is about: keep it closed so that recovery is measured
  // in milliseconds, not in breaker cooldowns.
  c.breaker_failures = 1'000'000;
  // Health checks and both kinds of recycling run underneath the kills, so
  // that pings, shutdown frames and replacements interleave with them.
  c.health_interval = milliseconds(50);
  c.health_timeout = seconds(5);
  c.max_calls = 500;
  c.max_lifetime = seconds(1);
  c.max_lifetime_jitter = milliseconds(500);
  start_pool(c);
  ASSERT_FALSE(HasFatalFailure());

  std::atomic<bool> stop_callers{false};
  std::atomic<bool> stop_killer{false};
  std::atomic<int> finished{0};
  std::vector<CallerLog> logs(callers_count);
  std::vector<std::thread> callers;
  for (int caller = 0; caller < callers_count; ++caller) {
    callers.emplace_back([&, caller] {
      run_caller(pool(), world(), caller, stop_callers, logs[static_cast<std::size_t>(caller)]);
      ++finished;
    });
  }
  std::set<pid_t> groups;
  std::vector<pid_t> victims;
  std::thread killer([&] { run_killer(stop_killer, groups, victims); });

  world().sleep_for(chaos_duration);
  stop_killer.store(true);
  killer.join();
  stop_callers.store(true);
  join_or_abort(callers, finished);

  // Safety: every call ended once, with its own payload or an explained error.
  const CallerLog total = merge(logs);
  const std::uint64_t kills = victims.size();
  const std::string summary = summarize(total, kills);
  std::printf("chaos: %s\n", summary.c_str());
  EXPECT_TRUE(total.violations.empty()) << total.violations.size() << " violations, the first: "
                                        << (total.violations.empty() ? "" : total.violations.front()) << "\n"
                                        << summary;
  EXPECT_EQ(total.replies + count_all(total.call_errors), total.calls) << summary;
  EXPECT_GT(kills, 10u) << summary;
  EXPECT_GT(total.replies, 100u) << "the pool should serve while workers die; " << summary;
  EXPECT_GT(total.call_errors.count("worker_crashed"), 0u) << "no call was hit by a kill; " << summary;

  // Liveness: with the faults stopped, the pool gets back to size and serves.
  // First every victim must be dead (a SIGKILL is delivered asynchronously):
  // then a worker the pool counts as ready is one that is alive.
  ASSERT_TRUE(eventually(world(), [&] {
    return std::none_of(victims.begin(), victims.end(), [](pid_t pid) {
      const std::optional<ProcInfo> info = proc_info(pid);
      return info && is_live(*info) && info->ppid == ::getpid();
    });
  })) << "a killed worker is still alive";
  ASSERT_TRUE(back_to_size(pool_size, echo_worker)) << "the pool did not get back to size; stats: "
                                                    << pool().stats().to_prometheus()
                                                    << "workers:" << describe(children());
  for (int i = 0; i < 20; ++i) {
    Result<std::string> r = pool().execute(payload_of(99, static_cast<std::uint64_t>(i)));
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r.value(), payload_of(99, static_cast<std::uint64_t>(i)));
  }
  const PoolStats stats = pool().stats();
  std::printf("chaos: pool saw %llu exits, %llu recycles, %llu health failures, inits %s\n",
              static_cast<unsigned long long>(stats.worker_exits), static_cast<unsigned long long>(stats.recycles),
              static_cast<unsigned long long>(stats.health_failures), ::testing::PrintToString(stats.inits).c_str());
  // An impatient caller may give up on a call the worker answered in the same
  // instant: the pool counts that one ok, the caller a timeout.
  const std::uint64_t ok_calls = stats.count(stats.calls, "ok");
  EXPECT_GE(ok_calls, total.replies + 20) << summary;
  const auto timeouts = total.call_errors.find("timeout");
  EXPECT_LE(ok_calls, total.replies + 20 + (timeouts == total.call_errors.end() ? 0 : timeouts->second)) << summary;
  EXPECT_EQ(stats.workers_in(WorkerState::busy), 0);

  // Hygiene: every process of every worker's group is gone, and no child of
  // this process is left in any state (the fixture checks descriptors).
  for (const pid_t pid : worker_pids(echo_worker)) {
    groups.insert(pid);
  }
  shutdown_and_check(groups);
}

}  // namespace
}  // namespace seedpool::integration
