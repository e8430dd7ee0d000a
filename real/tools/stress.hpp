#pragma once

// The stress test behind seedpool-stress (see stress_main.cpp).

#include <seedpool/core/world.hpp>

#include <cstdint>
#include <string>

namespace seedpool::tool {

struct StressOptions {
  std::string echo_worker;
  std::int64_t seconds = 60;
  std::uint32_t callers = 32;
  std::uint32_t workers = 8;
  std::uint64_t seed = 1;
};

struct StressResult {
  bool found = false;
  std::string kind;     // the invariant, as the simulator names it
  std::string message;
  double seconds = 0;   // from the start to the first violation (or the whole run)
  std::uint64_t calls = 0;
};

StressResult run_stress(World& world, const StressOptions& options);

std::string json_escape(const std::string& text);

}  // namespace seedpool::tool
