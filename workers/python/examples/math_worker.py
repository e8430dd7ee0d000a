#!/usr/bin/env python3
"""A seedpool worker with a few arithmetic handlers, one of which can fail.

Handlers (call payload {"handler": NAME, "args": ARGS}):

* "add"    args {"a": 1, "b": 2}       -> 3
* "sum"    args {"values": [1, 2, 3]}  -> 6
* "divide" args {"a": 1, "b": 0}       -> an error frame: ZeroDivisionError
  with its message and traceback, which the worker also logs to stderr
* "sqrt"   args {"x": -1}              -> an error frame: ValueError, raised on
  purpose to show how a handler rejects bad input
"""

import logging
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from seedpool_worker import Worker  # noqa: E402

log = logging.getLogger("math_worker")
worker = Worker()


@worker.handler("add")
def add(args: dict):
    """Return a + b."""
    return args["a"] + args["b"]


@worker.handler("sum")
def total(args: dict):
    """Return the sum of args["values"]."""
    values = args["values"]
    log.info("summing %d values", len(values))
    return sum(values)


@worker.handler("divide")
def divide(args: dict) -> float:
    """Return a / b; b == 0 raises ZeroDivisionError, which becomes an error frame."""
    return args["a"] / args["b"]


@worker.handler("sqrt")
def square_root(args: dict) -> float:
    """Return the square root of x; a negative x is rejected with ValueError."""
    x = args["x"]
    if x < 0:
        raise ValueError(f"sqrt of a negative number: {x}")
    return math.sqrt(x)


if __name__ == "__main__":
    worker.run()
