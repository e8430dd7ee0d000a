#!/usr/bin/env python3
"""A seedpool worker in pure Python (standard library only, Python >= 3.8).

seedpool runs worker processes and speaks to them over stdin and stdout in
frames (see docs/protocol.md). This module implements the worker's side of
that protocol, so a worker is a few lines::

    from seedpool_worker import Worker

    worker = Worker()

    @worker.on_init                    # optional: runs once, before "ready"
    def load(init):
        import numpy                   # heavy imports belong here

    @worker.handler("add")
    def add(args):
        return args["a"] + args["b"]

    if __name__ == "__main__":
        worker.run()

Payload convention (JSON, UTF-8). The pool treats payloads as opaque bytes;
this module gives them a meaning:

* a call's payload is ``{"handler": "add", "args": {"a": 1, "b": 2}}``;
  ``args`` may be any JSON value and defaults to ``{}`` when absent;
* the handler receives the decoded ``args`` as its one argument and returns
  a JSON-serialisable value, which is sent back as the reply's payload (the
  JSON text of the value, e.g. ``3``);
* an exception raised by the handler becomes an error frame whose payload is
  ``{"type": "ZeroDivisionError", "message": "division by zero",
  "traceback": "Traceback (most recent call last): ...", "handler": "div"}``;
  the traceback is also logged to stderr. Requests that cannot be served at
  all get the same shape with ``type`` ``"BadRequest"``, ``"UnknownHandler"``
  or ``"ReplyTooLarge"`` and an empty traceback.

Rules this module keeps for you: stdout carries frames only (``print()`` and
anything written to file descriptor 1, by this process or its children, is
sent to stderr instead, from the moment run() starts: module-level code that
prints before run() still writes to the pool's stream, so keep it quiet or
move it into the init hook); logging goes to stderr; every call is answered once
with its request id; pings are answered; a shutdown frame, SIGTERM, or the
pool closing stdin ends the process with exit code 0.

Exit codes: 0 shutdown frame, SIGTERM or stdin closed; 1 the init hook
failed; 2 the init frame was unacceptable (another protocol version, or a
malformed payload); 4 the bytes on stdin broke the protocol; 5 stdin or
stdout failed.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import signal
import struct
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, List, NoReturn, Optional, TypeVar

__all__ = [
    "EXIT_INCOMPATIBLE",
    "EXIT_INIT_FAILED",
    "EXIT_IO",
    "EXIT_OK",
    "EXIT_PROTOCOL",
    "FRAME_BYTES_MAX_DEFAULT",
    "PROTOCOL_VERSION",
    "Frame",
    "FrameKind",
    "InitInfo",
    "ProtocolError",
    "Worker",
    "encode_frame",
    "parse_init_payload",
    "read_frame",
]

#: The protocol version this module speaks; the pool's init frame carries its own.
PROTOCOL_VERSION = 1
#: Default limit on one encoded frame, length field included (the pool's default).
FRAME_BYTES_MAX_DEFAULT = 16 * 1024 * 1024
#: Bytes of the length field that starts every frame.
FRAME_LENGTH_BYTES = 4
#: Length field, kind and request id: the size of a frame with an empty payload.
FRAME_HEADER_BYTES = 13
#: The smallest legal value of the length field (kind + request id).
FRAME_LENGTH_MIN = 9
#: Error payloads keep at most this many characters of a traceback (its end).
TRACEBACK_CHARS_MAX = 64 * 1024
#: Error payloads keep at most this many characters of a message.
MESSAGE_CHARS_MAX = 16 * 1024

EXIT_OK = 0
EXIT_INIT_FAILED = 1
EXIT_INCOMPATIBLE = 2
EXIT_PROTOCOL = 4
EXIT_IO = 5

_HEADER = struct.Struct(">IBQ")
_REQUEST_ID_MAX = 2**64 - 1

logger = logging.getLogger("seedpool.worker")


class FrameKind(enum.IntEnum):
    """Frame kinds on the wire; the numbers are part of the protocol."""

    INIT = 1  #: pool -> worker: protocol version and worker id
    READY = 2  #: worker -> pool: init succeeded
    CALL = 3  #: pool -> worker: a request
    REPLY = 4  #: worker -> pool: the answer to a call
    ERROR = 5  #: worker -> pool: init or a call failed
    PING = 6  #: pool -> worker: health check
    PONG = 7  #: worker -> pool: answer to a ping
    SHUTDOWN = 8  #: pool -> worker: exit cleanly


@dataclass(frozen=True)
class Frame:
    """One protocol frame: a kind, a request id and an opaque payload."""

    kind: FrameKind
    request_id: int
    payload: bytes = b""


@dataclass(frozen=True)
class InitInfo:
    """What the pool's init frame said: its protocol version and this worker's id."""

    protocol: int
    worker_id: int


class ProtocolError(Exception):
    """The byte stream broke the frame protocol; the stream cannot be trusted after it."""


def encode_frame(frame: Frame) -> bytes:
    """Return the wire encoding ``[u32 length][u8 kind][u64 request id][payload]``."""
    if not 0 <= frame.request_id <= _REQUEST_ID_MAX:
        raise ValueError(f"request id {frame.request_id} does not fit in 64 bits")
    length = FRAME_LENGTH_MIN + len(frame.payload)
    if length > 0xFFFFFFFF:
        raise ValueError(f"payload of {len(frame.payload)} bytes does not fit the u32 length field")
    return _HEADER.pack(length, int(frame.kind), frame.request_id) + bytes(frame.payload)


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    """Read exactly ``size`` bytes; fewer only when the stream ends first."""
    chunks = bytearray()
    while len(chunks) < size:
        data = stream.read(size - len(chunks))
        if not data:
            break
        chunks += data
    return bytes(chunks)


def read_frame(stream: BinaryIO, frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT) -> Optional[Frame]:
    """Read one frame from a binary stream.

    Returns None when the stream ends on a frame boundary. Raises ProtocolError
    when it ends inside a frame, when the length field is below 9 or announces
    a frame above ``frame_bytes_max`` bytes (checked before the body is read),
    or when the kind byte is unknown.
    """
    head = _read_exact(stream, FRAME_LENGTH_BYTES)
    if not head:
        return None
    if len(head) < FRAME_LENGTH_BYTES:
        raise ProtocolError(
            f"stream ended inside a frame: {len(head)} of at least {FRAME_HEADER_BYTES} bytes"
        )
    (length,) = struct.unpack(">I", head)
    if length < FRAME_LENGTH_MIN:
        raise ProtocolError(f"frame length field {length} is below the minimum {FRAME_LENGTH_MIN}")
    if length + FRAME_LENGTH_BYTES > frame_bytes_max:
        raise ProtocolError(
            f"frame of {length + FRAME_LENGTH_BYTES} bytes exceeds "
            f"frame_bytes_max {frame_bytes_max}"
        )
    rest = _read_exact(stream, FRAME_LENGTH_MIN)
    if len(rest) < FRAME_LENGTH_MIN:
        raise ProtocolError(
            f"stream ended inside a frame: {FRAME_LENGTH_BYTES + len(rest)} of "
            f"{FRAME_LENGTH_BYTES + length} bytes"
        )
    kind = rest[0]
    request_id = int.from_bytes(rest[1:], "big")
    if kind not in FrameKind._value2member_map_:
        raise ProtocolError(
            f"unknown frame kind {kind} (request id {request_id}); known kinds are 1..8"
        )
    payload = _read_exact(stream, length - FRAME_LENGTH_MIN)
    if len(payload) < length - FRAME_LENGTH_MIN:
        raise ProtocolError(
            f"stream ended inside a frame: {FRAME_HEADER_BYTES + len(payload)} of "
            f"{FRAME_LENGTH_BYTES + length} bytes"
        )
    return Frame(FrameKind(kind), request_id, payload)


def parse_init_payload(payload: bytes) -> InitInfo:
    """Parse an init payload such as ``{"protocol":1,"worker_id":7}``.

    Raises ValueError naming what is wrong. Unknown extra keys are accepted, so
    that a later pool may add information without breaking this worker. The
    version is not judged here: comparing it is the caller's decision.
    """
    try:
        decoded = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"init payload is not JSON: {exc}; payload {payload[:64]!r}") from None
    if not isinstance(decoded, dict):
        raise ValueError(f"init payload is not a JSON object: {payload[:64]!r}")
    values = []
    for key in ("protocol", "worker_id"):
        value = decoded.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"init payload has no unsigned integer {key!r}: {payload[:64]!r}")
        values.append(value)
    return InitInfo(protocol=values[0], worker_id=values[1])


class _BadRequest(Exception):
    """A call payload that does not follow the JSON convention."""


class _Exit(Exception):
    """Unwinds the serving loop with an exit code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Terminated(BaseException):
    """Raised by the SIGTERM handler while the worker waits for a frame.

    A BaseException, so that a handler's ``except Exception`` cannot swallow it.
    """


