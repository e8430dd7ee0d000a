#include <seedpool/core/assert.hpp>
#include <seedpool/sim/pool_faults.hpp>
#include <seedpool/sim/sim_process.hpp>

#include <array>
#include <optional>
#include <string>

namespace seedpool::sim {
namespace {

// The ways init can go wrong, which exclude one another: one decision.
constexpr std::array<FaultChoice, 4> init_sites = {pool_faults::init_crash, pool_faults::init_error,
                                                   pool_faults::init_hang, pool_faults::init_garbage};
constexpr std::array<WorkerBehavior::Init, 4> init_answers = {
    WorkerBehavior::Init::crash, WorkerBehavior::Init::error_frame, WorkerBehavior::Init::hang,
    WorkerBehavior::Init::garbage};

// The ways a call can go wrong, which exclude one another: one decision.
// call_slow, the last, answers late instead.
constexpr std::array<FaultChoice, 7> call_sites = {
    pool_faults::call_crash,    pool_faults::call_hang,  pool_faults::call_garbage, pool_faults::call_truncated,
    pool_faults::call_wrong_id, pool_faults::call_error, pool_faults::call_slow};
constexpr std::array<CallAction::Kind, 6> call_kinds = {
    CallAction::Kind::crash,          CallAction::Kind::hang,             CallAction::Kind::garbage,
    CallAction::Kind::truncated_then_exit, CallAction::Kind::wrong_request_id, CallAction::Kind::error_frame};

CallAction call_action(FaultInjector& faults) {
  // One decision per call: a call is the commonest fault site of a run.
  CallAction action;
  const std::optional<std::size_t> which = faults.pick(call_sites);
  if (!which) {
    return action;
  }
  if (*which < call_kinds.size()) {
    action.kind = call_kinds[*which];
  } else {
    SEEDPOOL_ASSERT(call_sites[*which].site == pool_faults::call_slow);
    action.latency = faults.latency(faults.profile().reply_latency_max, faults.profile().slow_reply_max);
  }
  return action;
}

}  // namespace

WorkerBehavior faulty_worker(FaultInjector& faults) {
  const FaultOptions& knobs = faults.profile();
  WorkerBehavior b;
  b.startup = faults.fire(pool_faults::slow_start) ? faults.latency(knobs.startup_max, knobs.startup_tail_max)
                                                   : faults.latency(knobs.startup_min, knobs.startup_max);
  b.stderr_before_crash = {"Traceback (most recent call last):", "  File \"worker.py\", line 42, in handle",
                           "RuntimeError: simulated crash"};
  b.stderr_on_stop = {"worker stopping: closing connections"};
  if (const std::optional<std::size_t> which = faults.pick(init_sites)) {
    b.init = init_answers[*which];
  }
  b.answer_pings = !faults.fire(pool_faults::pings_ignored);
  b.ignore_terminate = faults.fire(pool_faults::ignore_terminate);
  if (faults.fire(pool_faults::slow_shutdown)) {
    b.shutdown_latency = faults.latency(milliseconds(1), knobs.slow_shutdown_max);
  }
  b.reply_latency = faults.latency(microseconds(100), knobs.reply_latency_max);
  b.on_call = [&faults](std::uint64_t, const Frame&) { return call_action(faults); };
  return b;
}

void install_pool_faults(FaultInjector& faults, SimProcessHost& host) {
  host.set_launch_failure([&faults](std::uint64_t, const ProcessSpec&) -> std::optional<std::string> {
    if (faults.fire(pool_faults::launch_failure)) {
      return std::string("No such file or directory (simulated)");
    }
    return std::nullopt;
  });
  host.set_behavior_for_launch([&faults](std::uint64_t, const ProcessSpec&) { return faulty_worker(faults); });
}

}  // namespace seedpool::sim
