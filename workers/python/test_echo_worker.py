"""Tests of the C++ seedpool-echo-worker, run as a subprocess and spoken to in frames.

The binary comes from the environment variable SEEDPOOL_ECHO_WORKER (CTest
sets it to build/bin/seedpool-echo-worker); without it these tests are skipped.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import unittest
from typing import List

import seedpool_worker as sw
from worker_harness import WorkerProcess, json_payload, wait_until_gone

ECHO_WORKER = os.environ.get("SEEDPOOL_ECHO_WORKER", "")

# Exit codes of seedpool-echo-worker (its --help lists them).
EXIT_CRASHED = 1
EXIT_USAGE = 2
EXIT_TRUNCATED = 3
EXIT_PROTOCOL = 4


@unittest.skipUnless(
    ECHO_WORKER, "SEEDPOOL_ECHO_WORKER is not set (CTest sets it to the built binary)"
)
class EchoWorkerTest(unittest.TestCase):
    def start(self, *flags: str) -> WorkerProcess:
        worker = WorkerProcess([ECHO_WORKER, *flags])
        self.addCleanup(worker.kill_group)
        return worker

    def start_ready(self, *flags: str) -> WorkerProcess:
        worker = self.start(*flags)
        ready = worker.handshake(worker_id=3)
        self.assertEqual(ready, sw.Frame(sw.FrameKind.READY, 1, b""), worker.stderr_text())
        return worker

    # ------------------------------------------------------------ well behaved

    def test_handshake_call_ping_shutdown(self) -> None:
        worker = self.start_ready()
        worker.wait_for_stderr(f"echo worker {worker.proc.pid} ready")
        worker.wait_for_stderr("initialized as worker_id 3")
        payload = bytes(range(256)) * 3
        self.assertEqual(worker.call(2, payload), sw.Frame(sw.FrameKind.REPLY, 2, payload))
        self.assertEqual(worker.call(3, b""), sw.Frame(sw.FrameKind.REPLY, 3, b""))
        worker.send(sw.FrameKind.PING, 4)
        self.assertEqual(worker.read_frame(), sw.Frame(sw.FrameKind.PONG, 4, b""))
        worker.send(sw.FrameKind.SHUTDOWN, 0)
        self.assertEqual(worker.wait(), 0)
        self.assertIsNone(worker.read_frame())

    def test_large_payload_and_pipelined_calls(self) -> None:
        worker = self.start_ready()
        big = os.urandom(3 * 1024 * 1024)
        for request_id in range(2, 6):
            worker.send(sw.FrameKind.CALL, request_id, big[: request_id * 1000])
        worker.send(sw.FrameKind.CALL, 6, big)
        for request_id in range(2, 6):
            self.assertEqual(
                worker.read_frame(),
                sw.Frame(sw.FrameKind.REPLY, request_id, big[: request_id * 1000]),
            )
        self.assertEqual(worker.read_frame(), sw.Frame(sw.FrameKind.REPLY, 6, big))

    def test_sigterm_and_stdin_eof_exit_0(self) -> None:
        worker = self.start_ready()
        worker.signal(signal.SIGTERM)
        self.assertEqual(worker.wait(), 0)
        worker = self.start_ready()
        worker.close_stdin()
        self.assertEqual(worker.wait(), 0)

    def test_protocol_violations_from_the_pool_exit_4(self) -> None:
        worker = self.start()
        worker.send(sw.FrameKind.CALL, 2, b"x")
        self.assertEqual(worker.wait(), EXIT_PROTOCOL)
        self.assertIn("the first frame was call", worker.stderr_text())
        worker = self.start_ready()
        worker.send_raw(b"\x00\x00\x00\x09\x2a" + bytes(8))
        self.assertEqual(worker.wait(), EXIT_PROTOCOL)
        self.assertIn("unknown frame kind 42", worker.stderr_text())

    def test_other_protocol_version_is_refused_with_exit_2(self) -> None:
        worker = self.start()
        frame = worker.handshake(protocol=2)
        self.assertEqual(frame.kind, sw.FrameKind.ERROR)
        self.assertEqual(json_payload(frame)["type"], "ProtocolVersionMismatch")
        self.assertEqual(worker.wait(), EXIT_USAGE)

    def test_invalid_flags_exit_2_with_a_message(self) -> None:
        cases: List[List[str]] = [
            ["--bogus"],
            ["--crash-after"],
            ["--crash-after", "0"],
            ["--slow-init", "x"],
            ["--no-pong=1"],
            ["--exit-on-init", "256"],
        ]
        for flags in cases:
            with self.subTest(flags=flags):
                done = subprocess.run(
                    [ECHO_WORKER, *flags], capture_output=True, timeout=10, check=False
                )
                self.assertEqual(done.returncode, EXIT_USAGE)
                self.assertRegex(
                    done.stderr.decode(), r"^seedpool-echo-worker: .*\(see --help\)\n$"
                )
                self.assertEqual(done.stdout, b"")

    # ------------------------------------------------------------ misbehaviour on purpose

    def test_crash_after(self) -> None:
        worker = self.start_ready("--crash-after", "2")
        self.assertEqual(worker.call(2, b"a").kind, sw.FrameKind.REPLY)
        worker.send(sw.FrameKind.CALL, 3, b"b")
        self.assertEqual(worker.wait(), EXIT_CRASHED)
        self.assertIsNone(worker.read_frame())
        self.assertIn("Traceback (most recent call last)", worker.stderr_text())
        self.assertIn("crashed on purpose at call 2", worker.stderr_text())

    def test_hang_after_with_ignore_term_needs_sigkill(self) -> None:
        worker = self.start_ready("--hang-after", "1", "--ignore-term")
        worker.send(sw.FrameKind.CALL, 2, b"a")
        worker.wait_for_stderr("answering nothing")
        worker.send(sw.FrameKind.PING, 3)
        worker.expect_no_frame(0.3)
        worker.signal(signal.SIGTERM)
        self.assertTrue(worker.alive_after(0.3))
        worker.signal(signal.SIGKILL)
        self.assertEqual(worker.wait(), -signal.SIGKILL)

    def test_hang_init_until_sigterm(self) -> None:
        worker = self.start("--hang-init")
        worker.send(sw.FrameKind.INIT, 1, b'{"protocol":1,"worker_id":1}')
        worker.expect_no_frame(0.3)
        worker.signal(signal.SIGTERM)
        self.assertEqual(worker.wait(), 0)

    def test_slow_init_and_reply_delay(self) -> None:
        started = time.monotonic()
        worker = self.start_ready("--slow-init", "200", "--reply-delay-ms", "150")
        self.assertGreaterEqual(time.monotonic() - started, 0.2)
        started = time.monotonic()
        self.assertEqual(worker.call(2, b"x").payload, b"x")
        self.assertGreaterEqual(time.monotonic() - started, 0.15)

    def test_fail_init_and_exit_on_init(self) -> None:
        worker = self.start("--fail-init")
        frame = worker.handshake()
        self.assertEqual((frame.kind, frame.request_id), (sw.FrameKind.ERROR, 1))
        self.assertEqual(json_payload(frame)["type"], "InitFailed")
        self.assertEqual(worker.wait(), EXIT_CRASHED)
        worker = self.start("--exit-on-init", "7")
        worker.send(sw.FrameKind.INIT, 1, b'{"protocol":1,"worker_id":1}')
        self.assertEqual(worker.wait(), 7)
        self.assertIsNone(worker.read_frame())

    def test_garbage_truncate_and_wrong_id(self) -> None:
        worker = self.start_ready("--garbage-after", "1")
        worker.send(sw.FrameKind.CALL, 2, b"x")
        worker.send(sw.FrameKind.SHUTDOWN, 0)
        self.assertEqual(worker.wait(), 0)
        self.assertTrue(worker.read_all_stdout().startswith(b"this is not a frame"))
        worker = self.start_ready("--truncate-after", "2")
        self.assertEqual(worker.call(2, b"abcdef").payload, b"abcdef")
        worker.send(sw.FrameKind.CALL, 3, b"abcdef")
        self.assertEqual(worker.wait(), EXIT_TRUNCATED)
        self.assertEqual(len(worker.read_all_stdout()), (13 + 6) // 2)
        worker = self.start_ready("--wrong-id-after", "1")
        self.assertEqual(worker.call(2, b"x"), sw.Frame(sw.FrameKind.REPLY, 3, b"x"))
        self.assertEqual(worker.call(4, b"y"), sw.Frame(sw.FrameKind.REPLY, 4, b"y"))

    def test_no_pong(self) -> None:
        worker = self.start_ready("--no-pong")
        worker.send(sw.FrameKind.PING, 2)
        worker.expect_no_frame(0.3)
        self.assertEqual(worker.call(3, b"still answers calls").request_id, 3)

    def test_stderr_junk_with_invalid_utf8(self) -> None:
        worker = self.start_ready("--stderr-bytes", "10000")
        self.assertEqual(worker.call(2, b"x").payload, b"x")
        worker.send(sw.FrameKind.SHUTDOWN, 0)
        self.assertEqual(worker.wait(), 0)
        junk = worker.stderr_bytes()
        self.assertGreater(len(junk), 10000)
        self.assertIn(b"\xff\xfe", junk)
        self.assertIn(b"\x00", junk)
        with self.assertRaises(UnicodeDecodeError):
            junk.decode("utf-8")

    def test_close_stdin_then_wait_for_a_signal(self) -> None:
        worker = self.start_ready("--close-stdin")
        worker.wait_for_stderr("closed stdin")
        with self.assertRaises(BrokenPipeError):
            for request_id in range(2, 1000):
                worker.send(sw.FrameKind.CALL, request_id, b"x" * 4096)
        self.assertTrue(worker.alive_after(0.1))
        worker.signal(signal.SIGTERM)
        self.assertEqual(worker.wait(), 0)

    def test_fork_grandchild_dies_with_the_group(self) -> None:
        worker = self.start_ready("--fork-grandchild")
        match = re.search(r"forked grandchild (\d+)", worker.wait_for_stderr("forked grandchild"))
        assert match is not None
        grandchild = int(match.group(1))
        self.assertEqual(os.getpgid(grandchild), worker.proc.pid)
        worker.send(sw.FrameKind.SHUTDOWN, 0)
        self.assertEqual(worker.wait(drain_stderr=False), 0)
        # The worker is gone, its grandchild is not: only a group kill ends it.
        self.assertFalse(wait_until_gone([grandchild], timeout=0.2))
        os.killpg(worker.proc.pid, signal.SIGKILL)
        self.assertTrue(wait_until_gone([grandchild]))


if __name__ == "__main__":
    unittest.main()
