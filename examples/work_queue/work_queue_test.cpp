// WorkQueue under deterministic simulation: the whole workflow a user of
// seedpool follows for a concurrent component of their own.
//
//   1. sweep the correct queue over many seeds (random walk, then PCT with
//      swarm-drawn faults): it passes;
//   2. sweep the queue with its planted bug: a seed fails within a bounded
//      number of seeds, with the invariant that caught it;
//   3. replay that seed, and its recorded decision list: the same failure
//      and the same trace hash, every time;
//   4. shrink the decision list: still the same failure, fewer decisions;
//   5. save the failure as a seed file, read it back and replay it; replay the
//      committed corpus in seeds/, in which every file must still pass on the
//      correct queue and still catch the planted bug.
//
// The same scenarios are served by work_queue_sim (seedpool::sim_main):
// `work_queue_sim replay path/to/seed.json --log` replays one seed file and
// prints every event of the run.

#include "work_queue.hpp"
#include "work_queue_scenario.hpp"

#include <seedpool/sim/determinism.hpp>
#include <seedpool/sim/scenario.hpp>
#include <seedpool/sim/seed_file.hpp>
#include <seedpool/sim/shrink.hpp>
#include <seedpool/sim/sim_world.hpp>
#include <seedpool/sim/sweeper.hpp>
#include <seedpool/sim/testing/gtest.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>

