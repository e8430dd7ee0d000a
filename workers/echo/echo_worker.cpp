// seedpool-echo-worker: a worker that speaks the seedpool frame protocol
// (docs/protocol.md) and answers every call with the call's own payload.
//
// Tests and benchmarks use it where Python's start-up cost would dominate, and
// its flags (echo_options.hpp) make it misbehave on purpose so that the pool's
// handling of each fault can be tested against a real process.
//
// It uses plain POSIX read/write on fds 0 and 1 and the codec from core, so
// the bytes it sends are exactly the ones the pool's decoder expects. It
// leaves by _exit() everywhere: nothing is buffered in user space, and a
// worker that was told to stop has no cleanup worth running.

#include "echo_options.hpp"

#include <seedpool/core/assert.hpp>
#include <seedpool/core/codec.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace seedpool::echo {
namespace {

// Bytes asked of read() at a time; frames larger than this arrive in pieces.
constexpr std::size_t kReadChunkBytes = 64 * 1024;
// Bytes of stderr junk written per write() call.
constexpr std::size_t kJunkChunkBytes = 4096;

// Writes all of `bytes` to `fd`, retrying after EINTR and short writes.
// Returns false on any other error (EPIPE when the reader is gone).
bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t wrote = ::write(fd, bytes.data(), bytes.size());
    if (wrote < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(wrote));
  }
  return true;
}

// One line on stderr, prefixed with the program and pid so that a pool's log
// of many workers stays readable. A failed stderr write is ignored: there is
// nowhere left to report it.
void log_line(std::string_view message) {
  (void)write_all(STDERR_FILENO, fmt::format("seedpool-echo-worker[{}]: {}\n", ::getpid(), message));
}

[[noreturn]] void exit_with(int code, std::string_view message) {
  log_line(message);
  ::_exit(code);
}

// Sleeps for `ms` milliseconds, resuming after signals that were handled.
void sleep_ms(std::uint64_t ms) {
  timespec remaining{static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1'000'000)};
  while (::nanosleep(&remaining, &remaining) != 0 && errno == EINTR) {
  }
}

// Waits for a signal to end the process; nothing else wakes it for good.
[[noreturn]] void hang_forever() {
  for (;;) {
    ::pause();
  }
}

