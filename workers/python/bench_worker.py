#!/usr/bin/env python3
"""Measure a Python worker's two costs: start-up to ready, and one call's round trip.

    python3 workers/python/bench_worker.py startup [--runs 40] [--floor] [-- WORKER ARGV...]
    python3 workers/python/bench_worker.py calls [--calls 20000] [--runs 5] [--floor] [-- WORKER ARGV...]

The worker defaults to ``<this interpreter> examples/echo_worker.py``. With
``--floor`` it is instead the least a Python worker can be, a few lines that
read and write the descriptors directly and answer each call with its own
payload; give only the interpreter and its flags after ``--``. Its figures
are the share of either cost that belongs to the interpreter and the pipes
rather than to the worker.

``startup`` launches the worker (posix_spawn, pipes on stdin and stdout),
writes the init frame at once, as the pool does, and times from just before
the launch to the arrival of the ready frame; then it makes one call and
times the arrival of its reply too, sends shutdown and reaps the worker. It
prints the median and the 10th and 90th percentiles of both over the runs,
in milliseconds. The worker inherits this environment: where
PYTHONDONTWRITEBYTECODE is set, every start compiles the modules that have no
cached bytecode yet.

``calls`` starts one worker, then makes calls one after another (each call
frame written, its reply read, as the pool does: never more than one in
flight) with the payload ``{"handler":"echo","args":{"x":1}}``. For each run
it prints the median and 99th percentile round trip in microseconds and the
worker's own CPU time per call (user + system, from /proc), which is less
disturbed by other load on the machine than wall time.

Standard library only; Linux only (/proc). A measurement tool, not a test.
"""

from __future__ import annotations

import os
import statistics
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = struct.Struct(">IBQ")
INIT_PAYLOAD = b'{"protocol":1,"worker_id":1}'
CALL_PAYLOAD = b'{"handler":"echo","args":{"x":1}}'
KIND_INIT, KIND_READY, KIND_CALL, KIND_REPLY, KIND_SHUTDOWN = 1, 2, 3, 4, 8

# The least a Python worker can do: answer init with ready and each call with
# its own payload, reading and writing fds directly; the floor of both costs.
FLOOR_CODE = """
import os
def read(n):
    b = os.read(0, n)
    while 0 < len(b) < n: b += os.read(0, n - len(b))
    return b
while True:
    head = read(13)
    if len(head) < 13 or head[4] == 8: break
    payload = read(int.from_bytes(head[:4], 'big') - 9)
    kind = 2 if head[4] == 1 else 4
    os.write(1, (b'\\x00\\x00\\x00\\x09' if kind == 2 else head[:4]) + bytes([kind]) + head[5:13] + (payload if kind == 4 else b''))
"""


def frame(kind: int, request_id: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(9 + len(payload), kind, request_id) + payload


class Spawned:
    """A worker process with pipes on its stdin and stdout (stderr inherited)."""

    def __init__(self, argv: list) -> None:
        in_r, self.stdin = os.pipe()
        self.stdout, out_w = os.pipe()
        actions = [
            (os.POSIX_SPAWN_DUP2, in_r, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_CLOSE, self.stdin),
            (os.POSIX_SPAWN_CLOSE, self.stdout),
        ]
        self.pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
        os.close(in_r)
        os.close(out_w)
        self.buffer = bytearray()

    def read_frame(self) -> tuple:
        buffer = self.buffer
        while True:
            if len(buffer) >= 13:
                end = 4 + int.from_bytes(buffer[:4], "big")
                if len(buffer) >= end:
                    kind, request_id, payload = buffer[4], buffer[5:13], bytes(buffer[13:end])
                    del buffer[:end]
                    return kind, int.from_bytes(request_id, "big"), payload
            data = os.read(self.stdout, 65536)
            if not data:
                raise RuntimeError("the worker closed stdout")
            buffer += data

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def finish(self) -> int:
        try:
            os.write(self.stdin, frame(KIND_SHUTDOWN, 0))
        except BrokenPipeError:
            pass
        os.close(self.stdin)
        _, status = os.waitpid(self.pid, 0)
        os.close(self.stdout)
        return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)


