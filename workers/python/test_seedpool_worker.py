"""Tests of seedpool_worker.py: the worker runs as a subprocess and is spoken to in frames.

Run with: python3 -m unittest discover -s workers/python
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
from pathlib import Path
from typing import Any, List, Optional, Tuple

import seedpool_worker as sw
from worker_harness import WorkerProcess, json_payload

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE / "examples"

# A worker with one handler per behaviour under test. Its init hook obeys
# FIXTURE_INIT ("fail" or "slow"); FIXTURE_FRAME_BYTES_MAX sets its limit.
FIXTURE = textwrap.dedent(
    """
    import logging, os, subprocess, sys, time
    from seedpool_worker import Worker

    limit = int(os.environ.get("FIXTURE_FRAME_BYTES_MAX", 16 * 1024 * 1024))
    worker = Worker(frame_bytes_max=limit)
    log = logging.getLogger("fixture")

    @worker.on_init
    def init(info):
        print("printed by the init hook")
        mode = os.environ.get("FIXTURE_INIT", "")
        if mode == "fail":
            raise RuntimeError("init failed on purpose")
        if mode == "slow":
            log.info("init hook sleeping")
            time.sleep(30)

    @worker.handler("echo")
    def echo(args):
        return args

    @worker.handler("sleep")
    def sleep(args):
        log.info("sleeping %s s", args["seconds"])
        time.sleep(args["seconds"])
        return "slept"

    @worker.handler("print")
    def print_(args):
        print("printed by a handler")
        os.write(1, b"raw bytes on fd 1\\n")
        subprocess.run(["sh", "-c", "echo output of a child process"], check=True)
        return "printed"

    @worker.handler("unserialisable")
    def unserialisable(args):
        return object()

    @worker.handler("big")
    def big(args):
        return "x" * args["n"]

    def inner(value):
        raise KeyError(value)

    @worker.handler("fail")
    def fail(args):
        inner(args["key"])

    worker.run()
    """
)


class WorkerTestCase(unittest.TestCase):
    """Starts worker scripts with seedpool_worker importable."""

    fixture_dir: tempfile.TemporaryDirectory
    fixture_path: Path

    @classmethod
    def setUpClass(cls) -> None:
        cls.fixture_dir = tempfile.TemporaryDirectory()
        cls.fixture_path = Path(cls.fixture_dir.name) / "fixture_worker.py"
        cls.fixture_path.write_text(FIXTURE)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.fixture_dir.cleanup()

    def start(self, script: Path, env: Optional[dict] = None) -> WorkerProcess:
        full_env = {"PYTHONPATH": str(HERE)}
        full_env.update(env or {})
        worker = WorkerProcess([sys.executable, str(script)], env=full_env)
        self.addCleanup(worker.kill_group)
        return worker

    def start_ready(self, script: Path, env: Optional[dict] = None) -> WorkerProcess:
        worker = self.start(script, env)
        ready = worker.handshake(worker_id=7)
        self.assertEqual(ready.kind, sw.FrameKind.READY, worker.stderr_text())
        return worker

    def assert_error_frame(self, frame: sw.Frame, request_id: int, error_type: str) -> dict:
        self.assertEqual(frame.kind, sw.FrameKind.ERROR, frame)
        self.assertEqual(frame.request_id, request_id)
        body = json_payload(frame)
        self.assertEqual(body["type"], error_type, body)
        return body


def serve_in_process(worker: sw.Worker, frames: List[sw.Frame]) -> Tuple[int, List[sw.Frame]]:
    """Serve init (worker id 3) and `frames` from a byte stream; return the exit code and the answers."""
    frames_in = io.BytesIO(
        sw.encode_frame(sw.Frame(sw.FrameKind.INIT, 1, b'{"protocol":1,"worker_id":3}'))
        + b"".join(sw.encode_frame(frame) for frame in frames)
    )
    frames_out = io.BytesIO()
    # A handler of its own keeps the worker from configuring this
    # process's logging, so the test run's output stays clean.
    quiet = logging.NullHandler()
    logging.getLogger().addHandler(quiet)
    try:
        code = worker.serve(frames_in, frames_out)
    finally:
        logging.getLogger().removeHandler(quiet)
    frames_out.seek(0)
    answers = []
    while True:
        frame = sw.read_frame(frames_out)
        if frame is None:
            return code, answers
        answers.append(frame)


def call_frame(request_id: int, payload: bytes) -> sw.Frame:
    return sw.Frame(sw.FrameKind.CALL, request_id, payload)


class CodecTest(unittest.TestCase):
    """The frame encoding, in process."""

    def test_worked_example_of_docs_protocol_md(self) -> None:
        frame = sw.Frame(sw.FrameKind.CALL, 2, b'{"handler":"echo","args":{"x":1}}')
        encoded = sw.encode_frame(frame)
        self.assertEqual(
            encoded.hex(" "),
            "00 00 00 2a 03 00 00 00 00 00 00 00 02 7b 22 68 61 6e 64 6c 65 72 22 3a 22 65 "
            "63 68 6f 22 2c 22 61 72 67 73 22 3a 7b 22 78 22 3a 31 7d 7d",
        )
        self.assertEqual(sw.read_frame(io.BytesIO(encoded)), frame)

    def test_empty_payload_is_thirteen_bytes(self) -> None:
        encoded = sw.encode_frame(sw.Frame(sw.FrameKind.PONG, 2**64 - 1))
        self.assertEqual(encoded, bytes.fromhex("00000009 07 ffffffffffffffff"))

    def test_read_frame_rejects_what_the_pool_rejects(self) -> None:
        cases = {
            "below the minimum": struct.pack(">I", 8) + b"\x03" + bytes(8),
            "exceeds frame_bytes_max": struct.pack(">I", 100) + b"\x03" + bytes(8),
            "unknown frame kind 9": struct.pack(">IBQ", 9, 9, 1),
            "ended inside a frame": struct.pack(">IBQ", 12, 3, 1) + b"ab",
        }
        for expected, data in cases.items():
            with self.subTest(expected), self.assertRaisesRegex(sw.ProtocolError, expected):
                sw.read_frame(io.BytesIO(data), frame_bytes_max=64)
        self.assertIsNone(sw.read_frame(io.BytesIO(b"")))

    def test_parse_init_payload(self) -> None:
        self.assertEqual(sw.parse_init_payload(b'{"protocol":1,"worker_id":7}'), sw.InitInfo(1, 7))
        self.assertEqual(
            sw.parse_init_payload(b' {"worker_id":0, "protocol":2, "later":true}'),
            sw.InitInfo(2, 0),
        )
        for bad in (b"", b"[]", b'{"protocol":1}', b'{"protocol":true,"worker_id":1}', b"\xff"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                sw.parse_init_payload(bad)

    def test_handler_registration_rules(self) -> None:
        worker = sw.Worker()
        worker.handler("a")(lambda args: args)
        with self.assertRaisesRegex(ValueError, "already registered"):
            worker.handler("a")(lambda args: args)
        with self.assertRaisesRegex(ValueError, "non-empty"):
            worker.handler("")
        self.assertEqual(worker.handler_names, ["a"])

    def test_serve_on_given_streams(self) -> None:
        worker = sw.Worker()
        worker.handler("echo")(lambda args: args)
        frames_in = io.BytesIO(
            sw.encode_frame(sw.Frame(sw.FrameKind.INIT, 1, b'{"protocol":1,"worker_id":3}'))
            + sw.encode_frame(sw.Frame(sw.FrameKind.CALL, 2, b'{"handler":"echo","args":[1,2]}'))
            + sw.encode_frame(sw.Frame(sw.FrameKind.SHUTDOWN, 0))
        )
        frames_out = io.BytesIO()
        # A handler of its own keeps the worker from configuring this
        # process's logging, so the test run's output stays clean.
        quiet = logging.NullHandler()
        logging.getLogger().addHandler(quiet)
        try:
            self.assertEqual(worker.serve(frames_in, frames_out), sw.EXIT_OK)
        finally:
            logging.getLogger().removeHandler(quiet)
        frames_out.seek(0)
        self.assertEqual(sw.read_frame(frames_out), sw.Frame(sw.FrameKind.READY, 1))
        self.assertEqual(sw.read_frame(frames_out), sw.Frame(sw.FrameKind.REPLY, 2, b"[1, 2]"))
        self.assertIsNone(sw.read_frame(frames_out))
        self.assertEqual(worker.init_info, sw.InitInfo(1, 3))

    def test_replies_are_what_json_dumps_writes(self) -> None:
        values: List[Any] = [
            {"x": 1},
            [1, 2.5, -0.0, 1e300, None, True, False, "é ✓ \u2028 \"q\" \\ \n"],
            {"nested": {"a": [{}, []]}, "int": 2**80},
            "text",
            3,
            float("nan"),
            float("-inf"),
            {1: "key made text", None: "null key"},
        ]
        worker = sw.Worker()
        worker.handler("value")(lambda index: values[index])
        code, answers = serve_in_process(
            worker,
            [call_frame(i + 2, b'{"handler":"value","args":%d}' % i) for i in range(len(values))],
        )
        self.assertEqual(code, sw.EXIT_OK)
        self.assertEqual(answers[0].kind, sw.FrameKind.READY)
        for value, answer in zip(values, answers[1:]):
            with self.subTest(value=value):
                self.assertEqual(answer.kind, sw.FrameKind.REPLY, answer)
                self.assertEqual(
                    answer.payload, json.dumps(value, ensure_ascii=False).encode("utf-8")
                )

    def test_a_failed_encoding_leaves_nothing_behind(self) -> None:
        shared: List[Any] = [object()]
        worker = sw.Worker()

        @worker.handler("shared")
        def handler(_args: Any) -> Any:
            return shared

        @worker.handler("fix")
        def fix(_args: Any) -> Any:
            shared[0] = 1
            return None

        call = b'{"handler":"shared"}'
        _, answers = serve_in_process(
            worker,
            [call_frame(2, call), call_frame(3, b'{"handler":"fix"}'), call_frame(4, call)],
        )
        self.assertEqual(json_payload(answers[1])["type"], "TypeError")
        self.assertEqual(answers[3], sw.Frame(sw.FrameKind.REPLY, 4, b"[1]"))

    def test_payloads_the_quick_path_declines_get_json_loads_verdict(self) -> None:
        worker = sw.Worker()
        worker.handler("echo")(lambda args: args)
        _, answers = serve_in_process(
            worker,
            [
                call_frame(2, b' \t{"handler": "echo", "args": [1]}\r\n '),
                call_frame(3, b'{"handler":"echo"} x'),
                call_frame(4, b"[" * 100000),
                call_frame(5, b'{"handler":["echo"]}'),
                call_frame(6, b'{"handler":"none"}'),
                call_frame(7, b'"echo"'),
                call_frame(8, b'{"args":1,"handler":"echo"}'),
            ],
        )
        self.assertEqual(answers[1], sw.Frame(sw.FrameKind.REPLY, 2, b"[1]"))
        body = json_payload(answers[2])
        self.assertEqual(body["type"], "BadRequest")
        self.assertIn("Extra data", body["message"])
        self.assertEqual(json_payload(answers[3])["type"], "BadRequest")
        self.assertEqual(json_payload(answers[4])["type"], "BadRequest")
        self.assertEqual(json_payload(answers[5])["type"], "UnknownHandler")
        self.assertEqual(json_payload(answers[6])["type"], "BadRequest")
        self.assertEqual(answers[7], sw.Frame(sw.FrameKind.REPLY, 8, b"1"))

    def test_frames_larger_than_one_read(self) -> None:
        worker = sw.Worker()
        worker.handler("echo")(lambda args: args)
        text = "z" * (300 * 1024)
        payload = json.dumps({"handler": "echo", "args": text}).encode()
        _, answers = serve_in_process(worker, [call_frame(2, payload), call_frame(3, payload)])
        self.assertEqual([json_payload(answer) for answer in answers[1:]], [text, text])

    def test_importing_and_setting_up_a_worker_imports_little(self) -> None:
        code = textwrap.dedent(
            """
            import sys
            before = set(sys.modules)
            import seedpool_worker
            worker = seedpool_worker.Worker()
            worker.handler("echo")(lambda args: args)
            print(" ".join(sorted(set(sys.modules) - before)))
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(HERE)},
            timeout=30,
            check=True,
        )
        imported = set(done.stdout.decode().split())
        heavy = {"json", "logging", "enum", "typing", "dataclasses", "traceback", "threading", "re"}
        self.assertEqual(imported & heavy, set(), f"imported: {sorted(imported)}")