#ifdef WORK_QUEUE_HAVE_RAPIDCHECK
#include <rapidcheck/gtest.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace work_queue {
namespace {

namespace sim = seedpool::sim;
namespace fs = std::filesystem;
using seedpool::milliseconds;
using seedpool::seconds;

// The planted bug must be found within this many seeds of a plain random
// walk. It is found far sooner (see README.md); the bound keeps the test fast
// and fails loudly if the scenario stops reaching the race.
constexpr std::uint64_t seeds_to_find_bug_max = 200;
constexpr std::size_t shrink_runs_max = 2'000;

// The planted bug (two parties both deliver an outcome) is caught by one of
// two invariants, depending on who races: two deliveries of one ticket, or a
// worker that starts a job while its cancel is being delivered.
const std::vector<std::string> planted_bug_kinds = {"exactly-one-outcome", "no-run-after-cancel"};

bool is_planted_bug(const std::string& kind) {
  return std::find(planted_bug_kinds.begin(), planted_bug_kinds.end(), kind) != planted_bug_kinds.end();
}

// Where this test writes the seed files it finds; CMake points it into the
// build tree. Copy a file from there into seeds/ to keep it.
fs::path found_dir() { return fs::path(WORK_QUEUE_FOUND_DIR); }

sim::ScenarioOptions with_strategy(const std::string& strategy, bool swarm) {
  sim::ScenarioOptions options;
  options.sim.strategy = sim::parse_strategy(strategy).value();
  options.swarm = swarm;
  return options;
}

sim::ScenarioOptions replaying(const std::vector<std::uint64_t>& decisions) {
  sim::ScenarioOptions options;
  options.sim.decisions = decisions;
  return options;
}

struct Found {
  std::uint64_t seed = 0;
  sim::ScenarioResult result;
};

// The first seed in [1, seeds] whose run of `scenario` fails with a kind
// `wanted` accepts (through the sweeper, as every seed loop does), run
// again for its full result.
std::optional<Found> first_failing_seed(const sim::Scenario& scenario, const sim::ScenarioOptions& options,
                                        std::uint64_t seeds, const std::function<bool(const std::string&)>& wanted) {
  sim::SweepPlan plan;
  plan.seeds = seeds;
  plan.max_failures = 1;
  const sim::SweepReport report = sim::run_sweep(plan, [&](std::uint64_t seed) {
    sim::SeedOutcome outcome = sim::run_scenario_seed(scenario, options, seed);
    if (!outcome.ok() && !wanted(outcome.kind)) {
      outcome.kind.clear();  // another failure: not the one looked for
    }
    return outcome;
  });
  if (report.failed.empty()) {
    return std::nullopt;
  }
  sim::ScenarioOptions again = options;
  again.sim.seed = report.failed.front().seed;
  return Found{again.sim.seed, sim::run_scenario(scenario, again)};
}

// The first failing seed of the buggy scenario under a random walk, found
// once per test binary; null when none within the bound failed.
const Found* first_failure() {
  static const std::optional<Found> found = first_failing_seed(
      make_scenario(true), sim::ScenarioOptions{}, seeds_to_find_bug_max, [](const std::string&) { return true; });
  return found ? &*found : nullptr;
}

// The first failure, shrunk once per test binary. Requires first_failure().
const sim::ShrinkResult& shrunk_failure() {
  static const sim::ShrinkResult shrunk =
      sim::shrink(make_scenario(true), sim::ScenarioOptions{}, first_failure()->result.run.decisions,
                  first_failure()->result.failure_kind, shrink_runs_max);
  return shrunk;
}

#define REQUIRE_FOUND()                                                                               \
  ASSERT_NE(first_failure(), nullptr) << "the planted bug was not found in " << seeds_to_find_bug_max \
                                      << " seeds"

// ---------------------------------------------------------------------------
// The component on its own: a plain simulated program, no scenario.

TEST(WorkQueueBasics, JobsRunCancelsWinAndShutdownDrains) {
  std::vector<Outcome> outcomes;
  bool cancel_won = false;
  seedpool::Status stopped;
  sim::SimConfig config;
  config.seed = 7;
  const sim::RunResult run = sim::simulate(config, [&](sim::SimWorld& world) {
    WorkQueue queue(world, {.workers = 1, .queue_depth_max = 4});
    auto job = [](std::string name, seedpool::Duration work) {
      return Job{name, [name, work](seedpool::World& w) {
                   w.sleep_for(work);
                   return name + " ok";
                 }};
    };
    const seedpool::Instant deadline = world.now() + seconds(1);
    auto a = queue.submit(job("a", milliseconds(10)), deadline);
    auto b = queue.submit(job("b", milliseconds(10)), deadline);
    auto c = queue.submit(job("c", seconds(5)), world.now() + milliseconds(100));
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    cancel_won = queue.cancel(b.value());  // still queued behind a
    outcomes.push_back(queue.wait(a.value()));
    outcomes.push_back(queue.wait(b.value()));
    outcomes.push_back(queue.wait(c.value()));  // its deadline passes while it runs
    stopped = queue.shutdown(world.now() + seconds(10));
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_TRUE(stopped.ok());
  EXPECT_TRUE(cancel_won);
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0].kind, OutcomeKind::done);
  EXPECT_EQ(outcomes[0].value, "a ok");
  EXPECT_EQ(outcomes[1].kind, OutcomeKind::cancelled);
  EXPECT_EQ(outcomes[2].kind, OutcomeKind::timed_out);
  // c's 5 s of work ran to the end during shutdown: drained, not abandoned.
  EXPECT_GE(run.virtual_time, seedpool::Instant::zero() + seconds(5));
}

// ---------------------------------------------------------------------------
// 1. The correct queue passes sweeps.

TEST(WorkQueueSweep, CorrectQueuePassesRandomWalk) {
  EXPECT_TRUE(sim::testing::sweep_passes("work-queue", {.seeds = 1000}));
}

TEST(WorkQueueSweep, CorrectQueuePassesPctWithSwarm) {
  EXPECT_TRUE(sim::testing::sweep_passes(
      "work-queue", {.seeds = 500, .first_seed = 1'000'000, .strategy = sim::parse_strategy("pct:3:200").value(),
                     .swarm = true}));
}

TEST(WorkQueueSweep, SameSeedSameRun) {
  sim::ScenarioOptions options;
  options.sim.seed = 42;
  options.sim.keep_trace_events = true;
  const sim::ScenarioResult first = sim::run_scenario(make_scenario(false), options);
  const sim::ScenarioResult second = sim::run_scenario(make_scenario(false), options);
  const sim::DeterminismReport report = sim::compare_runs(first.run, second.run);
  EXPECT_TRUE(report.deterministic) << report.describe();
}

// ---------------------------------------------------------------------------
// 2. A sweep finds the planted bug.

TEST(WorkQueueBug, SweepFindsThePlantedBug) {
  REQUIRE_FOUND();
  const Found& found = *first_failure();
  EXPECT_TRUE(is_planted_bug(found.result.failure_kind)) << found.result.run.summary();
  std::printf("planted bug found at seed %llu of at most %llu: %s\n",
              static_cast<unsigned long long>(found.seed), static_cast<unsigned long long>(seeds_to_find_bug_max),
              found.result.run.summary().c_str());

  // sweep_passes reports the same failure, with a seed file written for it.
  const fs::path dir = found_dir() / "sweep";
  fs::remove_all(dir);
  const ::testing::AssertionResult swept =
      sim::testing::sweep_passes(make_scenario(true), {.seeds = seeds_to_find_bug_max, .failure_dir = dir.string()});
  ASSERT_FALSE(swept);
  const std::string message = swept.message();
  EXPECT_NE(message.find("[" + found.result.failure_kind + "]"), std::string::npos) << message;
  const char* env_dir = std::getenv("SEEDPOOL_FAILURE_DIR");  // overrides failure_dir
  const fs::path written =
      fs::path(env_dir != nullptr ? env_dir : dir) / fmt::format("work-queue-buggy-{}.json", found.seed);
  EXPECT_TRUE(fs::exists(written)) << swept.message();
}

// How often each strategy hits the race, printed for README.md. The random
// walk must find it; PCT is printed, not required (see docs/guide.md on
// strategies: this race needs a preemption at one exact step, which strict
// priorities rarely make).
TEST(WorkQueueBug, StrategiesCompared) {
  constexpr std::uint64_t seeds = 2'000;
  for (const auto& [strategy, swarm] : std::vector<std::pair<std::string, bool>>{
           {"random", false}, {"random", true}, {"pct:3:200", false}, {"pct:3:2000", false}}) {
    sim::SweepPlan plan;
    plan.seeds = seeds;
    const sim::SweepReport report = sim::sweep_scenario(make_scenario(true), with_strategy(strategy, swarm), plan);
    for (const sim::SeedOutcome& failed : report.failed) {
      EXPECT_TRUE(is_planted_bug(failed.kind)) << failed.message;
    }
    const std::uint64_t failing = report.failed.size();
    const std::optional<std::uint64_t> first =
        report.failed.empty() ? std::nullopt : std::optional<std::uint64_t>(report.failed.front().seed);
    std::printf("%-10s%-7s %4llu of %llu seeds fail; first failing seed %s\n", strategy.c_str(),
                swarm ? " swarm" : "", static_cast<unsigned long long>(failing),
                static_cast<unsigned long long>(seeds), first ? std::to_string(*first).c_str() : "none");
    if (strategy == "random") {
      EXPECT_GT(failing, 0u);
    }
  }
}

// pct:3 with its K estimated from the sweep's warm-up (see the guide on
// strategies) finds the race at least half as often as the best of a range
// of hand-chosen K around the estimate (K/4 .. 4K, and 2000, the old
// default), over the same seeds.
TEST(WorkQueueBug, AutomaticKIsWithinTwiceTheBestHandChosenK) {
  constexpr std::uint64_t seeds = 20'000;
  sim::SweepPlan plan;
  plan.seeds = seeds;
  const auto failures = [&](const std::string& strategy) {
    return sim::sweep_scenario(make_scenario(true), with_strategy(strategy, false), plan);
  };
  const sim::SweepReport automatic = failures("pct:3");
  ASSERT_TRUE(automatic.strategy.has_value());
  const std::uint64_t k = automatic.strategy->strategy.steps_estimate;
  std::uint64_t best = 0;
  std::uint64_t best_k = 0;
  std::string row;
  for (const std::uint64_t hand : {std::max<std::uint64_t>(1, k / 4), std::max<std::uint64_t>(1, k / 2), k, 2 * k,
                                   4 * k, std::uint64_t{2000}}) {
    const std::uint64_t found = failures("pct:3:" + std::to_string(hand)).failed.size();
    row += fmt::format(" K={}:{}", hand, found);
    if (found > best) {
      best = found;
      best_k = hand;
    }
  }
  std::printf("work-queue, %llu seeds: pct:3 (K = %llu) %zu fail;%s\n", static_cast<unsigned long long>(seeds),
              static_cast<unsigned long long>(k), automatic.failed.size(), row.c_str());
  EXPECT_GT(automatic.failed.size(), 0U);
  EXPECT_GE(2 * automatic.failed.size(), best) << "K = " << best_k << " found " << best;
}

// ---------------------------------------------------------------------------
// 3. Replaying the failing seed reproduces it exactly.

TEST(WorkQueueBug, ReplayingTheSeedReproducesTheFailure) {
  REQUIRE_FOUND();
  const Found& found = *first_failure();
  sim::ScenarioOptions by_seed;
  by_seed.sim.seed = found.seed;
  for (int i = 0; i < 3; ++i) {
    const sim::ScenarioResult again = sim::run_scenario(make_scenario(true), by_seed);
    EXPECT_EQ(again.failure_kind, found.result.failure_kind);
    EXPECT_EQ(again.run.message, found.result.run.message);
    EXPECT_EQ(again.run.trace_hash, found.result.run.trace_hash);
  }
  // The recorded decision list is the run, too.
  const sim::ScenarioResult by_list = sim::run_scenario(make_scenario(true), replaying(found.result.run.decisions));
  EXPECT_EQ(by_list.failure_kind, found.result.failure_kind);
  EXPECT_EQ(by_list.run.trace_hash, found.result.run.trace_hash);
}

// ---------------------------------------------------------------------------
// 4. Shrinking keeps the failure and makes it smaller.

TEST(WorkQueueBug, ShrunkDecisionsStillFailAndAreSmaller) {
  REQUIRE_FOUND();
  const Found& found = *first_failure();
  const sim::ShrinkResult& shrunk = shrunk_failure();
  EXPECT_EQ(shrunk.last_failure.failure_kind, found.result.failure_kind);
  EXPECT_LE(shrunk.decisions.size(), found.result.run.decisions.size());
  EXPECT_LT(sim::count_nonzero(shrunk.decisions), sim::count_nonzero(found.result.run.decisions));
  std::printf("shrunk from %zu decisions (%zu non-zero) to %zu (%zu non-zero) in %zu replays\n%s\n",
              shrunk.original_size, shrunk.original_nonzero, shrunk.decisions.size(),
              sim::count_nonzero(shrunk.decisions), shrunk.runs, shrunk.last_failure.run.message.c_str());
  const sim::ScenarioResult again = sim::run_scenario(make_scenario(true), replaying(shrunk.decisions));
  EXPECT_EQ(again.failure_kind, found.result.failure_kind);
  EXPECT_EQ(again.run.trace_hash, shrunk.last_failure.run.trace_hash);
}

// ---------------------------------------------------------------------------
// 5. Seed files and the corpus.

// Replays one seed file against the scenario it names; empty when it
// reproduces its expected outcome and trace hash, else what differed.
std::string replay_seed_file(const sim::SeedFile& file) {
  const sim::Scenario* scenario = sim::ScenarioRegistry::instance().find(file.scenario);
  if (scenario == nullptr) {
    return "no scenario named '" + file.scenario + "'";
  }
  const sim::ScenarioResult result = sim::run_scenario(*scenario, file.options());
  const std::string outcome = result.run.ok() ? "ok" : result.failure_kind;
  if (outcome == file.expected_outcome && result.run.trace_hash == file.expected_trace_hash) {
    return {};
  }
  return fmt::format("expected {} {:016x}, got {} {:016x}: {}", file.expected_outcome, file.expected_trace_hash,
                     outcome, result.run.trace_hash, result.run.summary());
}

TEST(WorkQueueCorpus, SavedFailureReplaysFromItsFile) {
  REQUIRE_FOUND();
  const sim::ShrinkResult& shrunk = shrunk_failure();
  const sim::ScenarioOptions options = replaying(shrunk.decisions);
  sim::SeedFile failing = sim::describe_run("work-queue-buggy", options, shrunk.last_failure, true);
  failing.seed = first_failure()->seed;  // for the reader: where the sweep found it
  const fs::path path = found_dir() / "work-queue-buggy-shrunk.json";
  fs::create_directories(path.parent_path());
  ASSERT_TRUE(sim::write_seed_file(path.string(), failing).ok());

  const seedpool::Result<sim::SeedFile> read = sim::read_seed_file(path.string());
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read.value().expected_outcome, first_failure()->result.failure_kind);
  EXPECT_EQ(replay_seed_file(read.value()), "");
}

