// seedpool: run a real pool of worker processes from the command line.
//
//   seedpool run --workers 4 -- python3 workers/python/examples/math_worker.py < payloads.jsonl
//   seedpool run --workers 8 --load calls=100000,concurrency=32 -- build/bin/seedpool-echo-worker
//
// Payloads come from stdin, one per line, and replies go to stdout in the
// same order (a failed call prints "ERROR <code>: <message>"); or --load
// generates calls. On exit it prints the pool's statistics to stderr.
// Exit status: 0 every call succeeded, 1 a call or the pool failed, 2 bad
// command line. SIGINT or SIGTERM shuts the pool down cleanly.

#include "jobs.hpp"
#include "options.hpp"

#include <seedpool/real/real_world.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <csignal>
#include <pthread.h>
#include <thread>

namespace {

using namespace seedpool;

void add_pool_options(CLI::App& run, tool::RunOptions& o, std::vector<std::string>& command, std::string& init,
                      std::string& kind, std::string& load, std::int64_t (&ms)[7], std::size_t& max,
                      std::size_t& min_ready) {
  run.add_option("--workers", o.pool.size.min, "workers kept running (and started eagerly)")
      ->required()
      ->check(CLI::Range(1, 4096));
  run.add_option("--max", max, "grow up to this many workers on demand (default: --workers)");
  run.add_option("--min-ready", min_ready, "start waits for this many ready workers (default: --workers)");
  run.add_option("--init", init, "eager | lazy");
  run.add_option("--init-timeout-ms", ms[0], "per-worker launch + init handshake deadline");
  run.add_option("--checkout-timeout-ms", ms[1], "default checkout deadline");
  run.add_option("--call-timeout-ms", ms[2], "default call deadline");
  run.add_option("--health-interval-ms", ms[3], "ping idle workers this often (0: never)");
  run.add_option("--max-lifetime-ms", ms[4], "recycle workers after this long (0: never)");
  run.add_option("--shutdown-grace-ms", ms[5], "time leases get to finish at shutdown");
  run.add_option("--metrics-interval-ms", ms[6], "how often --metrics is rewritten");
  run.add_option("--max-calls", o.pool.max_calls, "recycle a worker after this many calls (0: never)");
  run.add_option("--kind", kind, "checkout kind: anonymous | affinity:KEY | affinity-strict:KEY");
  run.add_option("--load", load, "generate calls: calls=N,concurrency=C[,payload=TEXT]");
  run.add_option("--concurrency", o.concurrency, "stdin mode: calls in flight (default: the pool's maximum size)");
  run.add_option("--metrics", o.metrics_path, "write Prometheus text to FILE periodically");
  run.add_flag("--status", o.status_line, "show a live status line on stderr");
  run.add_flag("--quiet-workers", o.quiet_workers, "do not forward the workers' stderr");
  run.add_option("command", command, "-- PROGRAM ARGS...")->required();
}

// Turns the parsed strings into the RunOptions; false with a message on bad input.
bool finish_options(tool::RunOptions& o, const std::vector<std::string>& command, const std::string& init,
                    const std::string& kind, const std::string& load, const std::int64_t (&ms)[7],
                    std::size_t max, std::size_t min_ready) {
  o.pool.name = "seedpool";
  o.pool.command.program = command.front();
  o.pool.command.args.assign(command.begin() + 1, command.end());
  o.pool.size.max = max == 0 ? o.pool.size.min : max;
  o.pool.min_ready = min_ready == 0 ? o.pool.size.min : min_ready;
  Duration* durations[] = {&o.pool.init_timeout,    &o.pool.checkout_timeout, &o.pool.call_timeout,
                           &o.pool.health_interval, &o.pool.max_lifetime,     &o.pool.shutdown_grace,
                           &o.metrics_interval};
  for (std::size_t i = 0; i < 7; ++i) {
    if (ms[i] >= 0) {
      *durations[i] = milliseconds(ms[i]);
    }
  }
  auto fail = [](const Error& e) {
    fmt::print(stderr, "seedpool: {}\n", e.message);
    return false;
  };
  if (!init.empty()) {
    auto mode = parse_init_mode(init);
    if (!mode) return fail(mode.error());
    o.pool.init = mode.value();
  }
  if (!kind.empty()) {
    auto parsed = parse_checkout_kind(kind);
    if (!parsed) return fail(parsed.error());
    o.kind = parsed.value();
  }
  if (!load.empty()) {
    auto parsed = tool::parse_load(load);
    if (!parsed) return fail(parsed.error());
    o.load = parsed.value();
  }
  if (Status valid = o.pool.validate(); !valid) return fail(valid.error());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"seedpool: a pool of external worker processes"};
  app.require_subcommand(1);
  auto* run = app.add_subcommand("run", "start a pool, send it calls, print the results and the statistics");
  tool::RunOptions options;
  std::vector<std::string> command;
  std::string init, kind, load;
  std::int64_t ms[7] = {-1, -1, -1, -1, -1, -1, -1};
  std::size_t max = 0;
  std::size_t min_ready = 0;
  add_pool_options(*run, options, command, init, kind, load, ms, max, min_ready);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    return status == 0 ? 0 : 2;
  }
  if (!finish_options(options, command, init, kind, load, ms, max, min_ready)) {
    return 2;
  }

  // SIGINT and SIGTERM are taken by one thread (every other thread, the
  // World's included, inherits the blocked mask) and shut the pool down;
  // SIGUSR2 only tells that thread to end.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGUSR2);  // sent by run_pool to end the watcher
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  seedpool::real::RealWorld world;
  return tool::run_pool(world, options, stop_signals);
}
