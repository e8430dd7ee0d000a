#!/usr/bin/env python3
"""The baseline for seedpool-real-bench: trivial calls through ProcessPoolExecutor.

Runs ``calls`` calls of a function that returns its argument on a
``concurrent.futures.ProcessPoolExecutor(max_workers=workers)``, one task per
call (the executor's own batching is what it would do for a caller that
submits calls one by one), and prints one JSON object on stdout::

    {"calls": 4000, "workers": 4, "seconds": 0.61, "calls_per_second": 6557.4, ...}

The timed part starts once every worker process is running, as the seedpool
side starts timing after ``Pool::start()`` has every worker ready, and ends
when the last result has arrived. Standard library only; the figure is a
measurement, so the script exits 0 whatever it is, and non-zero only when the
run itself failed (a wrong result, a worker that never started).

    python3 bench/process_pool_baseline.py --workers 4 --calls 4000
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import platform
import sys
import time
from typing import Any, List

#: How long each warm-up task holds its worker, so that the executor, which
#: starts processes on demand, has to start all of them.
WARMUP_HOLD_SECONDS = 0.05
#: Warm-up rounds before giving up on seeing every worker; each round takes
#: about WARMUP_HOLD_SECONDS.
WARMUP_ROUNDS_MAX = 100
#: Upper bounds on the command line, so that a typo cannot fork-bomb the machine.
WORKERS_MAX = 256
CALLS_MAX = 10_000_000


def echo(args: Any) -> Any:
    """The trivial function: the same work as the seedpool echo handler."""
    return args


def hold_and_report_pid(seconds: float) -> int:
    """Occupy a worker for a moment and say which process it was."""
    time.sleep(seconds)
    return os.getpid()


def warm_up(executor: concurrent.futures.ProcessPoolExecutor, workers: int) -> int:
    """Run tasks until every one of ``workers`` processes has answered once.

    Returns the number of distinct worker processes seen.
    """
    seen = set()
    for _ in range(WARMUP_ROUNDS_MAX):
        futures = [executor.submit(hold_and_report_pid, WARMUP_HOLD_SECONDS) for _ in range(workers)]
        seen.update(future.result() for future in futures)
        if len(seen) >= workers:
            break
    return len(seen)


def run_submit(executor: concurrent.futures.ProcessPoolExecutor, calls: int) -> List[Any]:
    """Submit every call at once, then collect the results in order."""
    futures = [executor.submit(echo, {"x": i}) for i in range(calls)]
    return [future.result() for future in futures]


def run_map(executor: concurrent.futures.ProcessPoolExecutor, calls: int) -> List[Any]:
    """executor.map with its default chunksize of 1: one task per call."""
    return list(executor.map(echo, ({"x": i} for i in range(calls))))


def measure(workers: int, calls: int, method: str) -> dict:
    runner = run_submit if method == "submit" else run_map
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as executor:
        started_workers = warm_up(executor, workers)
        if started_workers < workers:
            raise RuntimeError(f"only {started_workers} of {workers} worker processes started")
        start = time.perf_counter()
        results = runner(executor, calls)
        seconds = time.perf_counter() - start
    for i, result in enumerate(results):
        if result != {"x": i}:
            raise RuntimeError(f"call {i} returned {result!r}")
    return {
        "calls": calls,
        "workers": workers,
        "method": method,
        "seconds": seconds,
        "calls_per_second": calls / seconds,
        "python": platform.python_version(),
        "start_method": multiprocessing.get_start_method(),
    }


def positive(limit: int):
    def parse(text: str) -> int:
        value = int(text)
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"{value} is not in 1..{limit}")
        return value

    return parse


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=positive(WORKERS_MAX), default=4)
    parser.add_argument("--calls", type=positive(CALLS_MAX), default=4000)
    parser.add_argument("--method", choices=("submit", "map"), default="submit")
    options = parser.parse_args(argv)
    print(json.dumps(measure(options.workers, options.calls, options.method)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
