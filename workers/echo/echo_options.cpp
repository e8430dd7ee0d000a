#include "echo_options.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <string_view>
#include <system_error>

namespace seedpool::echo {
namespace {

// Bounds on flag values. Call numbers and byte counts are capped so that a
// typo cannot ask for an effectively infinite amount of junk; delays are
// capped at a day because a longer one is better expressed as --hang-*.
constexpr std::uint64_t kCallNumberMax = 1'000'000'000'000;
constexpr std::uint64_t kDelayMsMax = 86'400'000;
constexpr std::uint64_t kStderrBytesMax = 1ull << 30;
constexpr std::uint64_t kExitCodeMax = 255;

struct ValueFlag {
  std::string_view name;
  std::optional<std::uint64_t> Options::*field;
  std::uint64_t min;
  std::uint64_t max;
};

struct SwitchFlag {
  std::string_view name;
  bool Options::*field;
};

constexpr std::array kValueFlags{
    ValueFlag{"--crash-after", &Options::crash_after, 1, kCallNumberMax},
    ValueFlag{"--hang-after", &Options::hang_after, 1, kCallNumberMax},
    ValueFlag{"--garbage-after", &Options::garbage_after, 1, kCallNumberMax},
    ValueFlag{"--truncate-after", &Options::truncate_after, 1, kCallNumberMax},
    ValueFlag{"--wrong-id-after", &Options::wrong_id_after, 1, kCallNumberMax},
    ValueFlag{"--reply-delay-ms", &Options::reply_delay_ms, 0, kDelayMsMax},
    ValueFlag{"--slow-init", &Options::slow_init_ms, 0, kDelayMsMax},
    ValueFlag{"--exit-on-init", &Options::exit_on_init, 0, kExitCodeMax},
    ValueFlag{"--stderr-bytes", &Options::stderr_bytes, 0, kStderrBytesMax},
};

constexpr std::array kSwitchFlags{
    SwitchFlag{"--ignore-term", &Options::ignore_term},
    SwitchFlag{"--hang-init", &Options::hang_init},
    SwitchFlag{"--fail-init", &Options::fail_init},
    SwitchFlag{"--no-pong", &Options::no_pong},
    SwitchFlag{"--close-stdin", &Options::close_stdin},
    SwitchFlag{"--fork-grandchild", &Options::fork_grandchild},
    SwitchFlag{"--help", &Options::help},
};

Error invalid(std::string message) {
  return Error{ErrorCode::invalid_argument, fmt::format("{} (see --help)", message), {}};
}

Result<std::uint64_t> parse_value(const ValueFlag& flag, std::string_view text) {
  std::uint64_t value = 0;
  const char* const end = text.data() + text.size();
  const auto [stop, failure] = std::from_chars(text.data(), end, value);
  if (text.empty() || failure == std::errc::invalid_argument || stop != end) {
    return invalid(fmt::format("{}: '{}' is not an unsigned integer", flag.name, text));
  }
  if (failure == std::errc::result_out_of_range || value < flag.min || value > flag.max) {
    return invalid(fmt::format("{}: {} is outside {}..{}", flag.name, text, flag.min, flag.max));
  }
  return value;
}

// Applies one flag starting at args[index]; advances index past its value
// when the value is the next argument.
Status apply_flag(const std::vector<std::string>& args, std::size_t& index, Options& options) {
  const std::string_view arg = args[index];
  const std::size_t equals = arg.find('=');
  const std::string_view name = arg.substr(0, equals);
  for (const SwitchFlag& flag : kSwitchFlags) {
    if (flag.name == name) {
      if (equals != std::string_view::npos) {
        return invalid(fmt::format("{} takes no value, got '{}'", flag.name, arg));
      }
      options.*flag.field = true;
      return {};
    }
  }
  for (const ValueFlag& flag : kValueFlags) {
    if (flag.name != name) {
      continue;
    }
    std::string_view text;
    if (equals != std::string_view::npos) {
      text = arg.substr(equals + 1);
    } else if (index + 1 < args.size()) {
      text = args[++index];
    } else {
      return invalid(fmt::format("{} needs a value", flag.name));
    }
    Result<std::uint64_t> value = parse_value(flag, text);
    if (!value) {
      return value.error();
    }
    options.*flag.field = value.value();
    return {};
  }
  if (name == "-h") {
    options.help = true;
    return {};
  }
  return invalid(fmt::format("unknown argument '{}'", arg));
}

}  // namespace

Result<Options> parse_options(const std::vector<std::string>& args) {
  Options options;
  for (std::size_t index = 0; index < args.size(); ++index) {
    if (Status applied = apply_flag(args, index, options); !applied) {
      return applied.error();
    }
  }
  return options;
}

std::string usage_text() {
  return R"(usage: seedpool-echo-worker [FLAGS]

A seedpool worker (docs/protocol.md) that answers every call with its own
payload. Without flags it is well behaved; each flag makes it misbehave in
one way so that the pool's handling of that fault can be tested.

Calls are counted from 1; "call N" is the N-th call to arrive.
  --crash-after N      on call N: write a traceback to stderr, exit 1, no reply
  --hang-after N       from call N on: answer nothing, pings included
  --garbage-after N    on call N: write non-frame bytes to stdout instead of the reply
  --truncate-after N   on call N: write half of the reply frame, then exit 3
  --wrong-id-after N   on call N: reply with request id + 1
  --reply-delay-ms MS  sleep MS milliseconds before every reply
  --slow-init MS       sleep MS milliseconds before answering init
  --hang-init          never answer init
  --fail-init          answer init with an error frame, then exit 1
  --exit-on-init CODE  exit with CODE (0..255) when init arrives, without answering
  --no-pong            never answer pings
  --ignore-term        ignore SIGTERM (only SIGKILL ends the worker)
  --stderr-bytes N     write N bytes of junk, invalid UTF-8 included, to stderr at start
  --close-stdin        close stdin right after ready, then wait for a signal
  --fork-grandchild    fork a child that sleeps forever in this process group
  --help, -h           print this text

Exit codes: 0 shutdown frame, SIGTERM or stdin closed; 1 crashed on purpose;
2 bad flags or an unacceptable init; 3 truncated on purpose; 4 the bytes on
stdin broke the protocol; 5 reading stdin or writing stdout failed.
)";
}

}  // namespace seedpool::echo
