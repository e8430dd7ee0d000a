#include "options.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <charconv>
#include <map>

namespace seedpool::tool {
namespace {

Error invalid(std::string message) { return Error{ErrorCode::invalid_argument, std::move(message), {}}; }

Error bad_load(const std::string& text, std::string_view why) {
  return invalid(fmt::format("invalid --load '{}': {}; expected calls=N,concurrency=C[,payload=TEXT]", text, why));
}

// An option that takes an integer, and where its value goes.
struct IntegerOption {
  IntegerRule rule;
  std::string_view help;
  void (*apply)(RunOptions&, std::uint64_t);
};

Duration ms(std::uint64_t n) { return milliseconds(static_cast<std::int64_t>(n)); }

// Every integer option. The largest millisecond bound fits an int64 of
// nanoseconds many times over.
const IntegerOption integer_options[] = {
    {{"--workers", 1, workers_max, "workers"},
     "workers kept running (and started eagerly)",
     [](RunOptions& o, std::uint64_t n) { o.pool.size.min = n; }},
    {{"--max", 1, workers_max, "workers"},
     "grow up to this many workers on demand (default: --workers)",
     [](RunOptions& o, std::uint64_t n) { o.pool.size.max = n; }},
    {{"--min-ready", 1, workers_max, "workers"},
     "start waits for this many ready workers (default: --workers)",
     [](RunOptions& o, std::uint64_t n) { o.pool.min_ready = n; }},
    {{"--init-timeout-ms", 1, interval_ms_max, "milliseconds"},
     "per-worker launch + init handshake deadline",
     [](RunOptions& o, std::uint64_t n) { o.pool.init_timeout = ms(n); }},
    {{"--checkout-timeout-ms", 1, interval_ms_max, "milliseconds"},
     "default checkout deadline",
     [](RunOptions& o, std::uint64_t n) { o.pool.checkout_timeout = ms(n); }},
    {{"--call-timeout-ms", 1, interval_ms_max, "milliseconds"},
     "default call deadline",
     [](RunOptions& o, std::uint64_t n) { o.pool.call_timeout = ms(n); }},
    {{"--health-interval-ms", 0, interval_ms_max, "milliseconds"},
     "ping idle workers this often (0: never)",
     [](RunOptions& o, std::uint64_t n) { o.pool.health_interval = ms(n); }},
    {{"--max-lifetime-ms", 0, lifetime_ms_max, "milliseconds"},
     "recycle workers after this long (0: never)",
     [](RunOptions& o, std::uint64_t n) { o.pool.max_lifetime = ms(n); }},
    {{"--shutdown-grace-ms", 0, shutdown_grace_ms_max, "milliseconds"},
     "time leases get to finish at shutdown",
     [](RunOptions& o, std::uint64_t n) { o.pool.shutdown_grace = ms(n); }},
    {{"--ready-exit-window-ms", 0, interval_ms_max, "milliseconds"},
     "an exit this soon after ready is a failed start: its slot backs off, the breaker counts it (0: none)",
     [](RunOptions& o, std::uint64_t n) { o.pool.ready_exit_window = ms(n); }},
    {{"--metrics-interval-ms", metrics_interval_ms_min, interval_ms_max, "milliseconds"},
     "how often --metrics is rewritten",
     [](RunOptions& o, std::uint64_t n) { o.metrics_interval = ms(n); }},
    {{"--max-calls", 0, calls_max, "calls"},
     "recycle a worker after this many calls (0: never)",
     [](RunOptions& o, std::uint64_t n) { o.pool.max_calls = n; }},
    {{"--concurrency", 1, concurrency_max, "callers"},
     "stdin mode: calls in flight, one thread each (default: --max)",
     [](RunOptions& o, std::uint64_t n) { o.concurrency = n; }},
};

struct TextOption {
  std::string_view name;
  std::string_view help;
};

const TextOption text_options[] = {
    {"--init", "eager | lazy"},
    {"--kind", "checkout kind: anonymous | affinity:KEY | affinity-strict:KEY"},
    {"--load", "generate calls: calls=N,concurrency=C[,payload=TEXT]"},
    {"--metrics", "write Prometheus text to FILE periodically"},
};

bool given(const CLI::App& run, std::string_view name) { return run.count(std::string(name)) > 0; }

// The text options, checked when given: an empty value is an error too.
Status apply_text_options(const CLI::App& run, const RunArguments& arguments, RunOptions& o) {
  const auto text = [&](std::string_view name) -> const std::string& { return arguments.values.find(name)->second; };
  if (given(run, "--init")) {
    Result<InitMode> mode = parse_init_mode(text("--init"));
    if (!mode) return mode.error();
    o.pool.init = mode.value();
  }
  if (given(run, "--kind")) {
    Result<CheckoutOptions> kind = parse_checkout_kind(text("--kind"));
    if (!kind) return kind.error();
    o.kind = kind.value();
  }
  if (given(run, "--load")) {
    Result<LoadSpec> load = parse_load(text("--load"));
    if (!load) return load.error();
    o.load = load.value();
  }
  if (given(run, "--metrics")) {
    if (text("--metrics").empty()) {
      return invalid("--metrics: a file path is required");
    }
    o.metrics_path = text("--metrics");
  }
  return {};
}

// What PoolConfig::validate would also refuse, said in the options' terms.
Status check_sizes(const CLI::App& run, const RunOptions& o) {
  if (o.pool.size.max < o.pool.size.min) {
    return invalid(fmt::format("--max {} is below --workers {}", o.pool.size.max, o.pool.size.min));
  }
  if (given(run, "--concurrency") && o.load.calls > 0) {
    return invalid(fmt::format("--concurrency is for calls read from stdin; with --load, give concurrency=C in it "
                               "(--load calls={},concurrency={})",
                               o.load.calls, o.concurrency));
  }
  if (given(run, "--min-ready") && o.pool.init == InitMode::eager && o.pool.min_ready > o.pool.size.min) {
    return invalid(fmt::format("--min-ready {} exceeds --workers {} (an eager start launches --workers workers)",
                               o.pool.min_ready, o.pool.size.min));
  }
  return {};
}

}  // namespace

Result<std::uint64_t> parse_integer(const IntegerRule& rule, std::string_view text) {
  const std::string expected =
      fmt::format("expected an integer from {} to {} ({})", rule.min, rule.max, rule.unit);
  if (text.empty()) {
    return invalid(fmt::format("{}: a value is required; {}", rule.name, expected));
  }
  std::uint64_t value = 0;
  const char* const end = text.data() + text.size();
  const bool negative = text.front() == '-';
  const auto [stop, ec] = std::from_chars(text.data() + (negative ? 1 : 0), end, value);
  if (stop != end || ec == std::errc::invalid_argument) {
    return invalid(fmt::format("{} '{}' is not a decimal integer; {}", rule.name, text, expected));
  }
  if (negative || ec == std::errc::result_out_of_range || value < rule.min || value > rule.max) {
    return invalid(fmt::format("{} '{}' is out of range; {}", rule.name, text, expected));
  }
  return value;
}

Result<LoadSpec> parse_load(const std::string& text) {
  if (text.empty()) {
    return bad_load(text, "the spec is empty");
  }
  LoadSpec spec;
  bool calls_given = false;
  bool concurrency_given = false;
  std::string_view rest = text;
  while (!rest.empty()) {
    // payload= takes the rest of the text: a JSON payload contains commas.
    if (rest.starts_with("payload=")) {
      spec.payload = std::string(rest.substr(8));
      break;
    }
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return bad_load(text, fmt::format("'{}' is not KEY=VALUE", item));
    }
    const std::string_view key = item.substr(0, eq);
    const IntegerRule calls{"calls", 1, calls_max, "calls"};
    const IntegerRule concurrency{"concurrency", 1, concurrency_max, "callers"};
    if (key != calls.name && key != concurrency.name) {
      return bad_load(text, fmt::format("unknown key '{}'", key));
    }
    bool& seen = key == calls.name ? calls_given : concurrency_given;
    if (seen) {
      return bad_load(text, fmt::format("'{}' is given twice", key));
    }
    seen = true;
    Result<std::uint64_t> number = parse_integer(key == calls.name ? calls : concurrency, item.substr(eq + 1));
    if (!number) {
      return bad_load(text, number.error().message);
    }
    (key == calls.name ? spec.calls : spec.concurrency) = number.value();
  }
  if (spec.calls == 0) {
    return bad_load(text, "calls=N is required");
  }
  return spec;
}