// Writes, for each way the planted bug shows, the corpus entry seeds/ keeps:
// the shrunk decision list of the first seed that failed that way, expected
// to pass on the fixed queue. This is how seeds/ was made: copy the files
// from the build tree's seeds-found/ into seeds/.
TEST(WorkQueueCorpus, WritesCorpusEntriesForTheFixedQueue) {
  constexpr std::uint64_t seeds = 2'000;
  for (const std::string& kind : planted_bug_kinds) {
    const std::optional<Found> found = first_failing_seed(make_scenario(true), sim::ScenarioOptions{}, seeds,
                                                          [&kind](const std::string& k) { return k == kind; });
    ASSERT_TRUE(found.has_value()) << "no seed failed with " << kind;
    const sim::ShrinkResult shrunk = sim::shrink(make_scenario(true), sim::ScenarioOptions{},
                                                 found->result.run.decisions, kind, shrink_runs_max);
    ASSERT_EQ(shrunk.last_failure.failure_kind, kind);
    const sim::ScenarioOptions options = replaying(shrunk.decisions);
    const sim::ScenarioResult fixed = sim::run_scenario(make_scenario(false), options);
    EXPECT_TRUE(fixed.run.ok()) << fixed.run.summary();
    sim::SeedFile entry = sim::describe_run("work-queue", options, fixed, true);
    // The shrunk list, not the fixed run's longer record of it: past its end
    // every choice is 0 either way, so both replay the same run.
    entry.decisions = shrunk.decisions;
    entry.seed = found->seed;
    entry.note = fmt::format(
        "Shrunk from seed {} of work-queue-buggy ({} decisions, {} non-zero, to {}, {} non-zero). On the queue with "
        "the planted bug it fails: {} Replays ok on the fixed queue.",
        found->seed, shrunk.original_size, shrunk.original_nonzero, shrunk.decisions.size(),
        sim::count_nonzero(shrunk.decisions), shrunk.last_failure.run.message);
    const fs::path path = found_dir() / fmt::format("work-queue-caught-{}.json", kind);
    fs::create_directories(path.parent_path());
    ASSERT_TRUE(sim::write_seed_file(path.string(), entry).ok());
    std::printf("%s: seed %llu, shrunk %zu -> %zu decisions (%zu -> %zu non-zero); wrote %s\n", kind.c_str(),
                static_cast<unsigned long long>(found->seed), shrunk.original_size, shrunk.decisions.size(),
                shrunk.original_nonzero, sim::count_nonzero(shrunk.decisions), path.c_str());
  }
}

