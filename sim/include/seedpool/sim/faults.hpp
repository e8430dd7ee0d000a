#pragma once

// Fault sites: named probabilities declared at the line they perturb, as
// FoundationDB's BUGGIFY is. A site is asked "fire now?" where it is used:
//
//   if (SEEDPOOL_FAULT(ctx, "queue.drop_ack", 20'000)) {  // 2% of the time
//     return;  // the acknowledgement is lost
//   }
//
// `ctx` is a ScenarioContext or a FaultInjector. The name is resolved once per
// use site to a FaultSite, a small index in a process-wide registry, and every
// check afterwards is an array lookup and at most one decision.
//
// Per run, as in a FoundationDB simulation, each site is enabled or not: the
// first time a run meets a site (while faults are on), the injector settles
// its rate for the whole run. The rate is the one the profile (FaultOptions)
// gives the site's name, else the one the use site declares; in swarm mode
// the site is then switched on with probability one half, at a rate drawn
// from [1, that rate]. Sites are discovered at use, so those draws happen at
// the first meeting, from the run's decisions, in the order the run meets
// the sites; a recorded decision list therefore replays them.
//
// Every check of a site whose rate is not 0 is one decision, whose default 0
// never fires it: a shrinker that zeroes or deletes decisions removes
// firings, and zeroing a site's swarm decision switches it off for the run. A
// site at rate 0 never fires and makes no decision. The quiet period of a
// liveness check switches all sites off (set_enabled(false)); checks then
// make no decision either.
//
// A firing is counted in the run's coverage as "fault:<name>" and noted in
// the trace under the site's name; the sites a run met, at their rates in
// that run, describe its faults in a failure report (in_effect()).
//
// The pool's own faults are sites of the same kind, declared in
// <seedpool/sim/pool_faults.hpp> (pool_faults::call_crash, ...).

#include <seedpool/core/assert.hpp>
#include <seedpool/core/telemetry.hpp>
#include <seedpool/core/time.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seedpool::sim {

// Probabilities are integers in parts per million: no floating point on the
// decision path.
inline constexpr std::uint32_t ppm_one = 1'000'000;

// Distinct site names one process may declare; a run's per-site state is an
// array of at most this many entries.
inline constexpr std::size_t fault_sites_max = 4096;
// The longest site name, in bytes.
inline constexpr std::size_t fault_site_name_bytes_max = 64;

// Whether `name` can name a fault site: 1 to fault_site_name_bytes_max
// letters, digits, '.', '_', '-' or '/'. Names appear in coverage keys and in
// "name=ppm" descriptions, so they hold no spaces and no '='.
bool valid_fault_site_name(std::string_view name) noexcept;

// A fault site: a name and its index in the process-wide registry. The same
// name is the same site wherever it is used. Indices are stable within a
// process only; nothing a run records depends on them.
class FaultSite {
 public:
  // The site named `name` (asserted valid), registered on its first use.
  // Thread-safe; meant to be called once per use site (SEEDPOOL_FAULT_SITE).
  static FaultSite named(std::string_view name);

  // A site whose index the registry reserves: only for the pool's own sites
  // (pool_faults.hpp), so that they are constants. A run asserts that the
  // registry holds `name` at `index`.
  static constexpr FaultSite reserved(std::uint32_t index, std::string_view name) noexcept {
    return FaultSite(index, name);
  }

  constexpr std::uint32_t index() const noexcept { return index_; }
  constexpr std::string_view name() const noexcept { return name_; }

  friend constexpr bool operator==(FaultSite a, FaultSite b) noexcept { return a.index_ == b.index_; }

 private:
  constexpr FaultSite(std::uint32_t index, std::string_view name) noexcept : index_(index), name_(name) {}

  std::uint32_t index_;
  std::string_view name_;  // the registry's copy, or a literal: valid for the whole process
};

// The name the registry holds at `index`; empty when none.
std::string_view fault_site_name(std::uint32_t index);

// A scenario's fault profile: a rate per site name, overriding the rate the
// use site declares (0 switches the site off), and the pool's latency knobs.
// A site the profile does not name runs at its declared rate.
struct FaultOptions {
  Duration startup_min = milliseconds(5);
  Duration startup_max = milliseconds(80);
  Duration startup_tail_max = seconds(20);    // slow_start draws up to this
  Duration reply_latency_max = milliseconds(5);
  Duration slow_reply_max = seconds(10);      // call_slow draws up to this
  Duration slow_shutdown_max = seconds(20);

  // Sets the rate of the site `name` (asserted valid; ppm <= ppm_one).
  void set(std::string_view name, std::uint32_t ppm);
  void set(FaultSite site, std::uint32_t ppm) { set(site.name(), ppm); }

  // The entry of a site, made at rate 0 (off) when missing, for assignment:
  // `profile[pool_faults::call_crash] = 20'000;`. Read with rate().
  std::uint32_t& operator[](FaultSite site) { return entry(site.name()); }
  std::uint32_t& operator[](std::string_view name) { return entry(name); }