class HandshakeTest(WorkerTestCase):
    def test_ready_answers_init_with_its_request_id(self) -> None:
        worker = self.start(EXAMPLES / "echo_worker.py")
        ready = worker.handshake(worker_id=7, request_id=1)
        self.assertEqual(ready, sw.Frame(sw.FrameKind.READY, 1, b""))
        worker.wait_for_stderr("ready as worker_id 7 with handlers echo")

    def test_init_hook_runs_before_ready(self) -> None:
        worker = self.start(
            EXAMPLES / "slow_init_worker.py", {"SEEDPOOL_EXAMPLE_INIT_SECONDS": "0.3"}
        )
        started = time.monotonic()
        self.assertEqual(worker.handshake(worker_id=5).kind, sw.FrameKind.READY)
        self.assertGreaterEqual(time.monotonic() - started, 0.3)
        info = json_payload(worker.call_json(2, "init_info", {}))
        self.assertEqual(info["worker_id"], 5)
        self.assertGreaterEqual(info["init_seconds"], 0.3)

    def test_failing_init_hook_sends_error_with_traceback_and_exits_1(self) -> None:
        worker = self.start(
            EXAMPLES / "slow_init_worker.py",
            {"SEEDPOOL_EXAMPLE_INIT_SECONDS": "0", "SEEDPOOL_EXAMPLE_INIT_FAIL": "1"},
        )
        body = self.assert_error_frame(worker.handshake(), 1, "RuntimeError")
        self.assertIn("could not be loaded", body["message"])
        self.assertIn("Traceback (most recent call last)", body["traceback"])
        self.assertIn("in load", body["traceback"])
        self.assertEqual(worker.wait(), sw.EXIT_INIT_FAILED)
        self.assertIn("init hook failed", worker.stderr_text())
        self.assertIn("RuntimeError: the model could not be loaded", worker.stderr_text())

    def test_other_protocol_version_is_refused_with_exit_2(self) -> None:
        worker = self.start(EXAMPLES / "echo_worker.py")
        body = self.assert_error_frame(worker.handshake(protocol=2), 1, "ProtocolVersionMismatch")
        self.assertIn("protocol 2", body["message"])
        self.assertEqual(worker.wait(), sw.EXIT_INCOMPATIBLE)

    def test_malformed_init_payload_is_refused_with_exit_2(self) -> None:
        worker = self.start(EXAMPLES / "echo_worker.py")
        worker.send(sw.FrameKind.INIT, 1, b"not json")
        self.assert_error_frame(worker.read_frame(), 1, "BadInit")
        self.assertEqual(worker.wait(), sw.EXIT_INCOMPATIBLE)

    def test_first_frame_other_than_init_is_a_protocol_error(self) -> None:
        worker = self.start(EXAMPLES / "echo_worker.py")
        worker.send(sw.FrameKind.CALL, 2, b"{}")
        self.assertEqual(worker.wait(), sw.EXIT_PROTOCOL)
        self.assertIn("the first frame was call, not init", worker.stderr_text())
        self.assertIsNone(worker.read_frame())

    def test_stdin_closed_before_init_exits_0(self) -> None:
        worker = self.start(EXAMPLES / "echo_worker.py")
        worker.close_stdin()
        self.assertEqual(worker.wait(), sw.EXIT_OK)

    def test_sigterm_during_a_slow_init_exits_promptly(self) -> None:
        worker = self.start(self.fixture_path, {"FIXTURE_INIT": "slow"})
        worker.send(sw.FrameKind.INIT, 1, b'{"protocol":1,"worker_id":1}')
        worker.wait_for_stderr("init hook sleeping")
        worker.signal(signal.SIGTERM)
        self.assertEqual(worker.wait(timeout=5), sw.EXIT_OK)