void add_run_options(CLI::App& run, RunArguments& arguments) {
  for (const IntegerOption& option : integer_options) {
    const std::string name(option.rule.name);
    CLI::Option* added =
        run.add_option(name, arguments.values[name],
                       fmt::format("{} [{}..{} {}]", option.help, option.rule.min, option.rule.max, option.rule.unit))
            ->type_name("INT");
    if (name == "--workers") {
      added->required();
    }
  }
  for (const TextOption& option : text_options) {
    const std::string name(option.name);
    std::string help(option.help);
    if (name == "--load") {
      help += fmt::format(" [calls 1..{}, concurrency 1..{}, default 8]", calls_max, concurrency_max);
    }
    run.add_option(name, arguments.values[name], help)->type_name(name == "--metrics" ? "FILE" : "TEXT");
  }
  run.add_flag("--status", arguments.status_line, "show a live status line on stderr");
  run.add_flag("--quiet-workers", arguments.quiet_workers, "do not forward the workers' stderr");
  run.add_option("command", arguments.command, "-- PROGRAM ARGS...")->required();
}

std::optional<std::string> misused_option(const CLI::App& run, int argc, const char* const* argv) {
  int at = 1;
  while (at < argc && std::string_view(argv[at]) != run.get_name()) {
    ++at;
  }
  std::map<const CLI::Option*, std::string_view> values;  // of the options with a value seen so far
  for (++at; at < argc; ++at) {
    const std::string_view word = argv[at];
    if (word == "--") {
      break;
    }
    if (word.size() < 2 || word.front() != '-') {
      continue;  // the program, before a "--" the user left out
    }
    const std::size_t equals = word.find('=');
    const std::string name(word.substr(0, equals));
    if (name == "-h" || name == "--help") {
      continue;
    }
    const CLI::Option* option = run.get_option_no_throw(name);
    if (option == nullptr) {
      return fmt::format("unknown option '{}' (see seedpool run --help)", name);
    }
    if (option->get_items_expected_max() == 0) {
      continue;  // a flag: giving it twice says the same
    }
    std::string_view value;
    if (equals != std::string_view::npos) {
      value = word.substr(equals + 1);
    } else if (at + 1 < argc) {
      value = argv[++at];  // its value, which may begin with '-'
    }
    if (const auto seen = values.find(option); seen != values.end()) {
      return fmt::format("{} is given twice ('{}' and '{}'); give it once", name, seen->second, value);
    }
    values.emplace(option, value);
  }
  return std::nullopt;
}

Result<RunOptions> finish_run_options(const CLI::App& run, const RunArguments& arguments) {
  RunOptions o;
  o.pool.name = "seedpool";
  o.pool.command.program = arguments.command.front();
  o.pool.command.args.assign(arguments.command.begin() + 1, arguments.command.end());
  o.status_line = arguments.status_line;
  o.quiet_workers = arguments.quiet_workers;
  for (const IntegerOption& option : integer_options) {
    if (!given(run, option.rule.name)) {
      continue;
    }
    Result<std::uint64_t> value = parse_integer(option.rule, arguments.values.find(option.rule.name)->second);
    if (!value) {
      return value.error();
    }
    option.apply(o, value.value());
  }
  if (!given(run, "--max")) {
    o.pool.size.max = o.pool.size.min;
  }
  if (!given(run, "--min-ready")) {
    o.pool.min_ready = o.pool.size.min;
  }
  if (Status text = apply_text_options(run, arguments, o); !text) {
    return text.error();
  }
  if (Status sizes = check_sizes(run, o); !sizes) {
    return sizes.error();
  }
  if (Status valid = o.pool.validate(); !valid) {
    return valid.error();
  }
  return o;
}

}  // namespace seedpool::tool