// Every file in seeds/ reproduces its expected outcome and trace hash, and
// still catches the planted bug. WORK_QUEUE_UPDATE_CORPUS=1 rewrites the
// expected hash of a file whose outcome is still the expected one (after an
// intended change to the queue or an upgrade of seedpool).
TEST(WorkQueueCorpus, CommittedCorpusReplays) {
  const fs::path corpus(WORK_QUEUE_SEEDS_DIR);
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    if (entry.path().extension() == ".json") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty()) << "no seed files in " << corpus;
  const bool update = std::getenv("WORK_QUEUE_UPDATE_CORPUS") != nullptr;
  for (const fs::path& path : files) {
    seedpool::Result<sim::SeedFile> read = sim::read_seed_file(path.string());
    ASSERT_TRUE(read.ok()) << path << ": " << read.error().message;
    sim::SeedFile& file = read.value();
    const std::string differs = replay_seed_file(file);
    if (!differs.empty() && update) {
      const sim::ScenarioResult result = sim::run_scenario(make_scenario(false), file.options());
      if (file.scenario == "work-queue" && result.run.ok() && file.expected_outcome == "ok") {
        file.expected_trace_hash = result.run.trace_hash;
        ASSERT_TRUE(sim::write_seed_file(path.string(), file).ok());
        std::printf("updated the expected trace hash of %s\n", path.c_str());
        continue;
      }
    }
    EXPECT_EQ(differs, "") << path;
    // A corpus entry for the fixed queue is a run that once broke the buggy
    // one: replayed with the planted bug, it must still catch it.
    if (file.scenario == "work-queue" && file.decisions) {
      const sim::ScenarioResult buggy = sim::run_scenario(make_scenario(true), replaying(*file.decisions));
      EXPECT_TRUE(is_planted_bug(buggy.failure_kind)) << path << ": " << buggy.run.summary();
    }
  }
}