Handler = Callable[[Any], Any]
InitHook = Callable[[InitInfo], None]
_H = TypeVar("_H", bound=Handler)
_I = TypeVar("_I", bound=InitHook)


def _bounded_tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "...(cut)...\n" + text[-limit:]


def _error_payload(
    kind: str, message: str, trace: str = "", handler: Optional[str] = None
) -> bytes:
    body: Dict[str, Any] = {
        "type": kind,
        "message": message[:MESSAGE_CHARS_MAX],
        "traceback": _bounded_tail(trace, TRACEBACK_CHARS_MAX),
    }
    if handler is not None:
        body["handler"] = handler
    return json.dumps(body, ensure_ascii=False).encode("utf-8", errors="replace")


def _exception_payload(exc: BaseException, handler: Optional[str] = None) -> bytes:
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return _error_payload(type(exc).__name__, str(exc), trace, handler)


def _parse_call(payload: bytes) -> "tuple[str, Any]":
    """Split a call payload into the handler name and its args."""
    try:
        decoded = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _BadRequest(f"call payload is not UTF-8 JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise _BadRequest(
            'call payload must be a JSON object {"handler": ..., "args": ...}, '
            f"got {payload[:64]!r}"
        )
    name = decoded.get("handler")
    if not isinstance(name, str):
        raise _BadRequest(f'call payload has no string "handler": {payload[:64]!r}')
    return name, decoded.get("args", {})


