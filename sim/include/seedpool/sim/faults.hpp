#pragma once

// Faults as named probabilities, drawn from the run's decision stream. Every
// fault site asks the injector, which makes one decision; a recorded decision
// list therefore replays the faults too, and a shrinker that zeroes decisions
// removes faults (a decision of 0 never fires a fault).

#include <seedpool/core/assert.hpp>
#include <seedpool/core/telemetry.hpp>
#include <seedpool/core/time.hpp>
#include <seedpool/sim/sim_process.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace seedpool::sim {

// Probabilities are integers in parts per million: no floating point on the
// decision path.
inline constexpr std::uint32_t ppm_one = 1'000'000;

// The fault kinds, each a named probability in FaultOptions.
enum class Fault : std::uint8_t {
  launch_failure,     // launch() fails (missing executable)
  slow_start,         // startup drawn from the heavy tail
  init_error,         // init answered with an error frame
  init_crash,         // crash during init, after a stderr burst
  init_hang,          // init never answered
  init_garbage,       // garbage on stdout during init
  call_crash,         // crash during a call
  call_hang,          // a call never answered
  call_garbage,       // garbage on stdout instead of a reply
  call_truncated,     // half a reply frame, then exit
  call_wrong_id,      // a reply with a stale request id
  call_error,         // an error frame for a call (the worker survives)
  call_slow,          // a reply after a long latency
  pings_ignored,      // the worker stops answering pings
  ignore_terminate,   // the worker ignores SIGTERM
  slow_shutdown,      // the worker takes long to exit on shutdown
  caller_cancel,      // a caller cancels its checkout
  caller_short_deadline,  // a caller's deadline is very short
  caller_vanish,      // a caller keeps its lease for a long time, then drops it
  external_kill,      // a chaos task SIGKILLs a random worker
};
inline constexpr std::size_t fault_count = 20;
std::string_view to_string(Fault fault) noexcept;

struct FaultOptions {
  std::array<std::uint32_t, fault_count> ppm{};  // indexed by Fault

  Duration startup_min = milliseconds(5);
  Duration startup_max = milliseconds(80);
  Duration startup_tail_max = seconds(20);    // slow_start draws up to this
  Duration reply_latency_max = milliseconds(5);
  Duration slow_reply_max = seconds(10);      // call_slow draws up to this
  Duration slow_shutdown_max = seconds(20);

  std::uint32_t& operator[](Fault f) { return ppm[static_cast<std::size_t>(f)]; }
  std::uint32_t operator[](Fault f) const { return ppm[static_cast<std::size_t>(f)]; }

  // "init_crash=20000 call_crash=5000" (ppm), only the faults that are on.
  std::string describe() const;
};

// Which faults fired and which recovery paths ran, counted by name: the
// report of what a sweep actually exercised.
// Counted with seedpool::increment, or with CoverageCounters where hot.
using Coverage = OutcomeCounts;

// N counters of one Coverage map, each found (and created) on its first hit
// and then added to in place: a lookup by string on every hit was a
// measurable share of a sweep. Counter i always counts the key key_of(i). A
// key appears in the map only once hit, as with seedpool::increment. The
// map's entries must not be erased while the counters are in use.
template <std::size_t N>
class CoverageCounters {
 public:
  using KeyOf = std::string (*)(std::size_t index);

  CoverageCounters(Coverage& coverage, KeyOf key_of) noexcept : coverage_(coverage), key_of_(key_of) {}

  // Adds one to counter `index`. Requires index < N.
  void increment(std::size_t index) {
    SEEDPOOL_ASSERT(index < N);
    std::uint64_t*& count = counts_[index];
    if (count == nullptr) {
      count = &coverage_.try_emplace(key_of_(index), 0).first->second;
    }
    ++*count;
  }

 private:
  Coverage& coverage_;
  KeyOf key_of_;
  std::array<std::uint64_t*, N> counts_{};
};

class FaultInjector {
 public:
  // Swarm mode: each fault kind of `options` is switched on with probability
  // one half, at a rate drawn from [1, its rate in `options`]: a different
  // mix per seed, all drawn from the run's decisions.
  // Fired faults are counted into `coverage` as "fault:<name>".
  FaultInjector(SimWorld& world, FaultOptions options, bool swarm, Coverage& coverage);

  // True with the fault's probability, while faults are enabled; counts hits.
  bool fire(Fault fault);

  // One of `faults`, which exclude one another, or nullopt: each with its own
  // probability, all from one decision (the top values of its range go to the
  // first fault, the next ones to the second, and so on, so that 0 fires
  // none). Where the probabilities add up to more than one, the later faults
  // get what is left. Makes no decision when none of them can fire.
  std::optional<Fault> pick(std::initializer_list<Fault> faults);

  // The quiet period of a liveness check switches faults off.
  void set_enabled(bool enabled) noexcept { enabled_ = enabled; }
  bool enabled() const noexcept { return enabled_; }

  // A latency in [min, max], drawn uniformly on the run's time grid (0
  // decision: min).
  Duration latency(Duration min, Duration max);

  // The time grid every latency of a run is drawn on, chosen per run from
  // the decisions (0: nanoseconds). A coarse grid makes events land on the
  // same instant — a cancel crossing a grant, a deadline meeting a reply —
  // which uniform nanoseconds almost never do; `at_once` draws every
  // latency as its minimum.
  enum class Grid : std::uint8_t { ns, us, ms, at_once };
  static constexpr std::size_t grid_count = 4;
  Grid grid() const noexcept { return grid_; }

  // How often `fault` fired in this run.
  std::uint64_t fired(Fault fault) const noexcept { return fired_counts_[static_cast<std::size_t>(fault)]; }

  // Installs fault-drawing behaviour on every later launch of `host`.
  void install(SimProcessHost& host);

  const FaultOptions& options() const noexcept { return options_; }

 private:
  WorkerBehavior behavior_for_launch();
  CallAction call_action(std::uint64_t call_index);

  SimWorld& world_;
  FaultOptions options_;
  bool enabled_ = true;
  CoverageCounters<fault_count> fired_;  // "fault:<name>", indexed by Fault
  std::array<std::uint64_t, fault_count> fired_counts_{};
  Grid grid_ = Grid::ns;
};

std::string_view to_string(FaultInjector::Grid grid) noexcept;

}  // namespace seedpool::sim