def percentile(values: list, p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def startup(argv: list, runs: int) -> None:
    ready_ms, reply_ms = [], []
    init = frame(KIND_INIT, 1, INIT_PAYLOAD)
    call = frame(KIND_CALL, 2, CALL_PAYLOAD)
    for _ in range(runs):
        started = time.perf_counter()
        worker = Spawned(argv)
        os.write(worker.stdin, init)
        kind, request_id, _ = worker.read_frame()
        ready_ms.append((time.perf_counter() - started) * 1e3)
        if (kind, request_id) != (KIND_READY, 1):
            raise RuntimeError(f"init answered with kind {kind}, request id {request_id}")
        os.write(worker.stdin, call)
        kind, request_id, _ = worker.read_frame()
        reply_ms.append((time.perf_counter() - started) * 1e3)
        if (kind, request_id) != (KIND_REPLY, 2):
            raise RuntimeError(f"the first call answered with kind {kind}, request id {request_id}")
        worker.finish()
    for what, ms in (("ready", ready_ms), ("first reply", reply_ms)):
        print(
            f"start-up to {what} over {runs} runs: median {statistics.median(ms):.2f} ms, "
            f"p10 {percentile(ms, 10):.2f} ms, p90 {percentile(ms, 90):.2f} ms"
        )


def calls(argv: list, count: int, runs: int) -> None:
    worker = Spawned(argv)
    os.write(worker.stdin, frame(KIND_INIT, 1, INIT_PAYLOAD))
    if worker.read_frame()[0] != KIND_READY:
        raise RuntimeError("the worker did not answer init with ready")
    request_id = 2
    write, read_frame, clock = os.write, worker.read_frame, time.perf_counter_ns
    medians = []
    for run in range(runs):
        samples = []
        cpu_before = worker.cpu_seconds()
        for _ in range(count):
            data = frame(KIND_CALL, request_id, CALL_PAYLOAD)
            started = clock()
            write(worker.stdin, data)
            kind, answered, _ = read_frame()
            samples.append(clock() - started)
            if kind != KIND_REPLY or answered != request_id:
                raise RuntimeError(f"call {request_id} answered with kind {kind}, id {answered}")
            request_id += 1
        cpu = worker.cpu_seconds() - cpu_before
        us = [s / 1e3 for s in samples]
        medians.append(statistics.median(us))
        print(
            f"run {run + 1}: {count} calls, round trip median {medians[-1]:.1f} us, "
            f"p99 {percentile(us, 99):.1f} us, worker CPU {cpu / count * 1e6:.1f} us/call"
        )
    print(f"median of the run medians: {statistics.median(medians):.1f} us")
    code = worker.finish()
    if code != 0:
        raise RuntimeError(f"the worker exited with {code}")


def main() -> int:
    args = sys.argv[1:]
    argv = [sys.executable, os.path.join(HERE, "examples", "echo_worker.py")]
    if "--" in args:
        argv = args[args.index("--") + 1 :]
        args = args[: args.index("--")]
        if argv and os.sep not in argv[0]:
            argv[0] = next(
                os.path.join(d, argv[0])
                for d in os.environ.get("PATH", "").split(os.pathsep)
                if os.access(os.path.join(d, argv[0]), os.X_OK)
            )
    if not args or args[0] not in ("startup", "calls"):
        print(__doc__, file=sys.stderr)
        return 2
    if "--floor" in args:
        # After "--" comes the interpreter and its flags only.
        argv = (argv if "--" in sys.argv else [sys.executable]) + ["-c", FLOOR_CODE]
        args.remove("--floor")
    options = dict(zip(args[1::2], args[2::2]))
    if args[0] == "startup":
        startup(argv, int(options.get("--runs", 40)))
    else:
        calls(argv, int(options.get("--calls", 20000)), int(options.get("--runs", 5)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
