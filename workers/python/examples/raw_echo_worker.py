#!/usr/bin/env python3
"""A seedpool worker that takes raw calls: each call's payload comes back byte for byte.

No JSON on the way: the payload may be any bytes, and the reply is the same
bytes, as from the C++ seedpool-echo-worker. See "Raw payloads" in
seedpool_worker.py.

    python3 workers/python/examples/raw_echo_worker.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from seedpool_worker import Worker  # noqa: E402

worker = Worker()


@worker.on_raw_call
def echo(payload: bytes) -> bytes:
    """Return the call's payload unchanged."""
    return payload


if __name__ == "__main__":
    worker.run()
