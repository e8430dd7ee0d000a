#pragma once

// The path of a lease's calls to one worker and back. One line per started
// worker, shared by the lease holder, the pool task and the worker process's
// frame router:
//
//   - the lease holder writes its call frame itself and waits on the line,
//     reading the worker's output itself where the World lets it
//     (Process::read_output: both Worlds do, each when its races allow);
//   - the line, as the process's frame router, takes the reply whose request
//     id is the call now waiting and hands it straight to the holder, so a
//     call costs no trip through the pool task;
//   - the pool task cuts the line when the worker fails or is stopped under a
//     lease, which answers a waiting call with the failure and refuses later
//     calls; it answers error frames itself (they carry the stderr tail);
//   - finished calls are recorded on the line and the pool task takes the
//     records (telemetry, max_calls) when it next deals with the worker: at
//     checkin, at a cut, or when the holder reports a full record buffer.
//
// Ownership runs one way. The process owns its line (as its router, until
// its stdout ends); the pool task and the lease holder share it too. The line
// only borrows the process: the pool task and the worker task own that, and
// once both have let go (the worker has exited, and every call on the line
// was refused or answered by the cut) a call the line would still write finds
// the process gone. A line that owned its process would keep both alive for
// as long as the process kept its router.
//
// A frame that is not the reply to the waiting call (a pong, a late reply to
// a call that timed out, a reply nobody asked for) is left to the process's
// events and so to the pool task, which treats the unexpected ones as
// protocol errors. A stale reply can therefore never reach the next caller.

#include "shared.hpp"

#include <seedpool/core/process.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace seedpool::detail {

struct CallRecord {
  Instant finished_at;
  Duration duration;
  std::optional<ErrorCode> error;  // nullopt: a reply
  bool answered = false;           // the worker answered (reply or error frame)
};

class CallLine final : public FrameRouter {
 public:
  // Records kept before the lease holder must hand them to the pool task.
  static constexpr std::size_t records_max = 64;

  CallLine(World& world, WorkerRef worker, std::weak_ptr<Process> process);

  // The lease holder, in this order: begin() takes a request id for a call
  // started at `started` (or refuses: the line is cut, or a call is
  // already waiting), send() writes the call
  // frame, wait() waits for the answer until `deadline`. A failed send
  // leaves the call waiting: the holder tells the pool, which answers it.
  Result<std::uint64_t> begin(Instant started);
  Status send(std::uint64_t request_id, std::string payload);
  struct Waited {
    std::optional<CallReply> reply;  // nullopt: the deadline passed first
    bool records_full = false;       // the pool should take the records now
  };
  Waited wait(std::uint64_t request_id, Instant deadline);

  // The pool task. Refuses every later call with `error` and answers a call
  // still waiting with it. Only the first cut's error is kept.
  void cut(const Error& error);
  // The pool task: answers call `request_id` if it is the one waiting.
  bool answer(std::uint64_t request_id, CallReply reply, bool answered_by_worker);
  // The pool task: a request id for a frame of its own (a ping), from the
  // same sequence as the calls'.
  std::uint64_t take_request_id();
  // The request id of the call waiting for its answer, or `none`.
  static constexpr std::uint64_t none = 0;
  std::uint64_t waiting() const;
  // Whether the line can serve its next holder: not cut, and no call
  // waiting. A line whose call timed out is cut: the reply is still owed.
  bool reusable() const;
  // The calls the worker has answered on this line (a reply or an error
  // frame), whoever took their records: what max_calls counts.
  std::uint64_t answered_calls() const;
  // The pool task: swaps the records of the calls finished since the last
  // take into `records`, whose old contents are dropped (its capacity goes to
  // the line, so that taking does not allocate).
  void take_records(std::vector<CallRecord>& records);

  // The process's router: takes the reply to the waiting call.
  bool route(Frame& frame) override;
  bool expecting() const override { return waiting() != none; }

  // What every call after a timed-out one is refused with.
  static Error reply_owed(WorkerRef worker);

 private:
  // With the monitor held: ends the waiting call with `reply`. The caller
  // notifies once it has released the monitor, so that the woken holder does
  // not block on it at once.
  void finish_locked(CallReply reply, bool answered);
  // Process::read_output of the process, if it is still there.
  bool read_output(Instant deadline) const;

  World& world_;
  const WorkerRef worker_;
  const std::weak_ptr<Process> process_;  // borrowed: see the file comment
  const std::string wait_reason_;
  std::unique_ptr<Monitor> monitor_;  // guards everything below

  std::optional<Error> cut_;
  std::uint64_t next_request_id_ = 2;  // 1 is the init frame's
  std::optional<std::uint64_t> waiting_;
  Instant started_at_;
  std::optional<CallReply> answer_;
  std::vector<CallRecord> records_;
  std::uint64_t answered_calls_ = 0;
};

}  // namespace seedpool::detail
