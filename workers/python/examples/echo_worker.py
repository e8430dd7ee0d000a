#!/usr/bin/env python3
"""The smallest seedpool worker: handler "echo" returns its args unchanged.

Run it under a pool (the program is python3, the argument this file), or by
hand to see it wait for frames on stdin:

    python3 workers/python/examples/echo_worker.py

A call payload {"handler": "echo", "args": {"x": 1}} is answered with {"x": 1}.
"""

import os
import sys

# The examples import seedpool_worker from the directory above; a real worker
# would have it on PYTHONPATH or next to itself.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from seedpool_worker import Worker  # noqa: E402

worker = Worker()


@worker.handler("echo")
def echo(args):
    """Return the call's args unchanged."""
    return args


if __name__ == "__main__":
    worker.run()
