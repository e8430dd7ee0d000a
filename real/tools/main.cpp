// seedpool: run a real pool of worker processes from the command line.
//
//   seedpool run --workers 4 -- python3 workers/python/examples/math_worker.py < payloads.jsonl
//   seedpool run --workers 8 --load calls=100000,concurrency=32 -- build/bin/seedpool-echo-worker
//
// Payloads come from stdin, one per line, and replies go to stdout in the
// same order (a failed call prints "ERROR <code>: <message>"); or --load
// generates calls. On exit it prints the pool's statistics to stderr.
// Exit status: 0 every call succeeded, 1 a call or the pool failed, 2 bad
// command line (an unknown option, or a value outside its range: see
// options.hpp), 128 + N after signal N. SIGINT, SIGTERM or SIGHUP (the
// terminal went away) shuts the pool down cleanly in every phase (while it
// starts, while stdin is idle, under load): calls in flight get
// --shutdown-grace-ms to finish.

#include "jobs.hpp"
#include "options.hpp"
#include "say.hpp"

#include <seedpool/real/real_world.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <optional>
#include <pthread.h>
#include <string>
#include <system_error>

namespace {

// Descriptors 0, 1 and 2 that are closed are held by /dev/null, so that none
// of the command's own descriptors (a worker's pipe, the epoll set) takes
// their number and gets read as stdin or written as output. Returns which
// were closed.
std::array<bool, 3> hold_standard_descriptors() {
  std::array<bool, 3> closed{};
  for (int fd = 0; fd < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      closed[static_cast<std::size_t>(fd)] = true;
      // The lowest free descriptor: fd itself, as those below it are open.
      static_cast<void>(::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY));
    }
  }
  return closed;
}

}  // namespace

int main(int argc, char** argv) {
  const std::array<bool, 3> closed = hold_standard_descriptors();
  CLI::App app{"seedpool: a pool of external worker processes"};
  app.require_subcommand(1);
  auto* run = app.add_subcommand("run", "start a pool, send it calls, print the results and the statistics");
  seedpool::tool::RunArguments arguments;
  seedpool::tool::add_run_options(*run, arguments);
  if (std::optional<std::string> misused = seedpool::tool::misused_option(*run, argc, argv)) {
    seedpool::tool::say("seedpool run: {}\n", *misused);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    return status == 0 ? 0 : 2;
  }
  seedpool::Result<seedpool::tool::RunOptions> options = seedpool::tool::finish_run_options(*run, arguments);
  if (!options) {
    seedpool::tool::say("seedpool run: {}\n", options.error().message);
    return 2;
  }
  if (options.value().load.calls == 0 && closed[0]) {
    seedpool::tool::say("seedpool run: stdin is closed: give the payloads on stdin, one per line, or generate calls "
                        "with --load\n");
    return 2;
  }
  if (options.value().load.calls == 0 && closed[1]) {
    seedpool::tool::say("seedpool run: stdout is closed, so the answers would be lost: redirect it (to /dev/null "
                        "to drop them)\n");
    return 2;
  }

  // SIGINT, SIGTERM and SIGHUP are taken by one thread (every other thread,
  // the World's included, inherits the blocked mask) and shut the pool down;
  // SIGUSR2 only tells that thread to end.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  sigaddset(&stop_signals, SIGUSR2);  // sent by run_pool to end the watcher
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    seedpool::real::RealWorld world;
    return seedpool::tool::run_pool(world, options.value(), stop_signals);
  } catch (const std::system_error& e) {
    // The RealWorld's own descriptors or I/O thread were refused.
    seedpool::tool::say("seedpool: cannot start: {}\n", e.what());
    return 1;
  }
}
