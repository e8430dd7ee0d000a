// The call line and its worker process own each other one way only: the
// process owns the line (as its frame router), the line borrows the process.
// Once the process's owners let go it is freed although its line lives on,
// and a call the line would still write finds the worker gone.

#include "pool/call_line.hpp"
#include "pool/pool_test_support.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace seedpool::detail {
namespace {

using namespace pooltest;

// A process that keeps its router, as every World's process does, and the
// frames written to it.
class KeptRouterProcess final : public Process {
 public:
  explicit KeptRouterProcess(World& world) : events_(world, "events", 4) {}
  std::int64_t pid() const override { return 42; }
  Status write_frame(Frame frame) override {
    written.push_back(std::move(frame));
    return {};
  }
  Channel<ProcessEvent>& events() override { return events_; }
  void signal(Signal) override {}
  void set_router(std::shared_ptr<FrameRouter> router) override { router_ = std::move(router); }

  std::vector<Frame> written;

 private:
  Channel<ProcessEvent> events_;
  std::shared_ptr<FrameRouter> router_;
};

TEST(CallLine, TheProcessOwnsItsLineAndTheLineOnlyBorrowsTheProcess) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto process = std::make_shared<KeptRouterProcess>(world);
    auto line = std::make_shared<CallLine>(world, WorkerRef{0, 1}, process);
    process->set_router(line);
    const std::weak_ptr<KeptRouterProcess> watched = process;
    const std::weak_ptr<CallLine> watched_line = line;

    const Result<std::uint64_t> first = line->begin(world.now());
    ASSERT_TRUE(first.ok());
    EXPECT_TRUE(line->send(first.value(), "while it lives").ok());
    ASSERT_EQ(process->written.size(), 1u);
    EXPECT_EQ(process->written.front().payload, "while it lives");
    Frame reply{FrameKind::reply, first.value(), "answer"};
    ASSERT_TRUE(line->route(reply));
    EXPECT_EQ(line->wait(first.value(), world.now() + seconds(1)).reply->value(), "answer");

    // The last owner lets go: the process is freed, with the line it held,
    // though the line was its router and is still in use here.
    process.reset();
    EXPECT_TRUE(watched.expired()) << "the line keeps its process alive";
    EXPECT_FALSE(watched_line.expired());
    const Result<std::uint64_t> second = line->begin(world.now());
    ASSERT_TRUE(second.ok());
    const Status sent = line->send(second.value(), "too late");
    ASSERT_FALSE(sent.ok());
    EXPECT_EQ(sent.error().code, ErrorCode::closed);
    EXPECT_TRUE(contains(sent.error().message, "worker w0.1 has exited")) << sent.error().message;
    line->cut(Error{ErrorCode::worker_crashed, "worker w0.1 exited", {}});
    const CallLine::Waited waited = line->wait(second.value(), world.now() + seconds(1));
    ASSERT_TRUE(waited.reply.has_value());
    EXPECT_EQ(waited.reply->error().code, ErrorCode::worker_crashed);
    line.reset();
    EXPECT_TRUE(watched_line.expired());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// What the next holder of a worker may rely on, read from the line alone by
// whoever checks the worker in: a line is reusable until a call on it times
// out (the reply is still owed) or it is cut, and it counts the calls the
// worker answered, with a reply or an error frame, whoever takes the records.
TEST(CallLine, ItSaysWhetherItCanServeAgainAndCountsAnsweredCalls) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto process = std::make_shared<KeptRouterProcess>(world);
    auto line = std::make_shared<CallLine>(world, WorkerRef{0, 1}, process);
    process->set_router(line);
    EXPECT_TRUE(line->reusable());
    EXPECT_EQ(line->answered_calls(), 0u);

    const Result<std::uint64_t> replied = line->begin(world.now());
    ASSERT_TRUE(replied.ok());
    EXPECT_FALSE(line->reusable()) << "a call is waiting";
    Frame reply{FrameKind::reply, replied.value(), "answer"};
    ASSERT_TRUE(line->route(reply));
    ASSERT_TRUE(line->wait(replied.value(), world.now() + seconds(1)).reply.has_value());
    const Result<std::uint64_t> errored = line->begin(world.now());
    ASSERT_TRUE(errored.ok());
    ASSERT_TRUE(line->answer(errored.value(), CallReply(Error{ErrorCode::worker_error, "no", {}}), true));
    ASSERT_TRUE(line->wait(errored.value(), world.now() + seconds(1)).reply.has_value());
    std::vector<CallRecord> records;
    line->take_records(records);
    EXPECT_EQ(records.size(), 2u);
    EXPECT_EQ(line->answered_calls(), 2u) << "taking the records keeps the count";
    EXPECT_TRUE(line->reusable());

    const Result<std::uint64_t> unanswered = line->begin(world.now());
    ASSERT_TRUE(unanswered.ok());
    EXPECT_FALSE(line->wait(unanswered.value(), world.now() + milliseconds(10)).reply.has_value());
    EXPECT_FALSE(line->reusable()) << "the worker still owes the reply";
    EXPECT_EQ(line->answered_calls(), 2u);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

}  // namespace
}  // namespace seedpool::detail
