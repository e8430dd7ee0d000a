// RealWorld::launch failures: each is a launch_failed naming the program and
// the errno text, returned at once; none leaves a zombie or a descriptor.

#include "real_test_support.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>

namespace seedpool::real {
namespace {

using testing::collect;
using testing::contains;
using testing::exit_of;

// A scratch directory removed with its contents at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "seedpool-real-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  // Writes `text` to `name` with permissions `mode` and returns its path.
  std::string file(const std::string& name, const std::string& text, mode_t mode) const {
    const std::string path = path_ + "/" + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class LaunchFailure : public ::testing::Test {
 protected:
  void SetUp() override { fds_before_ = testing::open_fd_count(); }
  void TearDown() override {
    EXPECT_TRUE(testing::zombie_children().empty());
    EXPECT_EQ(testing::open_fd_count(), fds_before_);  // the world's own are counted in both
  }

  // Launches `spec`, which must fail; returns the message.
  std::string failure(const ProcessSpec& spec) {
    Result<std::unique_ptr<Process>> launched = world_.launch(spec);
    if (launched.ok()) {
      ADD_FAILURE() << "launch of '" << spec.program << "' succeeded";
      launched.value()->signal(Signal::kill);
      static_cast<void>(collect(world_, *launched.value()));
      return {};
    }
    EXPECT_EQ(launched.error().code, ErrorCode::launch_failed);
    EXPECT_TRUE(contains(launched.error().message, "cannot launch '" + spec.program + "'"))
        << launched.error().message;
    return launched.error().message;
  }

  std::size_t fds_before_ = 0;
  RealWorld world_;
};

ProcessSpec program(std::string path) {
  ProcessSpec spec;
  spec.program = std::move(path);
  spec.name = "worker";
  return spec;
}

TEST_F(LaunchFailure, AMissingProgramNamesThePathAndErrno) {
  const std::string message = failure(program("/nope/worker"));
  EXPECT_EQ(message, "cannot launch '/nope/worker': No such file or directory (errno 2)");
}

TEST_F(LaunchFailure, AFileWithoutExecutePermissionIsRefused) {
  const ScratchDir dir;
  const std::string path = dir.file("worker.py", "print('hi')\n", 0644);
  EXPECT_TRUE(contains(failure(program(path)), "Permission denied (errno 13)"));
}

TEST_F(LaunchFailure, ADirectoryIsRefusedAsADirectory) {
  const ScratchDir dir;
  const std::string message = failure(program(dir.path()));
  EXPECT_EQ(message, "cannot launch '" + dir.path() + "': Is a directory (errno 21)");
}

TEST_F(LaunchFailure, ABareNameFoundOnPathOnlyAsADirectoryIsRefusedAsADirectory) {
  const ScratchDir dir;
  std::filesystem::create_directory(dir.path() + "/seedpool-worker-dir");
  ProcessSpec spec = program("seedpool-worker-dir");
  spec.env = {{"PATH", "/nonexistent:" + dir.path()}};
  const std::string message = failure(spec);
  EXPECT_TRUE(contains(message, "Is a directory (errno 21)")) << message;
}

TEST_F(LaunchFailure, AnExecutableTheKernelCannotRunIsPosixSpawnsErrorAndLeavesNoZombie) {
  const ScratchDir dir;
  const std::string path = dir.file("garbage", std::string("\x7f" "ELF not really", 14), 0755);
  EXPECT_TRUE(contains(failure(program(path)), "Exec format error (errno 8)"));
}

TEST_F(LaunchFailure, ABareNameMissingFromPathSaysWhereItLooked) {
  ProcessSpec spec = program("seedpool-no-such-worker");
  spec.env = {{"PATH", "/nonexistent:/also/not/here"}};
  const std::string message = failure(spec);
  EXPECT_TRUE(contains(message, "No such file or directory (errno 2)")) << message;
  EXPECT_TRUE(contains(message, "PATH=/nonexistent:/also/not/here")) << message;
}

TEST_F(LaunchFailure, AMissingWorkingDirectoryIsNamed) {
  ProcessSpec spec = testing::sh("exit 0");
  spec.working_dir = "/nonexistent/dir";
  const std::string message = failure(spec);
  EXPECT_TRUE(contains(message, "No such file or directory (errno 2)")) << message;
  EXPECT_TRUE(contains(message, "working directory '/nonexistent/dir'")) << message;
}

TEST_F(LaunchFailure, AWorkingDirectoryThatIsAFileIsRefused) {
  const ScratchDir dir;
  ProcessSpec spec = testing::sh("exit 0");
  spec.working_dir = dir.file("plain", "", 0644);
  EXPECT_TRUE(contains(failure(spec), "Not a directory (errno 20)"));
}

TEST_F(LaunchFailure, AnInvalidEnvironmentNameIsRefused) {
  ProcessSpec spec = testing::sh("exit 0");
  spec.env = {{"A=B", "c"}};
  EXPECT_TRUE(contains(failure(spec), "environment variable name 'A=B'"));
}

TEST_F(LaunchFailure, AnEmptyProgramIsRefused) {
  Result<std::unique_ptr<Process>> launched = world_.launch(ProcessSpec{});
  ASSERT_FALSE(launched.ok());
  EXPECT_EQ(launched.error().code, ErrorCode::launch_failed);
}

TEST(Launch, ABareNameIsFoundOnPath) {
  RealWorld world;
  ProcessSpec spec;
  spec.program = "sh";
  spec.args = {"-c", "exit 4"};
  spec.env = {{"PATH", "/nonexistent:/usr/bin:/bin"}};
  Result<std::unique_ptr<Process>> launched = testing::launch_ok(world, spec);
  ASSERT_TRUE(launched.ok());
  EXPECT_EQ(exit_of(collect(world, *launched.value())), testing::exit_code(4));
}

TEST(Launch, ARelativeProgramIsFoundFromTheWorkingDirectory) {
  const ScratchDir dir;
  dir.file("worker.sh", "#!/bin/sh\nexit 6\n", 0755);
  RealWorld world;
  ProcessSpec spec = program("./worker.sh");
  spec.working_dir = dir.path();
  Result<std::unique_ptr<Process>> launched = testing::launch_ok(world, spec);
  ASSERT_TRUE(launched.ok());
  EXPECT_EQ(exit_of(collect(world, *launched.value())), testing::exit_code(6));
}

}  // namespace
}  // namespace seedpool::real