def _configure_logging(level: int) -> None:
    """Send logging to stderr unless the program configured logging itself."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)


def _claim_stdio() -> "tuple[BinaryIO, BinaryIO]":
    """Take stdin and stdout for frames and make stray output harmless.

    The protocol streams move to private descriptors (not inherited by child
    processes); descriptor 0 then reads /dev/null and descriptor 1 writes to
    stderr. So a stray ``print()``, a C extension writing to fd 1, or a
    subprocess can neither corrupt the frame stream nor steal its input.
    """
    frames_in = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    frames_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    # Text printed before run() and still buffered now lands on stderr too.
    sys.stdout.flush()
    sys.stdout = sys.stderr
    return frames_in, frames_out


class Worker:
    """A seedpool worker: register handlers, then call :meth:`run`.

    ``frame_bytes_max`` bounds frames in both directions: larger incoming
    frames are a protocol error, larger replies become ``ReplyTooLarge``
    error frames. Keep it equal to the pool's setting. With ``protect_stdio``
    (the default) stray output to stdout goes to stderr instead of corrupting
    the frame stream; without it frames use ``sys.stdin.buffer`` and
    ``sys.stdout.buffer`` as they are.
    """

    def __init__(
        self,
        *,
        frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT,
        protect_stdio: bool = True,
        log_level: int = logging.INFO,
    ) -> None:
        if frame_bytes_max < FRAME_HEADER_BYTES:
            raise ValueError(
                f"frame_bytes_max {frame_bytes_max} is below the {FRAME_HEADER_BYTES}-byte header"
            )
        self._frame_bytes_max = frame_bytes_max
        self._protect_stdio = protect_stdio
        self._log_level = log_level
        self._handlers: Dict[str, Handler] = {}
        self._init_hook: Optional[InitHook] = None
        self._init_info: Optional[InitInfo] = None
        self._out: Optional[BinaryIO] = None
        self._busy = False
        self._terminate_requested = False

    def handler(self, name: str) -> Callable[[_H], _H]:
        """Register the decorated function as the handler for calls naming ``name``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a handler name must be a non-empty string, got {name!r}")

        def register(function: _H) -> _H:
            if name in self._handlers:
                raise ValueError(f"handler {name!r} is already registered")
            self._handlers[name] = function
            return function

        return register

    def on_init(self, hook: _I) -> _I:
        """Register the decorated function to run once with the InitInfo, before ready.

        If it raises, the pool receives an error frame for init carrying the
        traceback and the process exits with code 1.
        """
        if self._init_hook is not None:
            raise ValueError("an init hook is already registered")
        self._init_hook = hook
        return hook

    @property
    def handler_names(self) -> List[str]:
        """The registered handler names, sorted."""
        return sorted(self._handlers)

    @property
    def init_info(self) -> Optional[InitInfo]:
        """What the pool's init frame said, once it has arrived."""
        return self._init_info

    def run(self) -> NoReturn:
        """Serve the pool on stdin and stdout, then exit the process with serve()'s code."""
        sys.exit(self.serve())

    def serve(
        self, frames_in: Optional[BinaryIO] = None, frames_out: Optional[BinaryIO] = None
    ) -> int:
        """Serve frames until shutdown, SIGTERM or end of input; return the exit code.

        Without arguments it serves the process's stdin and stdout; tests may
        pass other binary streams instead.
        """
        _configure_logging(self._log_level)
        try:
            if frames_in is None or frames_out is None:
                frames_in, frames_out = (
                    _claim_stdio() if self._protect_stdio else (sys.stdin.buffer, sys.stdout.buffer)
                )
        except (OSError, ValueError, AttributeError) as exc:
            logger.error("cannot use stdin and stdout for frames: %s", exc)
            return EXIT_IO
        self._out = frames_out
        # Signal handlers can only be set from the main thread; elsewhere
        # (a test serving streams from a thread) SIGTERM keeps its disposition.
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, self._on_sigterm) if in_main_thread else None
        try:
            return self._serve_frames(frames_in)
        except _Exit as exit_:
            return exit_.code
        except _Terminated:
            logger.info("SIGTERM received; exiting")
            return EXIT_OK
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)

    def _on_sigterm(self, signum: int, _frame: Any) -> None:
        # Idle: leave now. Busy: let the current frame be answered first; the
        # serving loop exits after it, and the pool escalates to SIGKILL if
        # that takes too long.
        self._terminate_requested = True
        if not self._busy:
            raise _Terminated()

    def _serve_frames(self, frames_in: BinaryIO) -> int:
        first = self._read(frames_in)
        if first is None:
            logger.info("stdin closed before init; exiting")
            return EXIT_OK
        if first.kind != FrameKind.INIT:
            return self._protocol_violation(
                f"the first frame was {first.kind.name.lower()}, not init"
            )
        self._handshake(first)
        while True:
            frame = self._read(frames_in)
            if frame is None:
                logger.info("stdin closed by the pool; exiting")
                return EXIT_OK
            self._busy = True
            exit_code = self._dispatch(frame)
            self._busy = False
            if exit_code is not None:
                return exit_code
            if self._terminate_requested:
                logger.info("SIGTERM received during a call; exiting after answering it")
                return EXIT_OK

    def _read(self, frames_in: BinaryIO) -> Optional[Frame]:
        try:
            return read_frame(frames_in, self._frame_bytes_max)
        except ProtocolError as exc:
            raise _Exit(self._protocol_violation(f"stdin broke the protocol: {exc}")) from None
        except OSError as exc:
            logger.error("reading stdin failed: %s", exc)
            raise _Exit(EXIT_IO) from None

    def _send(self, kind: FrameKind, request_id: int, payload: bytes = b"") -> None:
        assert self._out is not None
        try:
            self._out.write(encode_frame(Frame(kind, request_id, payload)))
            self._out.flush()
        except OSError as exc:
            logger.error("writing a %s frame to stdout failed: %s", kind.name.lower(), exc)
            raise _Exit(EXIT_IO) from None

    @staticmethod
    def _protocol_violation(message: str) -> int:
        logger.error("%s; exiting", message)
        return EXIT_PROTOCOL

    def _handshake(self, init: Frame) -> None:
        """Answer init with ready, or with an error frame and an exit (raised as _Exit)."""
        try:
            info = parse_init_payload(init.payload)
        except ValueError as exc:
            self._send(FrameKind.ERROR, init.request_id, _error_payload("BadInit", str(exc)))
            logger.error("%s; exiting", exc)
            raise _Exit(EXIT_INCOMPATIBLE) from None
        if info.protocol != PROTOCOL_VERSION:
            message = (
                f"the pool speaks protocol {info.protocol}, this worker speaks {PROTOCOL_VERSION}"
            )
            self._send(
                FrameKind.ERROR, init.request_id, _error_payload("ProtocolVersionMismatch", message)
            )
            logger.error("%s; exiting", message)
            raise _Exit(EXIT_INCOMPATIBLE)
        self._init_info = info
        if self._init_hook is not None:
            try:
                self._init_hook(info)
            except (
                Exception
            ) as exc:  # any failure of user code is reported, not fatal to the report
                self._send(FrameKind.ERROR, init.request_id, _exception_payload(exc))
                logger.error("init hook failed; exiting:\n%s", traceback.format_exc().rstrip())
                raise _Exit(EXIT_INIT_FAILED) from None
        self._send(FrameKind.READY, init.request_id)
        logger.info(
            "ready as worker_id %d with handlers %s",
            info.worker_id,
            ", ".join(self.handler_names) or "(none)",
        )

    def _dispatch(self, frame: Frame) -> Optional[int]:
        """Answer one frame after init; return an exit code to stop serving."""
        if frame.kind == FrameKind.CALL:
            self._answer_call(frame)
            return None
        if frame.kind == FrameKind.PING:
            self._send(FrameKind.PONG, frame.request_id)
            return None
        if frame.kind == FrameKind.SHUTDOWN:
            logger.info("shutdown frame received; exiting")
            return EXIT_OK
        if frame.kind == FrameKind.INIT:
            return self._protocol_violation(
                f"a second init frame arrived (request id {frame.request_id})"
            )
        return self._protocol_violation(
            f"the pool sent a {frame.kind.name.lower()} frame (request id {frame.request_id}), "
            "which only workers send"
        )

    def _answer_call(self, frame: Frame) -> None:
        """Send exactly one reply or error frame for this call."""
        try:
            name, args = _parse_call(frame.payload)
        except _BadRequest as exc:
            logger.warning("bad request (request id %d): %s", frame.request_id, exc)
            self._send(FrameKind.ERROR, frame.request_id, _error_payload("BadRequest", str(exc)))
            return
        function = self._handlers.get(name)
        if function is None:
            known = ", ".join(repr(n) for n in self.handler_names) or "none"
            message = f"no handler named {name!r}; this worker has {known}"
            logger.warning("%s (request id %d)", message, frame.request_id)
            self._send(
                FrameKind.ERROR,
                frame.request_id,
                _error_payload("UnknownHandler", message, handler=name),
            )
            return
        try:
            reply = json.dumps(function(args), ensure_ascii=False).encode("utf-8")
        except Exception as exc:  # the handler's failure is the caller's answer
            logger.error(
                "handler %r failed (request id %d):\n%s",
                name,
                frame.request_id,
                traceback.format_exc().rstrip(),
            )
            self._send(FrameKind.ERROR, frame.request_id, _exception_payload(exc, handler=name))
            return
        if FRAME_HEADER_BYTES + len(reply) > self._frame_bytes_max:
            message = (
                f"the reply of {len(reply)} bytes does not fit "
                f"frame_bytes_max {self._frame_bytes_max} "
                f"with the {FRAME_HEADER_BYTES}-byte header"
            )
            logger.error("handler %r: %s", name, message)
            self._send(
                FrameKind.ERROR,
                frame.request_id,
                _error_payload("ReplyTooLarge", message, handler=name),
            )
            return
        self._send(FrameKind.REPLY, frame.request_id, reply)
