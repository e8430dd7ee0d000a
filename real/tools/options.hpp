#pragma once

// The command line of `seedpool run`, parsed into a PoolConfig and a job.

#include <seedpool/core/pool.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace seedpool::tool {

struct LoadSpec {
  std::uint64_t calls = 0;        // 0: no generated load; read payloads from stdin
  std::uint64_t concurrency = 8;  // callers making calls at once
  std::string payload = R"({"handler": "echo", "args": {"n": 1}})";
};

struct RunOptions {
  PoolConfig pool;
  CheckoutOptions kind;           // anonymous or affinity
  LoadSpec load;
  std::uint64_t concurrency = 0;  // stdin mode: calls in flight (default: the pool's size.max)
  std::string metrics_path;       // Prometheus text, rewritten every metrics_interval
  Duration metrics_interval = seconds(5);
  bool status_line = false;       // a live status line on stderr
  bool quiet_workers = false;     // do not forward worker stderr
};

// Parses "calls=100000,concurrency=32[,payload=TEXT]"; errors name the bad key.
Result<LoadSpec> parse_load(const std::string& text);

}  // namespace seedpool::tool