class CallTest(WorkerTestCase):
    def test_echo_returns_args_with_the_same_request_id(self) -> None:
        worker = self.start_ready(EXAMPLES / "echo_worker.py")
        args = {"text": "héllo ✓", "list": [1, 2.5, None, True], "nested": {"a": {}}}
        for request_id in (2, 3, 2**64 - 1):
            reply = worker.call_json(request_id, "echo", args)
            self.assertEqual(reply.kind, sw.FrameKind.REPLY)
            self.assertEqual(reply.request_id, request_id)
            self.assertEqual(json_payload(reply), args)

    def test_args_default_to_an_empty_object(self) -> None:
        worker = self.start_ready(EXAMPLES / "echo_worker.py")
        self.assertEqual(json_payload(worker.call(2, b'{"handler":"echo"}')), {})

    def test_large_payload_round_trip(self) -> None:
        worker = self.start_ready(EXAMPLES / "echo_worker.py")
        args = "y" * (4 * 1024 * 1024)
        self.assertEqual(json_payload(worker.call_json(2, "echo", args)), args)

    def test_math_handlers(self) -> None:
        worker = self.start_ready(EXAMPLES / "math_worker.py")
        self.assertEqual(json_payload(worker.call_json(2, "add", {"a": 2, "b": 3})), 5)
        self.assertEqual(json_payload(worker.call_json(3, "sum", {"values": [1, 2, 3]})), 6)
        self.assertEqual(json_payload(worker.call_json(4, "sqrt", {"x": 9})), 3.0)

    def test_exception_becomes_error_frame_with_traceback(self) -> None:
        worker = self.start_ready(EXAMPLES / "math_worker.py")
        body = self.assert_error_frame(
            worker.call_json(9, "divide", {"a": 1, "b": 0}), 9, "ZeroDivisionError"
        )
        self.assertEqual(body["message"], "division by zero")
        self.assertEqual(body["handler"], "divide")
        self.assertTrue(body["traceback"].startswith("Traceback (most recent call last)"), body)
        self.assertIn("in divide", body["traceback"])
        stderr = worker.wait_for_stderr("ZeroDivisionError: division by zero")
        self.assertIn("handler 'divide' failed (request id 9)", stderr)
        # The worker goes on serving after a failed call.
        self.assertEqual(json_payload(worker.call_json(10, "add", {"a": 1, "b": 1})), 2)

    def test_traceback_names_the_frames_inside_the_handler(self) -> None:
        worker = self.start_ready(self.fixture_path)
        body = self.assert_error_frame(
            worker.call_json(2, "fail", {"key": "missing"}), 2, "KeyError"
        )
        self.assertIn("in fail", body["traceback"])
        self.assertIn("in inner", body["traceback"])

    def test_deliberate_value_error(self) -> None:
        worker = self.start_ready(EXAMPLES / "math_worker.py")
        body = self.assert_error_frame(worker.call_json(2, "sqrt", {"x": -1}), 2, "ValueError")
        self.assertIn("negative", body["message"])

    def test_bad_requests_are_answered_and_the_worker_goes_on(self) -> None:
        worker = self.start_ready(EXAMPLES / "echo_worker.py")
        self.assert_error_frame(worker.call(2, b"\xff\xfe"), 2, "BadRequest")
        self.assert_error_frame(worker.call(3, b"[1, 2]"), 3, "BadRequest")
        self.assert_error_frame(worker.call(4, b'{"args": {}}'), 4, "BadRequest")
        body = self.assert_error_frame(worker.call_json(5, "nope", {}), 5, "UnknownHandler")
        self.assertIn("'echo'", body["message"])
        self.assertEqual(json_payload(worker.call_json(6, "echo", 1)), 1)

    def test_unserialisable_result_becomes_type_error(self) -> None:
        worker = self.start_ready(self.fixture_path)
        body = self.assert_error_frame(worker.call_json(2, "unserialisable", {}), 2, "TypeError")
        self.assertIn("not JSON serializable", body["message"])

    def test_reply_above_frame_bytes_max_becomes_an_error(self) -> None:
        worker = self.start_ready(self.fixture_path, {"FIXTURE_FRAME_BYTES_MAX": "1024"})
        self.assertEqual(json_payload(worker.call_json(2, "big", {"n": 100})), "x" * 100)
        self.assert_error_frame(worker.call_json(3, "big", {"n": 2000}), 3, "ReplyTooLarge")

    def test_stray_output_goes_to_stderr_not_to_the_frames(self) -> None:
        worker = self.start_ready(self.fixture_path)
        self.assertEqual(json_payload(worker.call_json(2, "print", {})), "printed")
        stderr = worker.wait_for_stderr("output of a child process")
        for text in ("printed by the init hook", "printed by a handler", "raw bytes on fd 1"):
            self.assertIn(text, stderr)


