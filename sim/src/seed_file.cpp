#include <seedpool/core/assert.hpp>
#include <seedpool/sim/seed_file.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>
#include <utility>

namespace seedpool::sim {
namespace {

using nlohmann::json;

Error bad_file(std::string_view why) {
  return Error{ErrorCode::invalid_argument, fmt::format("malformed seed file: {}", why), {}};
}

std::string hex(std::uint64_t value) { return fmt::format("{:016x}", value); }

// The switches of SyncSwitches by their names in a seed file's "sync".
constexpr std::array<std::pair<const char*, bool SyncSwitches::*>, 3> sync_switches = {{
    {"park_spinners", &SyncSwitches::park_spinners},
    {"notify_one_fifo", &SyncSwitches::notify_one_fifo},
    {"spurious_wakeups", &SyncSwitches::spurious_wakeups},
}};

}  // namespace

SyncSwitches SyncSwitches::of(const SimConfig& config) {
  return SyncSwitches{config.park_spinners, config.notify_one_fifo, config.spurious_wakeups};
}

void SyncSwitches::apply_to(SimConfig& config) const {
  config.park_spinners = park_spinners;
  config.notify_one_fifo = notify_one_fifo;
  config.spurious_wakeups = spurious_wakeups;
}

std::string SyncSwitches::flags() const {
  std::string out;
  out += park_spinners ? "" : " --no-park-spinners";
  out += notify_one_fifo ? " --notify-fifo" : "";
  out += spurious_wakeups ? " --spurious-wakeups" : "";
  return out;
}

ScenarioOptions SeedFile::options() const {
  ScenarioOptions o;
  o.sim.seed = seed;
  o.sim.decisions = decisions;
  o.sim.strategy = strategy;
  sync.apply_to(o.sim);
  o.swarm = swarm;
  return o;
}

std::string SeedFile::replay_command() const {
  SEEDPOOL_ASSERT_MSG(!strategy.steps_estimate_is_auto(), "a replay command names pct:D:K");
  return fmt::format("{} replay {} --seed {} --strategy {}{}{}", replay_program(), scenario, seed, strategy.to_string(),
                     swarm ? " --swarm" : "", sync.flags());
}

SeedFile seed_file_for(const std::string& scenario, const ScenarioOptions& options, std::uint64_t seed) {
  SeedFile file;
  file.scenario = scenario;
  file.seed = seed;
  file.strategy = options.sim.strategy;
  file.swarm = options.swarm;
  file.sync = SyncSwitches::of(options.sim);
  return file;
}

namespace {
std::string& replay_program_slot() {
  static std::string program = "build/bin/seedpool-sim";
  return program;
}
}  // namespace

void set_replay_program(std::string program) { replay_program_slot() = std::move(program); }
const std::string& replay_program() { return replay_program_slot(); }

SeedFile describe_run(const std::string& scenario, const ScenarioOptions& options, const ScenarioResult& result,
                      bool with_decisions) {
  SeedFile file = seed_file_for(scenario, options, options.sim.seed);
  if (with_decisions || options.sim.decisions) {
    file.decisions = result.run.decisions;
  }
  file.expected_outcome = result.failure_kind.empty() ? "ok" : result.failure_kind;
  file.expected_trace_hash = result.run.trace_hash;
  file.note = result.run.message;
  file.faults = result.faults.describe();
  return file;
}

std::string to_json(const SeedFile& file) {
  json j;
  j["format"] = "seedpool-seed";
  j["format_version"] = seed_file_format_version;
  j["scenario"] = file.scenario;
  j["seed"] = file.seed;
  j["strategy"] = file.strategy.to_string();
  j["swarm"] = file.swarm;
  // Only the switches off their defaults, so that files written before the
  // switches existed, and most files since, stay as they were.
  const SyncSwitches defaults;
  if (file.sync != defaults) {
    json sync = json::object();
    for (const auto& [name, member] : sync_switches) {
      if (file.sync.*member != defaults.*member) {
        sync[name] = file.sync.*member;
      }
    }
    j["sync"] = sync;
  }
  if (file.decisions) {
    j["decisions"] = *file.decisions;
  }
  j["expected"] = {{"outcome", file.expected_outcome}, {"trace_hash", hex(file.expected_trace_hash)}};
  j["note"] = file.note;
  j["faults"] = file.faults;
  return j.dump(2) + "\n";
}

Result<SeedFile> parse_seed_file(std::string_view text) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return bad_file("not a JSON object");
  }
  if (j.value("format", std::string()) != "seedpool-seed") {
    return bad_file("\"format\" is not \"seedpool-seed\"");
  }
  if (!j.contains("format_version") || !j["format_version"].is_number_integer()) {
    return bad_file("\"format_version\" is missing");
  }
  if (const int version = j["format_version"].get<int>(); version != seed_file_format_version) {
    return Error{ErrorCode::invalid_argument,
                 fmt::format("seed file has format version {}, this seedpool-sim reads version {}", version,
                             seed_file_format_version),
                 {}};
  }
  try {
    SeedFile file;
    file.scenario = j.at("scenario").get<std::string>();
    file.seed = j.at("seed").get<std::uint64_t>();
    Result<StrategySpec> strategy = parse_strategy(j.value("strategy", std::string("random")));
    if (!strategy) {
      return bad_file(strategy.error().message);
    }
    if (strategy.value().steps_estimate_is_auto()) {
      return bad_file(fmt::format("strategy '{}' has no K; a seed file names pct:D:K, the K its sweep estimated",
                                  strategy.value().to_string()));
    }
    file.strategy = strategy.value();
    file.swarm = j.value("swarm", false);
    if (j.contains("sync")) {
      const json& sync = j["sync"];
      if (!sync.is_object()) {
        return bad_file("\"sync\" is not an object");
      }
      for (const auto& [key, value] : sync.items()) {
        const auto known = std::find_if(sync_switches.begin(), sync_switches.end(),
                                        [&key](const auto& named) { return key == named.first; });
        if (known == sync_switches.end()) {
          return bad_file(fmt::format("\"sync\" has an unknown switch \"{}\" (park_spinners, notify_one_fifo, "
                                      "spurious_wakeups)",
                                      key));
        }
        if (!value.is_boolean()) {
          return bad_file(fmt::format("\"sync\".\"{}\" is not true or false", key));
        }
        file.sync.*(known->second) = value.get<bool>();
      }
    }
    if (j.contains("decisions")) {
      file.decisions = j["decisions"].get<std::vector<std::uint64_t>>();
    }
    const json& expected = j.at("expected");
    file.expected_outcome = expected.at("outcome").get<std::string>();
    file.expected_trace_hash = std::stoull(expected.at("trace_hash").get<std::string>(), nullptr, 16);
    file.note = j.value("note", std::string());
    file.faults = j.value("faults", std::string());
    return file;
  } catch (const std::exception& e) {
    return bad_file(e.what());
  }
}

Status write_seed_file(const std::string& path, const SeedFile& file) {
  std::ofstream out(path);
  out << to_json(file);
  if (!out) {
    return Error{ErrorCode::io_error, fmt::format("cannot write seed file '{}'", path), {}};
  }
  return {};
}

Result<SeedFile> read_seed_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Error{ErrorCode::invalid_argument, fmt::format("cannot read seed file '{}'", path), {}};
  }
  std::stringstream text;
  text << in.rdbuf();
  Result<SeedFile> parsed = parse_seed_file(text.str());
  if (!parsed) {
    return Error{ErrorCode::invalid_argument, fmt::format("{}: {}", path, parsed.error().message), {}};
  }
  return parsed;
}

}  // namespace seedpool::sim
