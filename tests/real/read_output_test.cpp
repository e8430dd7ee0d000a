// Process::read_output on RealWorld: a task waiting for a reply reads the
// process's stdout on its own thread. The frame the router takes never
// reaches events(); every other frame does, in order; the end of the output
// ends the wait; and nothing of it changes that Exited comes last.

#include "real_test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace seedpool::real {
namespace {

using testing::collect;
using testing::exit_code;
using testing::exit_of;
using testing::frames;
using testing::killed_by;
using testing::start;

// Takes the reply with one request id, once.
class OneReply final : public FrameRouter {
 public:
  explicit OneReply(std::uint64_t request_id) : wanted_(request_id) {}

  bool route(Frame& frame) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (taken_ || frame.kind != FrameKind::reply || frame.request_id != wanted_) {
      return false;
    }
    taken_ = std::move(frame);
    return true;
  }
  bool expecting() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return !taken_.has_value();
  }
  std::optional<Frame> taken() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return taken_;
  }

 private:
  const std::uint64_t wanted_;
  mutable std::mutex mutex_;
  std::optional<Frame> taken_;
};

std::unique_ptr<Process> echo(RealWorld& world) { return start(world, testing::py(testing::python_echo, "echo")); }

// Waits for the router's frame as a call does: reading the output itself
// where read_output lets it, else leaving it to the loop for a while.
void read_until_taken(RealWorld& world, Process& process, const OneReply& router) {
  const Instant deadline = world.now() + seconds(10);
  while (router.expecting() && world.now() < deadline) {
    if (!process.read_output(deadline)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

// Sends a call and waits for its reply as a lease holder does.
std::shared_ptr<OneReply> call(RealWorld& world, Process& process, std::uint64_t request_id, std::string payload) {
  auto router = std::make_shared<OneReply>(request_id);
  process.set_router(router);
  EXPECT_TRUE(process.write_frame(Frame{FrameKind::call, request_id, std::move(payload)}).ok());
  read_until_taken(world, process, *router);
  EXPECT_TRUE(router->taken().has_value()) << "no reply to call " << request_id;
  return router;
}

TEST(RealProcessReadOutput, TheWaitingThreadReadsTheReplyItself) {
  RealWorld world;
  auto process = echo(world);
  ASSERT_TRUE(process);
  const auto router = call(world, *process, 7, "seven");
  ASSERT_TRUE(router->taken().has_value());
  EXPECT_EQ(*router->taken(), (Frame{FrameKind::reply, 7, "seven"}));
  ASSERT_TRUE(process->write_frame(Frame{FrameKind::shutdown, 0, {}}).ok());
  const auto events = collect(world, *process);
  EXPECT_TRUE(frames(events).empty()) << "the routed reply also reached events()";
  EXPECT_EQ(exit_of(events), exit_code(0));
}

TEST(RealProcessReadOutput, FramesTheRouterLeavesReachEventsInOrder) {
  RealWorld world;
  auto process = echo(world);
  ASSERT_TRUE(process);
  auto router = std::make_shared<OneReply>(50);
  process->set_router(router);
  for (std::uint64_t id = 1; id <= 50; ++id) {
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, id, std::string(id, 'x')}).ok());
  }
  read_until_taken(world, *process, *router);
  ASSERT_TRUE(router->taken().has_value());
  ASSERT_TRUE(process->write_frame(Frame{FrameKind::shutdown, 0, {}}).ok());
  const auto events = collect(world, *process);
  const std::vector<Frame> left = frames(events);
  ASSERT_EQ(left.size(), 49u);
  for (std::size_t i = 0; i < left.size(); ++i) {
    EXPECT_EQ(left[i], (Frame{FrameKind::reply, i + 1, std::string(i + 1, 'x')}));
  }
}

