#pragma once

// The simulation scenario for WorkQueue: clients submit jobs with random
// deadlines and work times, cancel some of them at random moments, and wait
// for every outcome, while an invariant checker watches every event the
// queue reports. Every random choice comes from the run's decision stream
// (through ctx.faults and ctx.world), so a run is a pure function of its
// seed or decision list.
//
// Invariants, each failing the run as "[name] message" so that
// seedpool::sim::failure_kind() names it:
//   exactly-one-outcome  a ticket's outcome is delivered once, never twice,
//                        and every submitted ticket has one by the end
//   no-run-after-cancel  a job whose outcome was decided is never started
//   caller-outcome       wait() returns the outcome that was decided, and
//                        cancelled whenever the caller's cancel() returned true
//   queue-depth          at most queue_depth_max jobs wait in the queue
//   callers-answered     every client finishes within a virtual-time bound
//   shutdown-drains      shutdown() returns ok within its deadline

#include "work_queue.hpp"

#include <seedpool/sim/faults.hpp>
#include <seedpool/sim/scenario.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <cstddef>
#include <cstdint>
#include <map>

namespace work_queue {

// The size of a run; small enough that one seed takes well under a millisecond.
struct ScenarioShape {
  std::size_t clients = 4;
  std::size_t jobs_per_client = 5;
  std::size_t workers = 2;
  std::size_t queue_depth_max = 3;
  bool planted_bug = false;
};

// The scenario's faults are named sites declared where they act
// (work_queue_scenario.cpp): client.cancel, a client cancels its job after a
// random delay; client.short_deadline, a deadline of a few milliseconds;
// job.slow, a job that works for up to half a second.

// "work-queue" (the correct queue) or "work-queue-buggy" (planted_bug on).
// Both are also registered in the ScenarioRegistry by work_queue_scenario.cpp.
seedpool::sim::Scenario make_scenario(bool planted_bug);

// The scenario body, for building variations (RapidCheck varies the shape).
void run_work_queue(seedpool::sim::ScenarioContext& ctx, const ScenarioShape& shape);

// Checks the invariants above against the queue's events and the clients'
// observations. Every method runs on a simulated task; a violation calls
// SimWorld::fail, which stops the run at that task's next scheduling point.
class OutcomeChecker {
 public:
  OutcomeChecker(seedpool::sim::SimWorld& world, std::size_t queue_depth_max);

  // The queue's observer.
  void on_event(const Event& event);

  // A client's cancel() of `ticket` returned `won`.
  void on_cancel(std::uint64_t ticket, bool won);

  // A client's wait() returned `outcome`.
  void on_wait(const Outcome& outcome);

  // The end of the run: every submitted ticket has exactly one outcome.
  void finish();

 private:
  struct Record {
    bool submitted = false;
    bool has_outcome = false;
    OutcomeKind outcome = OutcomeKind::done;
    bool cancel_won = false;
  };
  void violation(seedpool::sim::Invariant invariant, const std::string& message);

  seedpool::sim::SimWorld& world_;
  const std::size_t queue_depth_max_;
  // Ordered by ticket id: iteration order must never depend on addresses or
  // hashing, or finish() could report different tickets on a replay.
  std::map<std::uint64_t, Record> tickets_;
  bool failed_ = false;
};

}  // namespace work_queue
