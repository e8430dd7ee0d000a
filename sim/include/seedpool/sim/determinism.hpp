#pragma once

// Determinism as a checked property: the same seed must give the same run.
// A hidden source of nondeterminism (an address used as a key, a wall clock,
// an unseeded generator) shows up here as the first event where two runs of
// one seed part ways.

#include <seedpool/sim/sim_world.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace seedpool::sim {

struct DeterminismReport {
  bool deterministic = true;
  std::uint64_t first_hash = 0;
  std::uint64_t second_hash = 0;
  // When not deterministic: the index of the first differing event and both
  // versions of it, readable.
  std::size_t divergence_index = 0;
  std::string first_event;
  std::string second_event;

  std::string describe() const;
};

// Runs `body` twice under `config` (events kept) and compares the traces.
DeterminismReport check_determinism(const SimConfig& config, const std::function<void(SimWorld&)>& body);

// Compares two finished runs' traces; both must have kept their events.
DeterminismReport compare_runs(const RunResult& first, const RunResult& second);

}  // namespace seedpool::sim