TEST(RealProcessReadOutput, DeclinesWithoutARouterOrPastTheDeadline) {
  RealWorld world;
  auto process = echo(world);
  ASSERT_TRUE(process);
  EXPECT_FALSE(process->read_output(world.now() + seconds(1))) << "no router: nothing to read for";
  process->set_router(std::make_shared<OneReply>(1));
  EXPECT_FALSE(process->read_output(world.now())) << "the deadline has passed";
  process->signal(Signal::kill);
  (void)collect(world, *process);
}

TEST(RealProcessReadOutput, TheEndOfOutputEndsTheWaitAndExitedStillComesLast) {
  RealWorld world;
  auto launched = start(world, testing::sh("sleep 0.05; exit 3"));
  ASSERT_TRUE(launched);
  Process& process = *launched;
  auto router = std::make_shared<OneReply>(1);
  process.set_router(router);
  const Instant started = world.now();
  const Instant deadline = started + seconds(20);
  while (world.now() < deadline && process.read_output(deadline)) {
  }
  EXPECT_LT(world.now() - started, seconds(10)) << "the end of stdout did not end the wait";
  EXPECT_FALSE(router->taken().has_value());
  const auto events = collect(world, process);
  EXPECT_EQ(exit_of(events), exit_code(3));
}

TEST(RealProcessReadOutput, OutputAfterTheReplyReachesEventsWhenNoCallFollows) {
  // stdout stays with the callers for a while after a reply; with no call
  // coming, the loop takes it back and reads what came meanwhile.
  RealWorld world;
  auto process = echo(world);
  ASSERT_TRUE(process);
  ASSERT_TRUE(call(world, *process, 1, "one")->taken().has_value());
  ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 2, "two"}).ok());  // nobody waits for it
  Received<ProcessEvent> event = process->events().receive(world.now() + seconds(10));
  ASSERT_TRUE(event) << "the reply nobody waited for never reached events()";
  ASSERT_TRUE(std::holds_alternative<FrameReceived>(*event.value));
  EXPECT_EQ(std::get<FrameReceived>(*event.value).frame, (Frame{FrameKind::reply, 2, "two"}));
  process->signal(Signal::kill);
  (void)collect(world, *process);
}

TEST(RealProcessReadOutput, AnExitWhileCallersKeepStdoutIsDeliveredAtOnce) {
  // With a minute of drain time, Exited within the hang guard shows that the
  // exit took stdout back from the callers rather than the drain bound.
  RealWorldConfig config;
  config.drain_after_exit_max = seconds(60);
  config.caller_read_linger = seconds(60);
  RealWorld world(config);
  auto process = echo(world);
  ASSERT_TRUE(process);
  ASSERT_TRUE(call(world, *process, 1, "one")->taken().has_value());
  process->signal(Signal::kill);
  const auto events = collect(world, *process);
  EXPECT_EQ(exit_of(events), killed_by(SIGKILL));
}

TEST(RealProcessReadOutput, ManyCallsWhileTheLoopAlsoReadsLoseNothing) {
  // Replies come back while helpers start and stop and the loop takes over
  // in between; each must be taken by its router exactly once.
  RealWorld world;
  auto process = echo(world);
  ASSERT_TRUE(process);
  for (std::uint64_t id = 1; id <= 300; ++id) {
    auto router = std::make_shared<OneReply>(id);
    process->set_router(router);
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, id, "p"}).ok());
    if (id % 3 != 0) {  // every third call is left to the loop alone
      read_until_taken(world, *process, *router);
    }
    const Instant deadline = world.now() + seconds(10);
    while (router->expecting() && world.now() < deadline) {
      std::this_thread::yield();
    }
    ASSERT_TRUE(router->taken().has_value()) << "reply " << id << " was lost";
  }
  ASSERT_TRUE(process->write_frame(Frame{FrameKind::shutdown, 0, {}}).ok());
  const auto events = collect(world, *process);
  EXPECT_TRUE(frames(events).empty());
}

}  // namespace
}  // namespace seedpool::real
