"""Test support: run a worker program as a subprocess and speak frames to it.

Plays the pool's side of docs/protocol.md with deadlines on every wait, so a
misbehaving worker fails a test instead of hanging it. Used by
test_seedpool_worker.py and test_echo_worker.py; not part of the worker API.
"""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import subprocess
import threading
import time
from typing import Any, List, Optional, Sequence

from seedpool_worker import FRAME_HEADER_BYTES, Frame, FrameKind, encode_frame

#: Default wait for anything a worker should do promptly.
WAIT_SECONDS = 10.0
#: Bytes asked of one read of the worker's stdout.
READ_CHUNK_BYTES = 65536


class WorkerProcess:
    """One worker process in its own process group, with stderr collected."""

    def __init__(self, argv: Sequence[str], env: Optional[dict] = None) -> None:
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            start_new_session=True,
        )
        self._stdout = bytearray()
        self._stdout_closed = False
        self._stderr = bytearray()
        self._stderr_lock = threading.Lock()
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()

    def __enter__(self) -> "WorkerProcess":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.kill_group()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        while True:
            data = os.read(fd, READ_CHUNK_BYTES)
            if not data:
                return
            with self._stderr_lock:
                self._stderr += data

    # ------------------------------------------------------------ stdin

    def send_raw(self, data: bytes) -> None:
        """Write bytes to the worker's stdin and flush them."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, kind: FrameKind, request_id: int, payload: bytes = b"") -> None:
        """Write one frame to the worker's stdin."""
        self.send_raw(encode_frame(Frame(kind, request_id, payload)))

    def close_stdin(self) -> None:
        """Close the worker's stdin, as a pool that goes away would."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    # ------------------------------------------------------------ stdout

    def _fill(self, deadline: float) -> bool:
        """Read more stdout bytes before the deadline; False at EOF."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no output from the worker in time; stderr:\n{self.stderr_text()}")
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            raise TimeoutError(f"no output from the worker in time; stderr:\n{self.stderr_text()}")
        data = os.read(fd, READ_CHUNK_BYTES)
        if not data:
            self._stdout_closed = True
            return False
        self._stdout += data
        return True

    def read_frame(self, timeout: float = WAIT_SECONDS) -> Optional[Frame]:
        """Return the next frame, or None when stdout ends on a frame boundary.

        Raises TimeoutError when no whole frame arrives in time, and
        AssertionError when stdout ends inside a frame.
        """
        deadline = time.monotonic() + timeout
        while True:
            if len(self._stdout) >= FRAME_HEADER_BYTES:
                (length,) = struct.unpack(">I", self._stdout[:4])
                if len(self._stdout) >= 4 + length:
                    frame = Frame(
                        FrameKind(self._stdout[4]),
                        int.from_bytes(self._stdout[5:13], "big"),
                        bytes(self._stdout[13 : 4 + length]),
                    )
                    del self._stdout[: 4 + length]
                    return frame
            if self._stdout_closed or not self._fill(deadline):
                assert not self._stdout, f"stdout ended inside a frame: {bytes(self._stdout)!r}"
                return None

    def read_all_stdout(self, timeout: float = WAIT_SECONDS) -> bytes:
        """Return every stdout byte not yet returned as a frame, up to EOF."""
        deadline = time.monotonic() + timeout
        while not self._stdout_closed and self._fill(deadline):
            pass
        data = bytes(self._stdout)
        self._stdout.clear()
        return data

    def expect_no_frame(self, seconds: float) -> None:
        """Assert that no frame arrives for `seconds`."""
        try:
            frame = self.read_frame(timeout=seconds)
        except TimeoutError:
            return
        raise AssertionError(f"expected silence, got {frame!r}")

    # ------------------------------------------------------------ protocol

    def handshake(self, worker_id: int = 1, protocol: int = 1, request_id: int = 1) -> Frame:
        """Send init and return the worker's answer (ready or error)."""
        payload = json.dumps({"protocol": protocol, "worker_id": worker_id}, separators=(",", ":"))
        self.send(FrameKind.INIT, request_id, payload.encode())
        frame = self.read_frame()
        assert (
            frame is not None
        ), f"stdout closed instead of answering init; stderr:\n{self.stderr_text()}"
        return frame

    def call(self, request_id: int, payload: bytes, timeout: float = WAIT_SECONDS) -> Frame:
        """Send a call frame and return the frame that answers it."""
        self.send(FrameKind.CALL, request_id, payload)
        frame = self.read_frame(timeout=timeout)
        assert (
            frame is not None
        ), f"stdout closed instead of answering a call; stderr:\n{self.stderr_text()}"
        return frame

    def call_json(self, request_id: int, handler: str, args: Any) -> Frame:
        """Call `handler` with `args` under the JSON payload convention."""
        return self.call(request_id, json.dumps({"handler": handler, "args": args}).encode())

    # ------------------------------------------------------------ lifetime

    def wait(self, timeout: float = WAIT_SECONDS, drain_stderr: bool = True) -> int:
        """Return the exit code (negative: killed by that signal).

        With drain_stderr it also waits until stderr is read to its end, so
        that stderr_text() holds all the worker wrote. Pass False when a
        surviving child process keeps stderr open.
        """
        code = self.proc.wait(timeout=timeout)
        if drain_stderr:
            self._stderr_thread.join(timeout=timeout)
            assert not self._stderr_thread.is_alive(), "stderr stayed open after the worker exited"
        return code

    def alive_after(self, seconds: float) -> bool:
        """True when the worker is still running after `seconds`."""
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return True
        return False

    def signal(self, signum: int) -> None:
        """Send a signal to the worker process itself."""
        self.proc.send_signal(signum)

    def kill_group(self) -> None:
        """SIGKILL the worker's whole process group and reap the worker."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=WAIT_SECONDS)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass
        self._stderr_thread.join(timeout=WAIT_SECONDS)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    # ------------------------------------------------------------ stderr

    def stderr_bytes(self) -> bytes:
        """Everything the worker wrote to stderr so far."""
        with self._stderr_lock:
            return bytes(self._stderr)

    def stderr_text(self) -> str:
        """stderr so far, decoded with replacement characters."""
        return self.stderr_bytes().decode("utf-8", errors="replace")

    def wait_for_stderr(self, text: str, timeout: float = WAIT_SECONDS) -> str:
        """Wait until stderr contains `text`; return stderr so far."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr_text():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"stderr never contained {text!r}; it was:\n{self.stderr_text()}"
                )
            time.sleep(0.01)
        return self.stderr_text()


def json_payload(frame: Frame) -> Any:
    """Decode a frame's payload as JSON."""
    return json.loads(frame.payload.decode("utf-8"))


def process_gone(pid: int) -> bool:
    """True when `pid` no longer exists or is a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return True
    return fields[0] == b"Z"


def wait_until_gone(pids: List[int], timeout: float = WAIT_SECONDS) -> bool:
    """Wait until every pid is gone or a zombie; False if one outlives the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(process_gone(pid) for pid in pids):
            return True
        time.sleep(0.02)
    return False
