#pragma once

// The command line of seedpool-echo-worker: which misbehaviour, if any, it
// should show. Parsing is by hand so that the worker links nothing but
// seedpool::core (CLI11 is only found when the simulator is built).

#include <seedpool/core/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace seedpool::echo {

// Exit codes, part of the command's contract (printed by --help).
inline constexpr int kExitOk = 0;         // shutdown frame, SIGTERM, or stdin closed by the pool
inline constexpr int kExitCrashed = 1;    // --crash-after, --fail-init
inline constexpr int kExitUsage = 2;      // bad flags, or an init this worker cannot accept
inline constexpr int kExitTruncated = 3;  // --truncate-after
inline constexpr int kExitProtocol = 4;   // the bytes on stdin broke the frame protocol
inline constexpr int kExitIo = 5;         // reading stdin or writing stdout failed

// Calls are counted from 1 in the order they arrive. A "call number" flag
// makes exactly that call misbehave (the N-th call, not the one after N
// answered calls); an absent flag never fires.
struct Options {
  std::optional<std::uint64_t> crash_after;     // exit 1 with a traceback on stderr, no reply
  std::optional<std::uint64_t> hang_after;      // from this call on, answer nothing (pings neither)
  std::optional<std::uint64_t> garbage_after;   // non-frame bytes on stdout instead of this reply
  std::optional<std::uint64_t> truncate_after;  // half of this reply's frame, then exit 3
  std::optional<std::uint64_t> wrong_id_after;  // this reply carries request id + 1
  std::optional<std::uint64_t> reply_delay_ms;  // sleep before every reply
  std::optional<std::uint64_t> slow_init_ms;    // sleep before answering init
  std::optional<std::uint64_t> exit_on_init;    // exit with this code when init arrives
  std::optional<std::uint64_t> stderr_bytes;    // junk (invalid UTF-8 too) on stderr at start
  bool ignore_term = false;      // SIGTERM is ignored; only SIGKILL ends the worker
  bool hang_init = false;        // never answer init
  bool fail_init = false;        // answer init with an error frame, then exit 1
  bool no_pong = false;          // never answer pings
  bool close_stdin = false;      // close fd 0 right after ready, then wait for a signal
  bool fork_grandchild = false;  // fork a child that sleeps forever in this process group
  bool help = false;             // print the usage text and exit 0
};

// Parses argv[1..]. Flags take their value as the next argument or after '='
// (--crash-after 3, --crash-after=3). Fails with invalid_argument naming the
// flag and what was wrong with it.
Result<Options> parse_options(const std::vector<std::string>& args);

// The --help text: every flag, what it does, and the exit codes.
std::string usage_text();

}  // namespace seedpool::echo