#ifdef WORK_QUEUE_HAVE_RAPIDCHECK
// RapidCheck draws the shape of the run and its decision list; the correct
// queue must keep every invariant. A failure would be shrunk by RapidCheck
// (fewer clients and jobs, a shorter decision list).
RC_GTEST_PROP(WorkQueueProperty, AnyShapeAndScheduleKeepsTheInvariants, ()) {
  ScenarioShape shape;
  shape.clients = *rc::gen::inRange<std::size_t>(1, 6);
  shape.jobs_per_client = *rc::gen::inRange<std::size_t>(1, 6);
  shape.workers = *rc::gen::inRange<std::size_t>(1, 4);
  shape.queue_depth_max = *rc::gen::inRange<std::size_t>(1, 5);
  // Small values steer the scheduler and the millisecond draws; values near
  // a million fire faults (a decision not below its bound replays as 0).
  const auto decisions = *rc::gen::container<std::vector<std::uint64_t>>(
      rc::gen::oneOf(rc::gen::inRange<std::uint64_t>(0, 8), rc::gen::inRange<std::uint64_t>(0, 1'000'000)));
  sim::Scenario scenario;
  scenario.name = "work-queue-generated";
  scenario.body = [shape](sim::ScenarioContext& ctx) { run_work_queue(ctx, shape); };
  const sim::ScenarioResult result = sim::run_scenario(scenario, replaying(decisions));
  RC_ASSERT(result.run.ok());
}
#endif

}  // namespace
}  // namespace work_queue