class RawCallTest(WorkerTestCase):
    """Workers that take raw calls (Worker.on_raw_call) instead of JSON handlers."""

    def test_payloads_come_back_byte_for_byte(self) -> None:
        worker = sw.Worker()
        worker.on_raw_call(lambda payload: payload)
        payloads = [b"", b"\x00\xff\xfe not UTF-8", b'{"handler":"echo"}', bytes(range(256)) * 400]
        code, answers = serve_in_process(
            worker, [call_frame(i + 2, payload) for i, payload in enumerate(payloads)]
        )
        self.assertEqual(code, sw.EXIT_OK)
        self.assertEqual(
            answers[1:],
            [sw.Frame(sw.FrameKind.REPLY, i + 2, payload) for i, payload in enumerate(payloads)],
        )

    def test_failures_become_error_frames_without_a_handler_name(self) -> None:
        worker = sw.Worker(frame_bytes_max=1024)

        @worker.on_raw_call
        def answer(payload: bytes) -> Any:
            if payload == b"fail":
                raise RuntimeError("failed on purpose")
            if payload == b"text":
                return "not bytes"
            if payload == b"big":
                return b"x" * 2000
            return bytearray(payload)

        _, answers = serve_in_process(
            worker,
            [call_frame(2, b"fail"), call_frame(3, b"text"), call_frame(4, b"big"), call_frame(5, b"ok")],
        )
        failed = json_payload(answers[1])
        self.assertEqual((failed["type"], failed["message"]), ("RuntimeError", "failed on purpose"))
        self.assertIn("in answer", failed["traceback"])
        self.assertNotIn("handler", failed)
        wrong = json_payload(answers[2])
        self.assertEqual(wrong["type"], "TypeError")
        self.assertIn("returned str, not bytes", wrong["message"])
        self.assertEqual(json_payload(answers[3])["type"], "ReplyTooLarge")
        self.assertEqual(answers[4], sw.Frame(sw.FrameKind.REPLY, 5, b"ok"))

    def test_a_worker_has_named_handlers_or_raw_calls(self) -> None:
        worker = sw.Worker()
        worker.on_raw_call(lambda payload: payload)
        with self.assertRaisesRegex(ValueError, "already registered"):
            worker.on_raw_call(lambda payload: payload)
        with self.assertRaisesRegex(ValueError, "on_raw_call"):
            worker.handler("echo")(lambda args: args)
        worker = sw.Worker()
        worker.handler("echo")(lambda args: args)
        with self.assertRaisesRegex(ValueError, "named handlers"):
            worker.on_raw_call(lambda payload: payload)

    def test_raw_echo_example(self) -> None:
        worker = self.start_ready(EXAMPLES / "raw_echo_worker.py")
        payload = b"\xff\x00 any bytes " * 5000
        self.assertEqual(worker.call(2, payload), sw.Frame(sw.FrameKind.REPLY, 2, payload))
        worker.wait_for_stderr("ready as worker_id 7 with raw calls")
        worker.send(sw.FrameKind.SHUTDOWN, 0)
        self.assertEqual(worker.wait(), sw.EXIT_OK)


