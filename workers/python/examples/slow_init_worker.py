#!/usr/bin/env python3
"""A seedpool worker whose init hook does slow work before it reports ready.

Heavy imports and model loading belong in an init hook: the pool runs each
worker's handshake outside its own loop, under init_timeout, so callers are
not held up while a worker loads. The delay is SEEDPOOL_EXAMPLE_INIT_SECONDS
(default 1.0); setting SEEDPOOL_EXAMPLE_INIT_FAIL=1 makes the hook raise, which
the pool sees as an error frame for init with the traceback.

Handlers: "echo" returns its args; "init_info" returns what init said and how
long the hook took.
"""

import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from seedpool_worker import InitInfo, Worker  # noqa: E402

log = logging.getLogger("slow_init_worker")
worker = Worker()
state: dict = {}


@worker.on_init
def load(init: InitInfo) -> None:
    """Pretend to import something heavy; fail on request."""
    seconds = float(os.environ.get("SEEDPOOL_EXAMPLE_INIT_SECONDS", "1.0"))
    log.info("worker %d loading for %.2f s", init.worker_id, seconds)
    started = time.monotonic()
    time.sleep(seconds)
    if os.environ.get("SEEDPOOL_EXAMPLE_INIT_FAIL") == "1":
        raise RuntimeError("the model could not be loaded (SEEDPOOL_EXAMPLE_INIT_FAIL=1)")
    state["worker_id"] = init.worker_id
    state["init_seconds"] = time.monotonic() - started


@worker.handler("echo")
def echo(args):
    """Return the call's args unchanged."""
    return args


@worker.handler("init_info")
def init_info(_args) -> dict:
    """Return this worker's id and how long its init hook took."""
    return dict(state)


if __name__ == "__main__":
    worker.run()
