#include <seedpool/core/assert.hpp>
#include <seedpool/sim/faults.hpp>

#include <fmt/format.h>

namespace seedpool::sim {

std::string_view to_string(Fault fault) noexcept {
  switch (fault) {
    case Fault::launch_failure: return "launch_failure";
    case Fault::slow_start: return "slow_start";
    case Fault::init_error: return "init_error";
    case Fault::init_crash: return "init_crash";
    case Fault::init_hang: return "init_hang";
    case Fault::init_garbage: return "init_garbage";
    case Fault::call_crash: return "call_crash";
    case Fault::call_hang: return "call_hang";
    case Fault::call_garbage: return "call_garbage";
    case Fault::call_truncated: return "call_truncated";
    case Fault::call_wrong_id: return "call_wrong_id";
    case Fault::call_error: return "call_error";
    case Fault::call_slow: return "call_slow";
    case Fault::pings_ignored: return "pings_ignored";
    case Fault::ignore_terminate: return "ignore_terminate";
    case Fault::slow_shutdown: return "slow_shutdown";
    case Fault::caller_cancel: return "caller_cancel";
    case Fault::caller_short_deadline: return "caller_short_deadline";
    case Fault::caller_vanish: return "caller_vanish";
    case Fault::external_kill: return "external_kill";
  }
  return "unknown";
}

std::string_view to_string(FaultInjector::Grid grid) noexcept {
  switch (grid) {
    case FaultInjector::Grid::ns: return "ns";
    case FaultInjector::Grid::us: return "us";
    case FaultInjector::Grid::ms: return "ms";
    case FaultInjector::Grid::at_once: return "at_once";
  }
  return "unknown";
}

std::string FaultOptions::describe() const {
  std::string out;
  for (std::size_t i = 0; i < fault_count; ++i) {
    if (ppm[i] != 0) {
      out += fmt::format("{}{}={}", out.empty() ? "" : " ", to_string(static_cast<Fault>(i)), ppm[i]);
    }
  }
  return out.empty() ? "none" : out;
}

namespace {

std::string fired_key(std::size_t fault) { return fmt::format("fault:{}", to_string(static_cast<Fault>(fault))); }

}  // namespace

FaultInjector::FaultInjector(SimWorld& world, FaultOptions options, bool swarm, Coverage& coverage)
    : world_(world), options_(options), fired_(coverage, &fired_key) {
  grid_ = static_cast<Grid>(world_.decide(grid_count));
  increment(coverage, fmt::format("grid:{}", to_string(grid_)));
  if (!swarm) {
    return;
  }
  for (std::size_t i = 0; i < fault_count; ++i) {
    const std::uint32_t max = options.ppm[i];
    const bool on = max != 0 && world_.decide(2) == 1;
    options_.ppm[i] = on ? static_cast<std::uint32_t>(1 + world_.decide(max)) : 0;
  }
}

bool FaultInjector::fire(Fault fault) {
  const std::uint32_t ppm = options_[fault];
  if (!enabled_ || ppm == 0) {
    return false;
  }
  SEEDPOOL_ASSERT(ppm <= ppm_one);
  // The top `ppm` values fire, so the default decision 0 never does.
  const bool fired = world_.decide(ppm_one) >= ppm_one - ppm;
  if (fired) {
    fired_.increment(static_cast<std::size_t>(fault));
    ++fired_counts_[static_cast<std::size_t>(fault)];
    world_.note(to_string(fault), 1);
  }
  return fired;
}

std::optional<Fault> FaultInjector::pick(std::initializer_list<Fault> faults) {
  if (!enabled_) {
    return std::nullopt;
  }
  std::uint64_t total = 0;
  for (const Fault fault : faults) {
    total += options_[fault];
  }
  if (total == 0) {
    return std::nullopt;
  }
  const std::uint64_t value = world_.decide(ppm_one);
  std::uint64_t upper = ppm_one;  // the faults before this one took [upper, ppm_one)
  for (const Fault fault : faults) {
    const std::uint64_t ppm = std::min<std::uint64_t>(options_[fault], upper);
    if (value >= upper - ppm) {
      if (ppm == 0) {
        break;  // value lies in a range no fault claims
      }
      fired_.increment(static_cast<std::size_t>(fault));
      ++fired_counts_[static_cast<std::size_t>(fault)];
      world_.note(to_string(fault), 1);
      return fault;
    }
    upper -= ppm;
  }
  return std::nullopt;
}

Duration FaultInjector::latency(Duration min, Duration max) {
  SEEDPOOL_ASSERT(min <= max);
  const auto span = static_cast<std::uint64_t>((max - min).ns());
  std::uint64_t step = 1;
  switch (grid_) {
    case Grid::ns: break;
    case Grid::us: step = 1'000; break;
    case Grid::ms: step = 1'000'000; break;
    case Grid::at_once: return min;
  }
  return min + Duration::from_ns(static_cast<std::int64_t>(step * world_.decide(span / step + 1)));
}

void FaultInjector::install(SimProcessHost& host) {
  host.set_launch_failure([this](std::uint64_t, const ProcessSpec&) -> std::optional<std::string> {
    if (fire(Fault::launch_failure)) {
      return std::string("No such file or directory (simulated)");
    }
    return std::nullopt;
  });
  host.set_behavior_for_launch([this](std::uint64_t, const ProcessSpec&) { return behavior_for_launch(); });
}

WorkerBehavior FaultInjector::behavior_for_launch() {
  WorkerBehavior b;
  b.startup = fire(Fault::slow_start) ? latency(options_.startup_max, options_.startup_tail_max)
                                      : latency(options_.startup_min, options_.startup_max);
  b.stderr_before_crash = {"Traceback (most recent call last):", "  File \"worker.py\", line 42, in handle",
                           "RuntimeError: simulated crash"};
  if (const std::optional<Fault> fault =
          pick({Fault::init_crash, Fault::init_error, Fault::init_hang, Fault::init_garbage})) {
    switch (*fault) {
      case Fault::init_crash: b.init = WorkerBehavior::Init::crash; break;
      case Fault::init_error: b.init = WorkerBehavior::Init::error_frame; break;
      case Fault::init_hang: b.init = WorkerBehavior::Init::hang; break;
      default: b.init = WorkerBehavior::Init::garbage; break;
    }
  }
  b.answer_pings = !fire(Fault::pings_ignored);
  b.ignore_terminate = fire(Fault::ignore_terminate);
  if (fire(Fault::slow_shutdown)) {
    b.shutdown_latency = latency(milliseconds(1), options_.slow_shutdown_max);
  }
  b.reply_latency = latency(microseconds(100), options_.reply_latency_max);
  b.on_call = [this](std::uint64_t call_index, const Frame&) { return call_action(call_index); };
  return b;
}

CallAction FaultInjector::call_action(std::uint64_t) {
  // One decision per call: a call is the commonest fault site of a run.
  CallAction action;
  const std::optional<Fault> fault = pick({Fault::call_crash, Fault::call_hang, Fault::call_garbage,
                                           Fault::call_truncated, Fault::call_wrong_id, Fault::call_error,
                                           Fault::call_slow});
  if (!fault) {
    return action;
  }
  switch (*fault) {
    case Fault::call_crash: action.kind = CallAction::Kind::crash; break;
    case Fault::call_hang: action.kind = CallAction::Kind::hang; break;
    case Fault::call_garbage: action.kind = CallAction::Kind::garbage; break;
    case Fault::call_truncated: action.kind = CallAction::Kind::truncated_then_exit; break;
    case Fault::call_wrong_id: action.kind = CallAction::Kind::wrong_request_id; break;
    case Fault::call_error: action.kind = CallAction::Kind::error_frame; break;
    default: action.latency = latency(options_.reply_latency_max, options_.slow_reply_max); break;  // call_slow
  }
  return action;
}

}  // namespace seedpool::sim