class LifecycleTest(WorkerTestCase):
    def test_ping_is_answered_with_pong_of_the_same_id(self) -> None:
        worker = self.start_ready(EXAMPLES / "echo_worker.py")
        worker.send(sw.FrameKind.PING, 41)
        self.assertEqual(worker.read_frame(), sw.Frame(sw.FrameKind.PONG, 41, b""))

    def test_shutdown_frame_exits_0(self) -> None:
        worker = self.start_ready(EXAMPLES / "echo_worker.py")
        worker.send(sw.FrameKind.SHUTDOWN, 0)
        self.assertEqual(worker.wait(timeout=5), sw.EXIT_OK)
        self.assertIsNone(worker.read_frame())
        self.assertIn("shutdown frame received", worker.stderr_text())

    def test_sigterm_while_idle_exits_0_promptly(self) -> None:
        worker = self.start_ready(EXAMPLES / "echo_worker.py")
        worker.signal(signal.SIGTERM)
        self.assertEqual(worker.wait(timeout=5), sw.EXIT_OK)

    def test_sigterm_during_a_call_answers_it_then_exits_0(self) -> None:
        worker = self.start_ready(self.fixture_path)
        worker.send(
            sw.FrameKind.CALL,
            2,
            json.dumps({"handler": "sleep", "args": {"seconds": 0.5}}).encode(),
        )
        worker.wait_for_stderr("sleeping 0.5 s")
        worker.signal(signal.SIGTERM)
        reply = worker.read_frame()
        self.assertEqual(reply, sw.Frame(sw.FrameKind.REPLY, 2, b'"slept"'))
        self.assertEqual(worker.wait(timeout=5), sw.EXIT_OK)

    def test_stdin_closed_by_the_pool_exits_0(self) -> None:
        worker = self.start_ready(EXAMPLES / "echo_worker.py")
        worker.close_stdin()
        self.assertEqual(worker.wait(timeout=5), sw.EXIT_OK)
        self.assertIn("stdin closed by the pool", worker.stderr_text())

    def test_stdin_ending_inside_a_frame_is_a_protocol_error(self) -> None:
        worker = self.start_ready(EXAMPLES / "echo_worker.py")
        worker.send_raw(sw.encode_frame(sw.Frame(sw.FrameKind.CALL, 2, b"{}"))[:7])
        worker.close_stdin()
        self.assertEqual(worker.wait(timeout=5), sw.EXIT_PROTOCOL)
        self.assertIn("ended inside a frame", worker.stderr_text())

    def test_oversized_or_unknown_frames_are_protocol_errors(self) -> None:
        cases = {
            "exceeds frame_bytes_max": struct.pack(">IBQ", 64 * 1024 * 1024, 3, 2),
            "unknown frame kind 42": struct.pack(">IBQ", 9, 42, 2),
            "which only workers send": sw.encode_frame(sw.Frame(sw.FrameKind.REPLY, 2)),
            "a second init frame": sw.encode_frame(sw.Frame(sw.FrameKind.INIT, 2, b"{}")),
        }
        for expected, data in cases.items():
            with self.subTest(expected):
                worker = self.start_ready(EXAMPLES / "echo_worker.py")
                worker.send_raw(data)
                self.assertEqual(worker.wait(timeout=5), sw.EXIT_PROTOCOL)
                self.assertIn(expected, worker.stderr_text())

    def test_frames_split_across_reads_or_sent_together(self) -> None:
        worker = self.start_ready(EXAMPLES / "echo_worker.py")
        data = sw.encode_frame(call_frame(2, b'{"handler":"echo","args":"split"}'))
        for piece in (data[:3], data[3:11], data[11:20], data[20:]):
            worker.send_raw(piece)
            time.sleep(0.02)
        self.assertEqual(worker.read_frame(), sw.Frame(sw.FrameKind.REPLY, 2, b'"split"'))
        worker.send_raw(
            sw.encode_frame(sw.Frame(sw.FrameKind.PING, 3))
            + sw.encode_frame(call_frame(4, b'{"handler":"echo","args":4}'))
            + sw.encode_frame(sw.Frame(sw.FrameKind.PING, 5))
        )
        self.assertEqual(worker.read_frame(), sw.Frame(sw.FrameKind.PONG, 3))
        self.assertEqual(worker.read_frame(), sw.Frame(sw.FrameKind.REPLY, 4, b"4"))
        self.assertEqual(worker.read_frame(), sw.Frame(sw.FrameKind.PONG, 5))

    def test_log_lines_look_the_same_with_or_without_the_logging_module(self) -> None:
        line = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO seedpool\.worker\[%d\]: ready as worker_id 7 with handlers %s\n"
        # echo_worker.py never imports logging; math_worker.py does.
        for script, handlers in (("echo_worker.py", "echo"), ("math_worker.py", "add, divide, sqrt, sum")):
            with self.subTest(script):
                worker = self.start_ready(EXAMPLES / script)
                stderr = worker.wait_for_stderr("ready as worker_id")
                self.assertRegex(stderr, line % (worker.proc.pid, re.escape(handlers)))

    def test_logging_goes_to_stderr_only(self) -> None:
        worker = self.start_ready(EXAMPLES / "math_worker.py")
        self.assertEqual(json_payload(worker.call_json(2, "sum", {"values": [1]})), 1)
        worker.wait_for_stderr("summing 1 values")
        worker.send(sw.FrameKind.SHUTDOWN, 0)
        self.assertEqual(worker.wait(), sw.EXIT_OK)
        self.assertEqual(worker.read_all_stdout(), b"")


if __name__ == "__main__":
    unittest.main()
