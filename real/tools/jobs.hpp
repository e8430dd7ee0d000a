#pragma once

// What `seedpool run` does once its options are parsed: start the pool, feed
// it calls from stdin or from a load generator, report, shut down.

#include "options.hpp"

#include <seedpool/core/world.hpp>

#include <csignal>

namespace seedpool::tool {

// Returns the process exit status. `stop_signals` are blocked in every
// thread; a watcher thread takes them and shuts the pool down.
int run_pool(World& world, const RunOptions& options, const sigset_t& stop_signals);

}  // namespace seedpool::tool