// Returns `text` as a JSON string literal.
std::string json_quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20) {
      out += fmt::format("\\u{:04x}", byte);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// The error payload convention of the reference workers (docs/protocol.md).
std::string error_payload(std::string_view type, std::string_view message) {
  return fmt::format(R"({{"type":{},"message":{},"traceback":""}})", json_quote(type), json_quote(message));
}

// SIGTERM ends the worker at once, whatever it is doing: _exit is
// async-signal-safe, and exiting from the handler has no window in which the
// signal arrives after a flag check but before a blocking read.
extern "C" void on_terminate(int /*signal*/) { ::_exit(kExitOk); }

void install_signal_handlers(bool ignore_term) {
  struct sigaction action{};
  sigemptyset(&action.sa_mask);
  action.sa_handler = ignore_term ? SIG_IGN : on_terminate;
  SEEDPOOL_ASSERT(::sigaction(SIGTERM, &action, nullptr) == 0);
  // A pool that went away shows up as EPIPE from write(), which exits with a
  // message, instead of a silent death by SIGPIPE.
  action.sa_handler = SIG_IGN;
  SEEDPOOL_ASSERT(::sigaction(SIGPIPE, &action, nullptr) == 0);
}

// Writes `bytes` bytes of stderr junk: lines of text mixed with bytes that are
// not UTF-8 (a lone continuation byte, an overlong form, a UTF-16 surrogate, a
// cut-off sequence, 0xff) and a NUL. The last byte is a newline.
void write_stderr_junk(std::uint64_t bytes) {
  using namespace std::string_view_literals;
  static constexpr std::string_view kPattern =
      "junk \xff\xfe text \xc3\x28 more \x80 overlong \xc0\xaf surrogate \xed\xa0\x80 nul \x00 cut \xe2\x82"
      " end of junk line\n"sv;
  static_assert(kPattern.size() > 64, "the pattern spans a few dozen bytes, NUL included");
  std::string chunk;
  std::uint64_t written = 0;
  while (written < bytes) {
    chunk.clear();
    while (chunk.size() < kJunkChunkBytes && written + chunk.size() < bytes) {
      chunk += kPattern[(written + chunk.size()) % kPattern.size()];
    }
    written += chunk.size();
    if (written == bytes) {
      chunk.back() = '\n';
    }
    (void)write_all(STDERR_FILENO, chunk);
  }
}

// Forks a child that stays in this process group and sleeps until a signal
// ends it, as a worker that starts a helper process and forgets it would.
void fork_grandchild() {
  const pid_t child = ::fork();
  if (child < 0) {
    exit_with(kExitIo, fmt::format("fork failed: {}", std::strerror(errno)));
  }
  if (child == 0) {
    hang_forever();
  }
  log_line(fmt::format("forked grandchild {} (it sleeps until killed)", child));
}

class EchoWorker {
 public:
  explicit EchoWorker(const Options& options) : options_(options) {}

  // Serves frames until shutdown, SIGTERM, end of stdin or a deliberate fault.
  [[noreturn]] void run();

 private:
  Frame next_frame();
  void dispatch(const Frame& frame);
  void on_init(const Frame& frame);
  void on_call(const Frame& frame);
  bool misbehave_instead_of_reply(const Frame& reply);
  void send(const Frame& frame);

  const Options& options_;
  FrameDecoder decoder_;
  std::vector<char> read_buffer_ = std::vector<char>(kReadChunkBytes);
  bool initialized_ = false;
  std::uint64_t calls_ = 0;  // calls received, counted from 1
};

void EchoWorker::run() {
  for (;;) {
    dispatch(next_frame());
  }
}

// Returns the next frame from stdin. Exits 0 when the pool closes stdin on a
// frame boundary, and with a message when the stream breaks the protocol.
Frame EchoWorker::next_frame() {
  for (;;) {
    DecodeResult result = decoder_.next();
    if (result.status() == DecodeStatus::frame) {
      return std::move(result).frame();
    }
    if (result.status() == DecodeStatus::error) {
      exit_with(kExitProtocol, fmt::format("stdin broke the protocol: {}", result.error().describe()));
    }
    const ssize_t got = ::read(STDIN_FILENO, read_buffer_.data(), read_buffer_.size());
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      exit_with(kExitIo, fmt::format("reading stdin failed: {}", std::strerror(errno)));
    }
    if (got == 0) {
      if (const std::optional<DecodeError> failure = decoder_.at_end_of_stream()) {
        exit_with(kExitProtocol, fmt::format("stdin broke the protocol: {}", failure->describe()));
      }
      exit_with(kExitOk, "stdin closed by the pool; exiting");
    }
    decoder_.feed(std::string_view(read_buffer_.data(), static_cast<std::size_t>(got)));
  }
}

void EchoWorker::dispatch(const Frame& frame) {
  if (!initialized_ && frame.kind != FrameKind::init) {
    exit_with(kExitProtocol, fmt::format("the first frame was {} (request id {}), not init",
                                         to_string(frame.kind), frame.request_id));
  }
  switch (frame.kind) {
    case FrameKind::init:
      if (initialized_) {
        exit_with(kExitProtocol, fmt::format("a second init frame arrived (request id {})", frame.request_id));
      }
      on_init(frame);
      return;
    case FrameKind::call: on_call(frame); return;
    case FrameKind::ping:
      if (!options_.no_pong) {
        send(Frame{FrameKind::pong, frame.request_id, {}});
      }
      return;
    case FrameKind::shutdown: exit_with(kExitOk, "shutdown frame received; exiting");
    case FrameKind::ready:
    case FrameKind::reply:
    case FrameKind::error:
    case FrameKind::pong: break;
  }
  exit_with(kExitProtocol, fmt::format("the pool sent a {} frame (request id {}), which only workers send",
                                       to_string(frame.kind), frame.request_id));
}