  // The profile's rate of `name`, or nullopt when the profile leaves it to
  // the use site.
  std::optional<std::uint32_t> rate(std::string_view name) const noexcept;
  std::optional<std::uint32_t> rate(FaultSite site) const noexcept { return rate(site.name()); }

  // Every (name, ppm) entry, in the order first set.
  const std::vector<std::pair<std::string, std::uint32_t>>& rates() const noexcept { return rates_; }

  // "init_crash=20000 queue.drop_ack=5000" (ppm), in the order first set;
  // "none" when empty.
  std::string describe() const;

  // A copy with the latency knobs and no rates.
  FaultOptions without_rates() const;

 private:
  std::uint32_t& entry(std::string_view name);

  std::vector<std::pair<std::string, std::uint32_t>> rates_;
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

// One candidate of FaultInjector::pick: a site and the rate its use declares.
struct FaultChoice {
  // Implicit, so that pick({pool_faults::init_crash, pool_faults::init_hang})
  // reads as a list of sites.
  constexpr FaultChoice(FaultSite choice, std::uint32_t declared_ppm = 0) noexcept
      : site(choice), ppm(declared_ppm) {}

  FaultSite site;
  std::uint32_t ppm;
};

class FaultInjector {
 public:
  // Draws the run's latency grid (one decision). With `swarm`, each site is
  // switched on or off when the run first meets it (see the file comment).
  // Fired sites are counted into `coverage` as "fault:<name>".
  FaultInjector(SimWorld& world, FaultOptions profile, bool swarm, Coverage& coverage);

  // True when `site` fires now: with the site's rate in this run, `ppm` per
  // million unless the profile names the site, while faults are enabled.
  // One decision when the rate is not 0, none otherwise. Counts and notes a
  // firing. User code writes SEEDPOOL_FAULT.
  bool fire(FaultSite site, std::uint32_t ppm = 0);

  // The position in `choices` of the one site that fires now, or nullopt:
  // sites that exclude one another, each with its own rate, drawn from one
  // decision (the top values of its range go to the first site, the next
  // ones to the second, and so on, so that 0 fires none). Where the rates add
  // up to more than one, the later sites get what is left. Makes no decision
  // when none of them can fire.
  std::optional<std::size_t> pick(std::span<const FaultChoice> choices);
  std::optional<std::size_t> pick(std::initializer_list<FaultChoice> choices) {
    return pick(std::span<const FaultChoice>(choices.begin(), choices.size()));
  }

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

  // How often `site` fired in this run.
  std::uint64_t fired(FaultSite site) const noexcept;
  // The rate of `site` in this run, or nullopt while the run has not met it.
  std::optional<std::uint32_t> rate(FaultSite site) const noexcept;

  // The profile this injector was given.
  const FaultOptions& profile() const noexcept { return profile_; }
  // The sites this run met at a rate above 0, each at its rate in this run,
  // in the order met (the latency knobs are the profile's): the run's faults
  // as a failure report describes them.
  const FaultOptions& in_effect() const noexcept { return in_effect_; }

 private:
  // A site's state in this run, indexed by FaultSite::index.
  struct Site {
    std::string_view name;
    std::uint32_t rate = 0;
    bool met = false;
    std::uint64_t fired = 0;
    std::uint64_t* coverage = nullptr;  // the "fault:<name>" entry, once hit
  };

  Site& meet(FaultSite site, std::uint32_t ppm);
  void settle(Site& state, FaultSite site, std::uint32_t ppm);
  void count_firing(Site& state);

  SimWorld& world_;
  FaultOptions profile_;
  FaultOptions in_effect_;
  bool swarm_;
  bool enabled_ = true;
  Coverage& coverage_;
  std::vector<Site> sites_;
  Grid grid_ = Grid::ns;
};

std::string_view to_string(FaultInjector::Grid grid) noexcept;

// The injector a fault site asks, for SEEDPOOL_FAULT: the injector itself
// here, a ScenarioContext's in scenario.hpp.
inline FaultInjector& fault_injector(FaultInjector& faults) noexcept { return faults; }

}  // namespace seedpool::sim

// The FaultSite named `name` (a string literal), resolved once per use site:
// a function-local static in a lambda of its own.
#define SEEDPOOL_FAULT_SITE(name)                                                                      \
  ([]() -> ::seedpool::sim::FaultSite {                                                                \
    static const ::seedpool::sim::FaultSite seedpool_fault_site_ = ::seedpool::sim::FaultSite::named(name); \
    return seedpool_fault_site_;                                                                       \
  }())

// True when the site `name` fires now: `ppm` per million unless the run's
// profile sets another rate for it, and only while faults are enabled. `ctx`
// is a ScenarioContext or a FaultInjector.
//   if (SEEDPOOL_FAULT(ctx, "queue.drop_ack", 20'000)) { ... }
#define SEEDPOOL_FAULT(ctx, name, ppm) \
  (::seedpool::sim::fault_injector(ctx).fire(SEEDPOOL_FAULT_SITE(name), (ppm)))
