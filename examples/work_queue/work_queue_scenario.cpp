// The WorkQueue scenario and its invariant checker. See work_queue_scenario.hpp.
//
// This file is compiled into the test binary itself (not into a library):
// SEEDPOOL_SCENARIO registers through a static initializer, which a linker
// may drop from a static library when nothing else references the object.

#include "work_queue_scenario.hpp"

#include <seedpool/core/channel.hpp>
#include <seedpool/core/time.hpp>

#include <fmt/format.h>

#include <memory>
#include <string>
#include <utility>

namespace work_queue {

using seedpool::Channel;
using seedpool::Duration;
using seedpool::ErrorCode;
using seedpool::Instant;
using seedpool::milliseconds;
using seedpool::sim::FaultInjector;
using seedpool::sim::ScenarioContext;
using seedpool::sim::SimWorld;

// Bounds of the run, named so a reader sees every limit in one place.
constexpr Duration think_time_max = milliseconds(5);
constexpr Duration work_min = milliseconds(1);
constexpr Duration work_max = milliseconds(20);
constexpr Duration slow_work_max = milliseconds(500);
constexpr Duration deadline_min = milliseconds(100);
constexpr Duration deadline_max = seedpool::seconds(2);
constexpr Duration short_deadline_max = milliseconds(10);
constexpr Duration cancel_delay_max = milliseconds(30);
constexpr Duration callers_answered_bound = seedpool::minutes(5);
constexpr Duration shutdown_bound = seedpool::seconds(5);

// ---------------------------------------------------------------------------
// The invariant checker.

namespace {

std::string event_label(const Event& event) {
  switch (event.kind) {
    case Event::Kind::submitted:
      return fmt::format("ticket {} submitted (depth {})", event.ticket, event.depth);
    case Event::Kind::started:
      return fmt::format("ticket {} started", event.ticket);
    case Event::Kind::skipped:
      return fmt::format("ticket {} skipped", event.ticket);
    case Event::Kind::outcome:
      return fmt::format("ticket {} outcome {}", event.ticket, to_string(event.outcome));
    case Event::Kind::discarded:
      return fmt::format("ticket {} result discarded", event.ticket);
  }
  return "ticket event";
}

}  // namespace

OutcomeChecker::OutcomeChecker(SimWorld& world, std::size_t queue_depth_max)
    : world_(world), queue_depth_max_(queue_depth_max) {}

void OutcomeChecker::violation(seedpool::sim::Invariant invariant, const std::string& message) {
  if (failed_) {
    return;  // the first violation is the one the run reports
  }
  failed_ = true;
  world_.fail(invariant, message);  // "[name] message"; the simulator adds step, time and task
}

void OutcomeChecker::on_event(const Event& event) {
  // The trace shows the queue's events beside the scheduler's (replay with
  // events kept to read them).
  world_.note(event_label(event), event.ticket);
  Record& record = tickets_[event.ticket];
  switch (event.kind) {
    case Event::Kind::submitted:
      record.submitted = true;
      if (event.depth > queue_depth_max_) {
        violation(SEEDPOOL_INVARIANT("queue-depth"),
                  fmt::format("{} jobs queued, more than queue_depth_max {}", event.depth, queue_depth_max_));
      }
      break;
    case Event::Kind::started:
      if (record.has_outcome) {
        violation(SEEDPOOL_INVARIANT("no-run-after-cancel"),
                  fmt::format("ticket {} started after its outcome was decided as {}", event.ticket,
                              to_string(record.outcome)));
      }
      break;
    case Event::Kind::outcome:
      if (record.has_outcome) {
        violation(SEEDPOOL_INVARIANT("exactly-one-outcome"),
                  fmt::format("ticket {} got a second outcome, {}, after {}", event.ticket, to_string(event.outcome),
                              to_string(record.outcome)));
      }
      record.has_outcome = true;
      record.outcome = event.outcome;
      break;
    case Event::Kind::skipped:
    case Event::Kind::discarded:
      break;
  }
}

void OutcomeChecker::on_cancel(std::uint64_t ticket, bool won) {
  Record& record = tickets_[ticket];
  record.cancel_won = won;
  if (won && (!record.has_outcome || record.outcome != OutcomeKind::cancelled)) {
    violation(SEEDPOOL_INVARIANT("caller-outcome"),
              fmt::format("cancel() of ticket {} returned true but no cancelled outcome was delivered", ticket));
  }
}

void OutcomeChecker::on_wait(const Outcome& outcome) {
  const Record& record = tickets_[outcome.ticket];
  if (!record.has_outcome || record.outcome != outcome.kind) {
    violation(SEEDPOOL_INVARIANT("caller-outcome"),
              fmt::format("wait() of ticket {} returned {}, but the decided outcome was {}", outcome.ticket,
                          to_string(outcome.kind), record.has_outcome ? to_string(record.outcome) : "none"));
  } else if (record.cancel_won && outcome.kind != OutcomeKind::cancelled) {
    violation(SEEDPOOL_INVARIANT("caller-outcome"),
              fmt::format("ticket {} was cancelled, but wait() returned {}", outcome.ticket, to_string(outcome.kind)));
  }
}

void OutcomeChecker::finish() {
  for (const auto& [ticket, record] : tickets_) {
    if (record.submitted && !record.has_outcome) {
      violation(SEEDPOOL_INVARIANT("exactly-one-outcome"), fmt::format("ticket {} never got an outcome", ticket));
    }
  }
}

// ---------------------------------------------------------------------------
// The workload.

namespace {

// Fails the run and parks the calling task at a scheduling point, so that it
// is torn down after the tasks it spawned (teardown resumes the newest task
// first) instead of returning and destroying what they still use.
void fail_and_stop(SimWorld& world, seedpool::sim::Invariant invariant, const std::string& message) {
  world.fail(invariant, message);
  world.yield();
}

// A whole number of milliseconds in [min, max], drawn from the decision
// stream (decision 0 gives min). Drawing whole milliseconds rather than
// nanoseconds keeps every event of a run on one grid, so that two tasks often
// act at the same virtual instant: that is where the races are, and where
// the scheduler's choice of who goes first decides the outcome.
Duration whole_ms(SimWorld& world, Duration min, Duration max) {
  const auto span = static_cast<std::uint64_t>((max - min).ns() / milliseconds(1).ns());
  return min + milliseconds(static_cast<std::int64_t>(world.decide(span + 1)));
}

// One client: submits jobs one after another, sometimes cancels, always waits.
void client_body(ScenarioContext& ctx, WorkQueue& queue, OutcomeChecker& checker, std::size_t client,
                 const ScenarioShape& shape) {
  SimWorld& world = ctx.world;
  FaultInjector& faults = ctx.faults;
  for (std::size_t j = 0; j < shape.jobs_per_client; ++j) {
    world.sleep_for(whole_ms(world, Duration::zero(), think_time_max));
    // The queue's own fault sites, each declared here with its rate in
    // parts per million: a job that runs long, a client in a hurry, a
    // client that changes its mind.
    const Duration work = SEEDPOOL_FAULT(faults, "job.slow", 100'000) ? whole_ms(world, work_max, slow_work_max)
                                                                      : whole_ms(world, work_min, work_max);
    const Duration budget = SEEDPOOL_FAULT(faults, "client.short_deadline", 150'000)
                                ? whole_ms(world, work_min, short_deadline_max)
                                : whole_ms(world, deadline_min, deadline_max);
    std::string name = fmt::format("client {} job {}", client, j);
    auto submitted = queue.submit(Job{name,
                                      [work, name](seedpool::World& w) {
                                        w.sleep_for(work);
                                        return name + ": done";
                                      }},
                                  world.now() + budget);
    if (!submitted) {
      // A queue that stayed full until the deadline is an expected answer.
      if (submitted.error().code != ErrorCode::timeout) {
        fail_and_stop(world, SEEDPOOL_INVARIANT("submit"), "unexpected error: " + submitted.error().describe());
        return;
      }
      continue;
    }
    const Ticket ticket = submitted.value();
    if (SEEDPOOL_FAULT(faults, "client.cancel", 250'000)) {
      world.sleep_for(whole_ms(world, Duration::zero(), cancel_delay_max));
      checker.on_cancel(ticket.id(), queue.cancel(ticket));
    }
    checker.on_wait(queue.wait(ticket));
  }
}

}  // namespace

void run_work_queue(ScenarioContext& ctx, const ScenarioShape& shape) {
  SimWorld& world = ctx.world;
  // Everything the spawned tasks touch is shared, so no task depends on this
  // frame staying alive; ctx itself lives for the whole run.
  auto checker = std::make_shared<OutcomeChecker>(world, shape.queue_depth_max);
  WorkQueue::Options options;
  options.workers = shape.workers;
  options.queue_depth_max = shape.queue_depth_max;
  options.observer = [checker](const Event& event) { checker->on_event(event); };
  options.planted_bug = shape.planted_bug;
  auto queue = std::make_shared<WorkQueue>(world, std::move(options));

  auto finished = std::make_shared<Channel<std::size_t>>(world, "clients-finished", shape.clients);
  for (std::size_t c = 0; c < shape.clients; ++c) {
    world.spawn(fmt::format("client {}", c), [&ctx, queue, checker, finished, c, shape] {
      client_body(ctx, *queue, *checker, c, shape);
      (void)finished->try_send(std::size_t{c});
    });
  }

  // Liveness: every client is answered within a bound, then the queue drains.
  const Instant answered_by = world.now() + callers_answered_bound;
  for (std::size_t done = 0; done < shape.clients; ++done) {
    if (!finished->receive(answered_by)) {
      fail_and_stop(world, SEEDPOOL_INVARIANT("callers-answered"),
                    fmt::format("{} of {} clients still waiting after {}", shape.clients - done, shape.clients,
                                seedpool::sim::format_instant(Instant::zero() + callers_answered_bound)));
      return;
    }
  }
  const seedpool::Status stopped = queue->shutdown(world.now() + shutdown_bound);
  if (!stopped) {
    fail_and_stop(world, SEEDPOOL_INVARIANT("shutdown-drains"), stopped.error().describe());
    return;
  }
  checker->finish();
}

}  // namespace work_queue

// Registered by name, like GoogleTest tests, so that the test can sweep them
// with sweep_passes("work-queue") and look them up when replaying seed files.
SEEDPOOL_SCENARIO(work_queue_correct, "work-queue",
                  "WorkQueue: clients with random deadlines, cancels and job times", {}) {
  work_queue::run_work_queue(ctx, work_queue::ScenarioShape{});
}

SEEDPOOL_SCENARIO(work_queue_buggy, "work-queue-buggy",
                  "WorkQueue with its planted bug: a finished job ignores a cancel or timeout that came first",
                  {}) {
  work_queue::run_work_queue(ctx, work_queue::ScenarioShape{.planted_bug = true});
}

namespace work_queue {

seedpool::sim::Scenario make_scenario(bool planted_bug) {
  const seedpool::sim::Scenario* scenario =
      seedpool::sim::ScenarioRegistry::instance().find(planted_bug ? "work-queue-buggy" : "work-queue");
  SEEDPOOL_ASSERT(scenario != nullptr);
  return *scenario;
}

}  // namespace work_queue