void EchoWorker::on_init(const Frame& frame) {
  if (options_.exit_on_init) {
    exit_with(static_cast<int>(*options_.exit_on_init),
              fmt::format("exiting with code {} on init (--exit-on-init)", *options_.exit_on_init));
  }
  if (options_.hang_init) {
    log_line("init received; never answering it (--hang-init)");
    hang_forever();
  }
  if (options_.slow_init_ms) {
    sleep_ms(*options_.slow_init_ms);
  }
  const Result<InitInfo> info = parse_init_payload(frame.payload);
  if (!info) {
    send(Frame{FrameKind::error, frame.request_id, error_payload("BadInit", info.error().message)});
    exit_with(kExitUsage, info.error().message);
  }
  if (info.value().protocol_version != kProtocolVersion) {
    const std::string message = fmt::format("the pool speaks protocol {}, this worker speaks {}",
                                            info.value().protocol_version, kProtocolVersion);
    send(Frame{FrameKind::error, frame.request_id, error_payload("ProtocolVersionMismatch", message)});
    exit_with(kExitUsage, message);
  }
  if (options_.fail_init) {
    send(Frame{FrameKind::error, frame.request_id, error_payload("InitFailed", "init failed on purpose (--fail-init)")});
    exit_with(kExitCrashed, "answered init with an error (--fail-init)");
  }
  send(Frame{FrameKind::ready, frame.request_id, {}});
  initialized_ = true;
  log_line(fmt::format("initialized as worker_id {}", info.value().worker_id));
  if (options_.close_stdin) {
    SEEDPOOL_ASSERT(::close(STDIN_FILENO) == 0);
    log_line("closed stdin; waiting for a signal (--close-stdin)");
    hang_forever();
  }
}

void EchoWorker::on_call(const Frame& frame) {
  ++calls_;
  if (options_.crash_after == calls_) {
    (void)write_all(STDERR_FILENO,
                    fmt::format("Traceback (most recent call last):\n"
                                "  File \"echo_worker.cpp\", in EchoWorker::on_call\n"
                                "    crash on call {0}\n"
                                "RuntimeError: seedpool-echo-worker crashed on purpose at call {0} "
                                "(request id {1}, --crash-after)\n",
                                calls_, frame.request_id));
    ::_exit(kExitCrashed);
  }
  if (options_.hang_after == calls_) {
    log_line(fmt::format("call {} received; answering nothing from now on (--hang-after)", calls_));
    hang_forever();
  }
  if (options_.reply_delay_ms) {
    sleep_ms(*options_.reply_delay_ms);
  }
  Frame reply{FrameKind::reply, frame.request_id, frame.payload};
  if (options_.wrong_id_after == calls_) {
    reply.request_id = frame.request_id + 1;
  }
  if (!misbehave_instead_of_reply(reply)) {
    send(reply);
  }
}

// Applies --garbage-after and --truncate-after to this call's reply. Returns
// true when the reply must not be sent.
bool EchoWorker::misbehave_instead_of_reply(const Frame& reply) {
  if (options_.garbage_after == calls_) {
    // Text where a frame belongs: the length field reads "this", far above
    // any frame_bytes_max, like a worker that prints to stdout.
    if (!write_all(STDOUT_FILENO, "this is not a frame: garbage written on purpose (--garbage-after)\n")) {
      exit_with(kExitIo, fmt::format("writing stdout failed: {}", std::strerror(errno)));
    }
    return true;
  }
  if (options_.truncate_after == calls_) {
    const std::string bytes = encode_frame(reply);
    (void)write_all(STDOUT_FILENO, std::string_view(bytes).substr(0, bytes.size() / 2));
    exit_with(kExitTruncated, fmt::format("wrote {} of {} bytes of a reply, then exiting (--truncate-after)",
                                          bytes.size() / 2, bytes.size()));
  }
  return false;
}

void EchoWorker::send(const Frame& frame) {
  if (!write_all(STDOUT_FILENO, encode_frame(frame))) {
    exit_with(kExitIo, fmt::format("writing a {} frame to stdout failed: {}", to_string(frame.kind),
                                   std::strerror(errno)));
  }
}

}  // namespace
}  // namespace seedpool::echo

int main(int argc, char** argv) {
  using namespace seedpool::echo;
  const std::vector<std::string> args(argv + 1, argv + argc);
  const seedpool::Result<Options> parsed = parse_options(args);
  if (!parsed) {
    (void)write_all(STDERR_FILENO, fmt::format("seedpool-echo-worker: {}\n", parsed.error().message));
    return kExitUsage;
  }
  const Options& options = parsed.value();
  if (options.help) {
    (void)write_all(STDOUT_FILENO, usage_text());
    return kExitOk;
  }
  install_signal_handlers(options.ignore_term);
  (void)write_all(STDERR_FILENO, fmt::format("echo worker {} ready\n", ::getpid()));
  if (options.stderr_bytes) {
    write_stderr_junk(*options.stderr_bytes);
  }
  if (options.fork_grandchild) {
    fork_grandchild();
  }
  EchoWorker worker(options);
  worker.run();
}
