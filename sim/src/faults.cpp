#include <seedpool/core/assert.hpp>
#include <seedpool/sim/faults.hpp>
#include <seedpool/sim/pool_faults.hpp>

#include "name_registry.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace seedpool::sim {
namespace {

// Every site name of the process, each at a fixed index; the pool's sites
// first, at the indices pool_faults.hpp reserves.
detail::NameRegistry& site_registry() {
  static detail::NameRegistry* registry = [] {
    auto* r = new detail::NameRegistry(fault_sites_max);  // never destroyed: used during static init
    for (const FaultSite site : pool_faults::all) {
      const auto [index, name] = r->find_or_add(site.name());
      SEEDPOOL_ASSERT(index == site.index() && name == site.name());
    }
    return r;
  }();
  return *registry;
}

}  // namespace

bool valid_fault_site_name(std::string_view name) noexcept {
  return detail::valid_registered_name(name, fault_site_name_bytes_max);
}

FaultSite FaultSite::named(std::string_view name) {
  SEEDPOOL_ASSERT_MSG(valid_fault_site_name(name), "a fault site name is 1 to 64 of [A-Za-z0-9._/-]");
  const auto [index, stored] = site_registry().find_or_add(name);
  return FaultSite::reserved(index, stored);
}

std::string_view fault_site_name(std::uint32_t index) { return site_registry().name(index); }

std::string_view to_string(FaultInjector::Grid grid) noexcept {
  switch (grid) {
    case FaultInjector::Grid::ns: return "ns";
    case FaultInjector::Grid::us: return "us";
    case FaultInjector::Grid::ms: return "ms";
    case FaultInjector::Grid::at_once: return "at_once";
  }
  return "unknown";
}

void FaultOptions::set(std::string_view name, std::uint32_t ppm) {
  SEEDPOOL_ASSERT(ppm <= ppm_one);
  entry(name) = ppm;
}

std::uint32_t& FaultOptions::entry(std::string_view name) {
  SEEDPOOL_ASSERT_MSG(valid_fault_site_name(name), "a fault site name is 1 to 64 of [A-Za-z0-9._/-]");
  const auto it = std::find_if(rates_.begin(), rates_.end(), [name](const auto& e) { return e.first == name; });
  if (it != rates_.end()) {
    return it->second;
  }
  return rates_.emplace_back(std::string(name), 0).second;
}

std::optional<std::uint32_t> FaultOptions::rate(std::string_view name) const noexcept {
  const auto it = std::find_if(rates_.begin(), rates_.end(), [name](const auto& e) { return e.first == name; });
  return it == rates_.end() ? std::nullopt : std::optional<std::uint32_t>(it->second);
}

std::string FaultOptions::describe() const {
  std::string out;
  for (const auto& [name, ppm] : rates_) {
    out += fmt::format("{}{}={}", out.empty() ? "" : " ", name, ppm);
  }
  return out.empty() ? "none" : out;
}

FaultOptions FaultOptions::without_rates() const {
  FaultOptions copy = *this;
  copy.rates_.clear();
  return copy;
}

FaultInjector::FaultInjector(SimWorld& world, FaultOptions profile, bool swarm, Coverage& coverage)
    : world_(world),
      profile_(std::move(profile)),
      in_effect_(profile_.without_rates()),
      swarm_(swarm),
      coverage_(coverage) {
  grid_ = static_cast<Grid>(world_.decide(grid_count));
  increment(coverage, fmt::format("grid:{}", to_string(grid_)));
}

FaultInjector::Site& FaultInjector::meet(FaultSite site, std::uint32_t ppm) {
  const std::size_t index = site.index();
  if (index >= sites_.size()) {
    SEEDPOOL_ASSERT(index < fault_sites_max);
    sites_.resize(index + 1);
  }
  Site& state = sites_[index];
  if (!state.met) {
    settle(state, site, ppm);
  }
  return state;
}

// The site's rate for the whole run, settled when the run first meets it:
// the profile's rate or the declared one, and in swarm mode on (decision 1)
// or off (0) at a rate drawn from [1, that rate].
void FaultInjector::settle(Site& state, FaultSite site, std::uint32_t ppm) {
  SEEDPOOL_ASSERT_MSG(fault_site_name(site.index()) == site.name(), "a FaultSite the registry does not hold");
  const std::uint32_t base = profile_.rate(site.name()).value_or(ppm);
  SEEDPOOL_ASSERT(base <= ppm_one);
  std::uint32_t rate = base;
  if (swarm_) {
    const bool on = base != 0 && world_.decide(2) == 1;
    rate = on ? static_cast<std::uint32_t>(1 + world_.decide(base)) : 0;
  }
  state.name = site.name();
  state.rate = rate;
  state.met = true;
  if (rate != 0) {
    in_effect_.set(site.name(), rate);
  }
}

void FaultInjector::count_firing(Site& state) {
  if (state.coverage == nullptr) {
    state.coverage = &coverage_.try_emplace(fmt::format("fault:{}", state.name), 0).first->second;
  }
  ++*state.coverage;
  ++state.fired;
  world_.note(state.name, 1);
}

bool FaultInjector::fire(FaultSite site, std::uint32_t ppm) {
  if (!enabled_) {
    return false;
  }
  Site& state = meet(site, ppm);
  if (state.rate == 0) {
    return false;
  }
  // The top `rate` values fire, so the default decision 0 never does.
  const bool fired = world_.decide(ppm_one) >= ppm_one - state.rate;
  if (fired) {
    count_firing(state);
  }
  return fired;
}

std::optional<std::size_t> FaultInjector::pick(std::span<const FaultChoice> choices) {
  if (!enabled_) {
    return std::nullopt;
  }
  std::uint64_t total = 0;
  for (const FaultChoice& choice : choices) {
    total += meet(choice.site, choice.ppm).rate;
  }
  if (total == 0) {
    return std::nullopt;
  }
  const std::uint64_t value = world_.decide(ppm_one);
  std::uint64_t upper = ppm_one;  // the sites before this one took [upper, ppm_one)
  for (std::size_t i = 0; i < choices.size(); ++i) {
    Site& state = sites_[choices[i].site.index()];
    const std::uint64_t ppm = std::min<std::uint64_t>(state.rate, upper);
    if (value >= upper - ppm) {
      if (ppm == 0) {
        break;  // value lies in a range no site claims
      }
      count_firing(state);
      return i;
    }
    upper -= ppm;
  }
  return std::nullopt;
}

std::uint64_t FaultInjector::fired(FaultSite site) const noexcept {
  return site.index() < sites_.size() ? sites_[site.index()].fired : 0;
}

std::optional<std::uint32_t> FaultInjector::rate(FaultSite site) const noexcept {
  if (site.index() >= sites_.size() || !sites_[site.index()].met) {
    return std::nullopt;
  }
  return sites_[site.index()].rate;
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

}  // namespace seedpool::sim
