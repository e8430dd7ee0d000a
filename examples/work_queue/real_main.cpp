// The same WorkQueue on the real World: worker tasks are OS threads, time is
// std::chrono::steady_clock, sleep_for really sleeps. Nothing in
// work_queue.cpp changes; only the World passed to it does.
//
// Submits six jobs that each sum a range of squares and sleep 100 ms, one
// more that it cancels while it is queued, and one whose deadline passes
// before a worker is free; prints every outcome, then shuts the queue down. Exit status 0 when every outcome
// is the expected one.

#include "work_queue.hpp"

#include <seedpool/real/real_world.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using seedpool::milliseconds;
using seedpool::seconds;

// A job that computes something real and takes `work` of wall time.
work_queue::Job sum_of_squares(std::uint64_t n, seedpool::Duration work) {
  return {fmt::format("sum of squares below {}", n), [n, work](seedpool::World& world) {
            std::uint64_t sum = 0;
            for (std::uint64_t i = 0; i < n; ++i) {
              sum += i * i;
            }
            world.sleep_for(work);
            return fmt::format("{}", sum);
          }};
}

}  // namespace

int main() {
  // Declared first, destroyed last: the World outlives the queue's threads.
  seedpool::real::RealWorld world;
  work_queue::WorkQueue queue(world, {.workers = 3, .queue_depth_max = 8});

  struct Submitted {
    work_queue::Ticket ticket;
    work_queue::OutcomeKind expected;
  };
  std::vector<Submitted> submitted;
  const seedpool::Instant deadline = world.now() + seconds(5);
  for (std::uint64_t i = 1; i <= 6; ++i) {
    auto ticket = queue.submit(sum_of_squares(i * 1000, milliseconds(100)), deadline);
    if (!ticket) {
      fmt::print("submit failed: {}\n", ticket.error().describe());
      return 1;
    }
    submitted.push_back({ticket.value(), work_queue::OutcomeKind::done});
  }
  // Behind six 100 ms jobs on three workers, this one is still queued when
  // cancelled (and cancel() would win even if it had just started).
  auto doomed = queue.submit(sum_of_squares(10, milliseconds(20)), deadline);
  // Half a second of work against a 100 ms deadline.
  auto late = queue.submit(sum_of_squares(10, milliseconds(500)), world.now() + milliseconds(100));
  if (!doomed || !late) {
    fmt::print("submit failed\n");
    return 1;
  }
  const bool cancelled = queue.cancel(doomed.value());
  submitted.push_back({doomed.value(), work_queue::OutcomeKind::cancelled});
  submitted.push_back({late.value(), work_queue::OutcomeKind::timed_out});

  bool as_expected = cancelled;
  for (const Submitted& s : submitted) {
    const work_queue::Outcome outcome = queue.wait(s.ticket);
    fmt::print("ticket {}: {} {}\n", outcome.ticket, work_queue::to_string(outcome.kind), outcome.value);
    as_expected = as_expected && outcome.kind == s.expected;
  }
  // Drains what is left: the cancelled job and the late one are skipped
  // (a worker reaches the late one after its deadline), so nothing runs.
  const seedpool::Status stopped = queue.shutdown(world.now() + seconds(10));
  fmt::print("shutdown: {}\n", stopped ? "ok" : stopped.error().describe());
  fmt::print("{}\n", as_expected && stopped ? "all outcomes as expected" : "UNEXPECTED OUTCOME");
  return as_expected && stopped ? 0 : 1;
}
