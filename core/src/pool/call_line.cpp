// The path of a lease's calls; see call_line.hpp.

#include "call_line.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

namespace seedpool::detail {

Error CallLine::reply_owed(WorkerRef worker) {
  return Error{ErrorCode::timeout,
               fmt::format("call to worker {} timed out; the worker was killed because its reply was still in flight",
                           worker.to_string()),
               {}};
}

CallLine::CallLine(World& world, WorkerRef worker, std::weak_ptr<Process> process)
    : world_(world),
      worker_(worker),
      process_(std::move(process)),
      wait_reason_(fmt::format("call reply from worker {}", worker.to_string())),
      monitor_(world.make_monitor(fmt::format("worker {} calls", worker.to_string()))) {
  records_.reserve(records_max);
}

Result<std::uint64_t> CallLine::begin(Instant started) {
  MonitorLock lock(*monitor_);
  if (cut_) {
    return *cut_;
  }
  if (waiting_) {
    return Error{ErrorCode::invalid_argument, "a call is already in flight on this lease", {}};
  }
  const std::uint64_t request_id = next_request_id_++;
  waiting_ = request_id;
  started_at_ = started;
  answer_.reset();
  return request_id;
}

Status CallLine::send(std::uint64_t request_id, std::string payload) {
  const std::shared_ptr<Process> process = process_.lock();
  if (process == nullptr) {
    return Error{ErrorCode::closed, fmt::format("worker {} has exited", worker_.to_string()), {}};
  }
  return process->write_frame(Frame{FrameKind::call, request_id, std::move(payload)});
}

bool CallLine::read_output(Instant deadline) const {
  const std::shared_ptr<Process> process = process_.lock();
  return process != nullptr && process->read_output(deadline);
}

CallLine::Waited CallLine::wait(std::uint64_t request_id, Instant deadline) {
  MonitorLock lock(*monitor_);
  while (!answer_) {
    SEEDPOOL_ASSERT(waiting_ == request_id);
    // Where the World lets this task read the reply itself, the reply wakes
    // it directly instead of waking the World's reader first.
    monitor_->unlock();
    const bool read = read_output(deadline);
    monitor_->lock();
    if (read) {
      continue;
    }
    if (!monitor_->wait_until(deadline, wait_reason_) && !answer_) {
      // The worker still owes the reply: no call may follow on this line,
      // and the holder has the pool kill the worker.
      const Instant now = world_.now();
      records_.push_back(CallRecord{now, now - started_at_, ErrorCode::timeout, false});
      waiting_.reset();
      if (!cut_) {
        cut_ = reply_owed(worker_);
      }
      return {};
    }
  }
  Waited waited{std::move(answer_), records_.size() >= records_max};
  answer_.reset();
  return waited;
}

void CallLine::cut(const Error& error) {
  {
    MonitorLock lock(*monitor_);
    if (!cut_) {
      cut_ = error;
    }
    if (!waiting_) {
      return;
    }
    finish_locked(CallReply(error), false);
  }
  monitor_->notify_all();
}

bool CallLine::answer(std::uint64_t request_id, CallReply reply, bool answered_by_worker) {
  {
    MonitorLock lock(*monitor_);
    if (waiting_ != request_id) {
      return false;
    }
    finish_locked(std::move(reply), answered_by_worker);
  }
  monitor_->notify_all();
  return true;
}

std::uint64_t CallLine::take_request_id() {
  MonitorLock lock(*monitor_);
  return next_request_id_++;
}

std::uint64_t CallLine::waiting() const {
  MonitorLock lock(*monitor_);
  return waiting_.value_or(none);
}

bool CallLine::reusable() const {
  MonitorLock lock(*monitor_);
  return !cut_ && !waiting_;
}

std::uint64_t CallLine::answered_calls() const {
  MonitorLock lock(*monitor_);
  return answered_calls_;
}

void CallLine::take_records(std::vector<CallRecord>& records) {
  records.clear();
  MonitorLock lock(*monitor_);
  records.swap(records_);
}

bool CallLine::route(Frame& frame) {
  if (frame.kind != FrameKind::reply) {
    return false;  // error frames go to the pool task, which adds the stderr tail
  }
  {
    MonitorLock lock(*monitor_);
    if (waiting_ != frame.request_id) {
      return false;
    }
    finish_locked(CallReply(std::move(frame.payload)), true);
  }
  monitor_->notify_all();
  return true;
}

void CallLine::finish_locked(CallReply reply, bool answered) {
  SEEDPOOL_ASSERT(waiting_.has_value() && !answer_.has_value());
  const Instant now = world_.now();
  records_.push_back(CallRecord{now, now - started_at_,
                                reply.ok() ? std::nullopt : std::optional<ErrorCode>(reply.error().code), answered});
  answered_calls_ += answered ? 1 : 0;
  answer_ = std::move(reply);
  waiting_.reset();
}

}  // namespace seedpool::detail
