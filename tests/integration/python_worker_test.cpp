// The pool with the Python reference worker (workers/python): eager start of
// several interpreters, calls answered by the example handlers, handler
// exceptions as worker errors, a worker killed while idle or inside a call,
// and an init hook that fails.

#include "integration/integration_support.hpp"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace seedpool::integration {
namespace {

using PythonWorker = PoolIntegrationTest;

std::string call_payload(std::string_view handler, std::string_view args) {
  return "{\"handler\":\"" + std::string(handler) + "\",\"args\":" + std::string(args) + "}";
}

// A worker with one slow handler, for killing a worker inside a call. It logs
// before it sleeps so that the test knows the call has reached the handler.
constexpr const char* sleeper_code = R"(
import logging, time
from seedpool_worker import Worker
log = logging.getLogger("sleeper")
worker = Worker()

@worker.handler("sleep")
def sleep(args):
    log.info("sleeping %s s inside the call", args["seconds"])
    time.sleep(args["seconds"])
    return args["seconds"]

worker.run()
)";

TEST_F(PythonWorker, EagerStartOfSeveralWorkersThenCallsAreAnsweredCorrectly) {
  constexpr std::size_t size = 4;
  start_pool(config("py-math", python_example("math_worker.py"), size));
  ASSERT_FALSE(HasFatalFailure());

  const PoolStats started = pool().stats();
  EXPECT_EQ(started.workers_in(WorkerState::ready), static_cast<std::int64_t>(size));
  EXPECT_EQ(started.count(started.inits, "ok"), size);
  const std::vector<pid_t> pids = worker_pids("math_worker.py");
  EXPECT_EQ(pids.size(), size) << "expected one python3 process per worker:" << describe(children());

  Result<std::string> added = pool().execute(call_payload("add", R"({"a":1,"b":2})"));
  ASSERT_TRUE(added.ok()) << added.error().describe();
  EXPECT_EQ(added.value(), "3");
  Result<std::string> summed = pool().execute(call_payload("sum", R"({"values":[1,2,3,4,5,6,7,8,9,10]})"));
  ASSERT_TRUE(summed.ok()) << summed.error().describe();
  EXPECT_EQ(summed.value(), "55");

  // Callers on several threads at once, each checking its own answers.
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int caller = 0; caller < 4; ++caller) {
    callers.emplace_back([&, caller] {
      for (int i = 0; i < 25; ++i) {
        const int a = caller * 1000 + i;
        Result<std::string> r = pool().execute(call_payload("add", R"({"a":)" + std::to_string(a) + R"(,"b":7})"));
        if (!r.ok() || r.value() != std::to_string(a + 7)) {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& t : callers) {
    t.join();
  }
  EXPECT_EQ(wrong.load(), 0);

  const PoolStats after = pool().stats();
  EXPECT_EQ(after.count(after.calls, "ok"), 102u);
  EXPECT_EQ(after.worker_exits, 0u);
  EXPECT_EQ(worker_pids("math_worker.py"), pids) << "no worker should have been replaced";
  shutdown_and_check(std::set<pid_t>(pids.begin(), pids.end()));
}

TEST_F(PythonWorker, HandlerExceptionsBecomeWorkerErrorsAndTheWorkerStays) {
  start_pool(config("py-errors", python_example("math_worker.py"), 1));
  ASSERT_FALSE(HasFatalFailure());
  const std::vector<pid_t> pids = worker_pids("math_worker.py");
  ASSERT_EQ(pids.size(), 1u);

  Result<std::string> divided = pool().execute(call_payload("divide", R"({"a":1,"b":0})"));
  ASSERT_FALSE(divided.ok());
  EXPECT_EQ(divided.error().code, ErrorCode::worker_error) << divided.error().describe();
  EXPECT_TRUE(contains(divided.error().message, "ZeroDivisionError")) << divided.error().describe();
  EXPECT_TRUE(contains(divided.error().message, "Traceback")) << divided.error().describe();

  Result<std::string> rooted = pool().execute(call_payload("sqrt", R"({"x":-1})"));
  ASSERT_FALSE(rooted.ok());
  EXPECT_EQ(rooted.error().code, ErrorCode::worker_error);
  EXPECT_TRUE(contains(rooted.error().message, "ValueError")) << rooted.error().describe();
  EXPECT_TRUE(contains(rooted.error().message, "sqrt of a negative number")) << rooted.error().describe();

  Result<std::string> unknown = pool().execute(call_payload("cube", "{}"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::worker_error);
  EXPECT_TRUE(contains(unknown.error().message, "UnknownHandler")) << unknown.error().describe();

  // The traceback the worker logs reaches the log sink too.
  EXPECT_TRUE(eventually(world(), [&] { return recorder_.line_with("ZeroDivisionError").has_value(); }));

  Result<std::string> rooted_ok = pool().execute(call_payload("sqrt", R"({"x":16})"));
  ASSERT_TRUE(rooted_ok.ok()) << rooted_ok.error().describe();
  EXPECT_EQ(rooted_ok.value(), "4.0");
  EXPECT_EQ(pool().stats().worker_exits, 0u);
  EXPECT_EQ(worker_pids("math_worker.py"), pids) << "a failed call must not replace the worker";
  shutdown_and_check(std::set<pid_t>(pids.begin(), pids.end()));
}

TEST_F(PythonWorker, WorkerKilledWhileIdleIsReplacedAndLaterCallsSucceed) {
  start_pool(config("py-idle-kill", python_example("math_worker.py"), 2));
  ASSERT_FALSE(HasFatalFailure());
  const std::vector<pid_t> before = worker_pids("math_worker.py");
  ASSERT_EQ(before.size(), 2u);

  ASSERT_TRUE(kill_child(before[0]));
  ASSERT_TRUE(eventually(world(), [&] { return pool().stats().worker_exits >= 1; }));
  ASSERT_TRUE(settles_at(2));
  const std::vector<pid_t> after = worker_pids("math_worker.py");
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(std::count(after.begin(), after.end(), before[0]), 0) << "the killed worker is still listed";
  EXPECT_EQ(std::count(after.begin(), after.end(), before[1]), 1) << "the other worker must be untouched";

  const std::vector<TelemetryEvent> exits = recorder_.events(TelemetryKind::worker_exit);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].detail, "killed by signal 9");

  for (int i = 0; i < 20; ++i) {
    Result<std::string> r = pool().execute(call_payload("add", R"({"a":)" + std::to_string(i) + R"(,"b":1})"));
    ASSERT_TRUE(r.ok()) << "call " << i << ": " << r.error().describe();
    EXPECT_EQ(r.value(), std::to_string(i + 1));
  }
  std::set<pid_t> groups(before.begin(), before.end());
  groups.insert(after.begin(), after.end());
  shutdown_and_check(groups);
}

TEST_F(PythonWorker, WorkerKilledInsideACallFailsThatCallWithItsStderrTailAndIsReplaced) {
  start_pool(config("py-call-kill", python_code(sleeper_code, "seedpool-sleeper"), 1));
  ASSERT_FALSE(HasFatalFailure());
  const std::vector<pid_t> before = worker_pids("seedpool-sleeper");
  ASSERT_EQ(before.size(), 1u);

  std::optional<Result<std::string>> answer;
  std::thread caller([&] { answer = pool().execute(call_payload("sleep", R"({"seconds":600})")); });
  const bool inside = eventually(world(), [&] { return recorder_.line_with("sleeping 600 s").has_value(); });
  if (inside) {
    EXPECT_TRUE(kill_child(before[0]));
  }
  caller.join();  // the call has a 30 s deadline; the kill ends it long before
  ASSERT_TRUE(inside) << "the call never reached the handler";

  ASSERT_TRUE(answer.has_value());
  ASSERT_FALSE(answer->ok());
  const Error& error = answer->error();
  EXPECT_EQ(error.code, ErrorCode::worker_crashed) << error.describe();
  EXPECT_TRUE(contains(error.message, "killed by signal 9")) << error.describe();
  EXPECT_TRUE(contains(error.stderr_tail, "sleeping 600 s inside the call")) << error.describe();

  ASSERT_TRUE(settles_at(1));
  const std::vector<pid_t> after = worker_pids("seedpool-sleeper");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0], before[0]);
  Result<std::string> quick = pool().execute(call_payload("sleep", R"({"seconds":0})"));
  ASSERT_TRUE(quick.ok()) << quick.error().describe();
  EXPECT_EQ(quick.value(), "0");
  shutdown_and_check({before[0], after[0]});
}

TEST_F(PythonWorker, FailingInitHookFailsStartWithTheTracebackAndLeavesNoProcess) {
  PoolConfig c = config("py-init-fail", python_example("slow_init_worker.py"), 1);
  c.command.env = {{"SEEDPOOL_EXAMPLE_INIT_SECONDS", "0"}, {"SEEDPOOL_EXAMPLE_INIT_FAIL", "1"}};
  c.breaker_failures = 2;
  create_pool(c);
  ASSERT_FALSE(HasFatalFailure());

  const Status started = pool().start(world().now() + hang_guard);
  ASSERT_FALSE(started.ok());
  EXPECT_TRUE(contains(started.error().message, "answered init with an error")) << started.error().describe();
  EXPECT_TRUE(contains(started.error().message, "the model could not be loaded")) << started.error().describe();
  // The traceback travels in the error frame's payload. The worker also logs
  // it, but only after sending the frame, and the pool kills a worker whose
  // init failed at once, so the log line may never be written.
  EXPECT_TRUE(contains(started.error().message, "RuntimeError")) << started.error().describe();
  EXPECT_GE(pool().stats().count(pool().stats().inits, "worker_error"), 2u);
  EXPECT_TRUE(eventually(world(), [] { return worker_pids("slow_init_worker.py").empty(); }))
      << "a worker that failed init is still running:" << describe(children());
  shutdown_and_check();
}

}  // namespace
}  // namespace seedpool::integration
