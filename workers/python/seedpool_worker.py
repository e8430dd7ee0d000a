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
  JSON text of the value as ``json.dumps(value, ensure_ascii=False)`` writes
  it, e.g. ``3`` or ``{"x": 1}``);
* an exception raised by the handler becomes an error frame whose payload is
  ``{"type": "ZeroDivisionError", "message": "division by zero",
  "traceback": "Traceback (most recent call last): ...", "handler": "div"}``;
  the traceback is also logged to stderr. Requests that cannot be served at
  all get the same shape with ``type`` ``"BadRequest"``, ``"UnknownHandler"``
  or ``"ReplyTooLarge"`` and an empty traceback.

Raw payloads. A worker that does not follow the JSON convention registers
one function with ``@worker.on_raw_call`` instead of named handlers: it
receives every call's payload as ``bytes`` and returns the reply's payload as
bytes (``bytes``, ``bytearray`` or ``memoryview``), and nothing is parsed or
encoded on the way. Its exceptions and oversized replies still become the
JSON error frames above (without ``handler``). The caller and the worker then
agree on the payload format themselves; use it for binary payloads, or where
the JSON round trip is a measurable part of a trivial call.

Rules this module keeps for you: stdout carries frames only (``print()`` and
anything written to file descriptor 1, by this process or its children, is
sent to stderr instead, from the moment run() starts: module-level code that
prints before run() still writes to the pool's stream, so keep it quiet or
move it into the init hook); logging goes to stderr; every call is answered once
with its request id; pings are answered; a shutdown frame, SIGTERM, or the
pool closing stdin ends the process with exit code 0; and a worker whose
pool's process died (killed, say, by SIGKILL or the OOM killer) exits within
about PARENT_CHECK_SECONDS, even in the middle of a call that would never
return, taking its process group (a handler's child processes) with it.

Logging. When the program has imported the ``logging`` module (at module
level, in the init hook, or in a handler), the worker sends ``logging``'s
records to stderr, with a time stamp, the level, the logger's name and the
process id, unless the program has configured a handler of its own; its own
lines go through the logger ``seedpool.worker``. A program that never imports
``logging`` does not pay for it: the worker writes its own lines to stderr in
the same format. The worker looks for the module at run(), after the init
hook and after each call, so a handler that imports ``logging`` itself only
has its records shown from the end of the first call that imported it:
import it at module level (as the examples do) to see them all.

Costs. The serving loop reads and writes the frame streams with single
system calls on their file descriptors (one read for a small frame, one write
per answer) and keeps what it uses per call in local variables. Start-up
imports only what serving needs: ``traceback`` waits for the first error,
``enum`` for the first use of ``FrameKind``, and ``json`` is imported after
``ready`` is sent, while the worker waits for its first call, so that the
pool's start-up wait does not include it. What remains is mostly the
interpreter's own start, and two things outside this module:

* bytecode: where ``PYTHONDONTWRITEBYTECODE`` is set, or ``__pycache__`` next
  to this file cannot be written, every start compiles this module again
  (a few ms); let one run write the cache, or run ``python3 -m compileall``
  on the directory when installing it;
* ``site``: ``python3 -S`` skips the site module (about 1 ms on a plain
  Debian install, more where site-packages holds ``.pth`` files that import
  modules) but also hides site-packages, where the packages that handlers
  import usually live. The examples are run as ``python3 SCRIPT`` without
  it; a worker that needs only the standard library may add it to the
  pool's command.

Exit codes: 0 shutdown frame, SIGTERM or stdin closed; 1 the init hook
failed; 2 the init frame was unacceptable (another protocol version, or a
malformed payload); 4 the bytes on stdin broke the protocol; 5 stdin or
stdout failed, or the pool's process died (when the worker does not lead
its own process group; otherwise the group is killed).
"""

from __future__ import annotations

import os
import sys
from struct import Struct

try:  # the signal module itself wraps _signal in enums, which cost an import of enum
    from _signal import SIG_BLOCK as _SIG_BLOCK
    from _signal import SIG_DFL, SIGKILL, SIGTERM
    from _signal import SIG_SETMASK as _SIG_SETMASK
    from _signal import pthread_sigmask as _pthread_sigmask
    from _signal import signal as _set_signal
    from _signal import valid_signals as _valid_signals
except ImportError:  # an interpreter without it
    from signal import SIG_BLOCK as _SIG_BLOCK
    from signal import SIG_DFL, SIGKILL, SIGTERM
    from signal import SIG_SETMASK as _SIG_SETMASK
    from signal import pthread_sigmask as _pthread_sigmask
    from signal import signal as _set_signal
    from signal import valid_signals as _valid_signals

TYPE_CHECKING = False
if TYPE_CHECKING:  # the typing module is not imported at run time
    from typing import Any, BinaryIO, Callable, Dict, List, NoReturn, Optional, Tuple, TypeVar

    Handler = Callable[[Any], Any]
    RawCall = Callable[[bytes], Any]
    InitHook = Callable[["InitInfo"], None]
    _H = TypeVar("_H", bound=Handler)
    _R = TypeVar("_R", bound=RawCall)
    _I = TypeVar("_I", bound=InitHook)

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

_HEADER = Struct(">IBQ")
_REQUEST_ID_MAX = 2**64 - 1
_LENGTH_FIELD_MAX = 0xFFFFFFFF
#: Frame kinds as plain integers, for the serving loop (FrameKind names them).
_INIT, _READY, _CALL, _REPLY, _ERROR, _PING, _PONG, _SHUTDOWN = range(1, 9)
_KIND_NAMES = ("", "init", "ready", "call", "reply", "error", "ping", "pong", "shutdown")
#: Bytes asked of one read of stdin: a small frame arrives whole in one system call.
_READ_CHUNK_BYTES = 64 * 1024
#: logging.INFO, without importing logging.
_INFO = 20
_LOG_LEVEL_NAMES = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
_LOGGER_NAME = "seedpool.worker"


def _define_frame_kind() -> Any:
    import enum

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

    FrameKind.__qualname__ = "FrameKind"
    FrameKind.__module__ = __name__
    return FrameKind


def __getattr__(name: str) -> Any:
    """Module attributes made on first use, so that serving does not import their modules.

    ``FrameKind`` (an ``enum.IntEnum``) and ``logger`` (the ``logging`` logger
    the worker's own lines go through).
    """
    if name == "FrameKind":
        value = _define_frame_kind()
    elif name == "logger":
        import logging

        value = logging.getLogger(_LOGGER_NAME)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


class _Record:
    """An immutable value whose fields are its ``__slots__``, compared, hashed and
    shown by them (``dataclasses`` would cost an import at start-up)."""

    __slots__ = ()

    def __init__(self, *values: Any) -> None:
        for name, value in zip(self.__slots__, values):
            object.__setattr__(self, name, value)

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setattr__(self, name: str, _value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of {type(self).__name__}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Frame(_Record):
    """One protocol frame: a kind, a request id and an opaque payload (immutable)."""

    __slots__ = ("kind", "request_id", "payload")

    kind: Any  # FrameKind
    request_id: int
    payload: bytes

    def __init__(self, kind: Any, request_id: int, payload: bytes = b"") -> None:
        super().__init__(kind, request_id, payload)


class InitInfo(_Record):
    """What the pool's init frame said: its protocol version and this worker's id (immutable)."""

    __slots__ = ("protocol", "worker_id")

    protocol: int
    worker_id: int

    def __init__(self, protocol: int, worker_id: int) -> None:
        super().__init__(protocol, worker_id)


class ProtocolError(Exception):
    """The byte stream broke the frame protocol; the stream cannot be trusted after it."""


def encode_frame(frame: Frame) -> bytes:
    """Return the wire encoding ``[u32 length][u8 kind][u64 request id][payload]``."""
    if not 0 <= frame.request_id <= _REQUEST_ID_MAX:
        raise ValueError(f"request id {frame.request_id} does not fit in 64 bits")
    length = FRAME_LENGTH_MIN + len(frame.payload)
    if length > _LENGTH_FIELD_MAX:
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


def _length_problem(length: int, frame_bytes_max: int) -> Optional[str]:
    """Why a frame's length field is unacceptable, or None."""
    if length < FRAME_LENGTH_MIN:
        return f"frame length field {length} is below the minimum {FRAME_LENGTH_MIN}"
    if length + FRAME_LENGTH_BYTES > frame_bytes_max:
        return (
            f"frame of {length + FRAME_LENGTH_BYTES} bytes exceeds "
            f"frame_bytes_max {frame_bytes_max}"
        )
    return None


def _unknown_kind(kind: int, request_id: int) -> str:
    return f"unknown frame kind {kind} (request id {request_id}); known kinds are 1..8"


def _ended_inside(have: int, length: Optional[int]) -> str:
    if length is None:
        return f"stream ended inside a frame: {have} of at least {FRAME_HEADER_BYTES} bytes"
    return f"stream ended inside a frame: {have} of {FRAME_LENGTH_BYTES + length} bytes"


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
        raise ProtocolError(_ended_inside(len(head), None))
    length = int.from_bytes(head, "big")
    problem = _length_problem(length, frame_bytes_max)
    if problem is not None:
        raise ProtocolError(problem)
    rest = _read_exact(stream, FRAME_LENGTH_MIN)
    if len(rest) < FRAME_LENGTH_MIN:
        raise ProtocolError(_ended_inside(FRAME_LENGTH_BYTES + len(rest), length))
    kind = rest[0]
    request_id = int.from_bytes(rest[1:], "big")
    if not _INIT <= kind <= _SHUTDOWN:
        raise ProtocolError(_unknown_kind(kind, request_id))
    payload = _read_exact(stream, length - FRAME_LENGTH_MIN)
    if len(payload) < length - FRAME_LENGTH_MIN:
        raise ProtocolError(_ended_inside(FRAME_HEADER_BYTES + len(payload), length))
    frame_kind = globals().get("FrameKind") or __getattr__("FrameKind")
    return Frame(frame_kind(kind), request_id, payload)


def _parse_canonical_init(payload: bytes) -> Optional[InitInfo]:
    """Parse the init payload exactly as the pool writes it, without json; None if it is not."""
    if not (payload.startswith(b'{"protocol":') and payload.endswith(b"}")):
        return None
    protocol, comma, worker_id = payload[12:-1].partition(b',"worker_id":')
    if not (comma and protocol.isdigit() and worker_id.isdigit()):
        return None
    info = InitInfo(int(protocol), int(worker_id))
    # Equal to the canonical text only without leading zeros, as JSON demands.
    if payload != b'{"protocol":%d,"worker_id":%d}' % (info.protocol, info.worker_id):
        return None
    return info


def parse_init_payload(payload: bytes) -> InitInfo:
    """Parse an init payload such as ``{"protocol":1,"worker_id":7}``.

    Raises ValueError naming what is wrong. Unknown extra keys are accepted, so
    that a later pool may add information without breaking this worker. The
    version is not judged here: comparing it is the caller's decision.
    """
    info = _parse_canonical_init(payload)
    if info is not None:
        return info
    import json

    try:
        decoded = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
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


def _json_codec() -> Tuple[Callable[[str, int], Tuple[Any, int]], Callable[[Any, int], List[str]], Dict[int, Any]]:
    """The JSON codec of the serving loop: (scan, iterencode, markers).

    ``scan(text, 0)`` decodes one JSON value at the start of ``text`` and
    returns it with the index where it ends (the scanner of json.loads, called
    without its whitespace handling: the loop falls back to json.loads for
    anything the scanner alone does not accept whole). ``iterencode(value, 0)``
    returns the pieces of ``json.dumps(value, ensure_ascii=False)``: the C
    encoder that json.dumps makes per call, made once here; ``markers`` is its
    table of containers being encoded, which a failed encoding may leave
    filled and the loop then clears.
    """
    import json
    import json.encoder

    scan = json.JSONDecoder().scan_once
    encoder = json.JSONEncoder(ensure_ascii=False)
    markers: Dict[int, Any] = {}
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:  # no C accelerator: json.dumps's own path

        def iterencode(value: Any, _level: int) -> List[str]:
            return [encoder.encode(value)]

        return scan, iterencode, markers
    iterencode = make_encoder(
        markers,
        encoder.default,
        json.encoder.encode_basestring,
        encoder.indent,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )
    return scan, iterencode, markers


def _bounded_tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "...(cut)...\n" + text[-limit:]


def _error_payload(
    kind: str, message: str, trace: str = "", handler: Optional[str] = None
) -> bytes:
    import json

    body: Dict[str, Any] = {
        "type": kind,
        "message": message[:MESSAGE_CHARS_MAX],
        "traceback": _bounded_tail(trace, TRACEBACK_CHARS_MAX),
    }
    if handler is not None:
        body["handler"] = handler
    return json.dumps(body, ensure_ascii=False).encode("utf-8", errors="replace")


def _format_exception(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _exception_payload(exc: BaseException, handler: Optional[str] = None, trace: str = "") -> bytes:
    trace = trace or _format_exception(exc)
    return _error_payload(type(exc).__name__, str(exc), trace, handler)


def _parse_call(payload: bytes) -> Tuple[str, Any]:
    """Split a call payload into the handler name and its args."""
    import json

    try:
        decoded = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
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


class _Log:
    """The worker's own log lines, on stderr.

    Through ``logging`` (logger ``seedpool.worker``) once the program has
    imported it, after sending logging's records to stderr unless the program
    configured a handler itself; before that, written directly in the same
    format, so that a worker that does not use logging never imports it.
    """

    __slots__ = ("level", "logger")

    def __init__(self, level: int) -> None:
        self.level = level
        self.logger: Any = None
        self.adopt_logging()

    def adopt_logging(self) -> bool:
        """Use logging if it has been imported; True once the worker does."""
        if self.logger is not None:
            return True
        logging = sys.modules.get("logging")
        if logging is None:
            return False
        root = logging.getLogger()
        if not root.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(_LOG_FORMAT))
            root.addHandler(handler)
            root.setLevel(self.level)
        self.logger = logging.getLogger(_LOGGER_NAME)
        return True

    def log(self, level: int, message: str, *args: Any) -> None:
        if self.logger is not None or self.adopt_logging():
            self.logger.log(level, message, *args)
            return
        if level < self.level:
            return
        import time

        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        line = _LOG_FORMAT % {
            "asctime": f"{stamp},{int((now - int(now)) * 1000):03d}",
            "levelname": _LOG_LEVEL_NAMES.get(level, f"Level {level}"),
            "name": _LOGGER_NAME,
            "process": os.getpid(),
            "message": message % args if args else message,
        }
        try:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr gone: nowhere left to say it
            pass

    def info(self, message: str, *args: Any) -> None:
        self.log(20, message, *args)

    def warning(self, message: str, *args: Any) -> None:
        self.log(30, message, *args)

    def error(self, message: str, *args: Any) -> None:
        self.log(40, message, *args)


def _claim_stdio() -> Tuple[int, int]:
    """Take stdin and stdout for frames and make stray output harmless.

    The protocol streams move to private descriptors (not inherited by child
    processes), which are returned; descriptor 0 then reads /dev/null and
    descriptor 1 writes to stderr. So a stray ``print()``, a C extension
    writing to fd 1, or a subprocess can neither corrupt the frame stream nor
    steal its input.
    """
    frames_in = os.dup(sys.stdin.fileno())
    frames_out = os.dup(sys.stdout.fileno())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    # Text printed before run() and still buffered now lands on stderr too.
    sys.stdout.flush()
    sys.stdout = sys.stderr
    return frames_in, frames_out


#: How often the worker checks that the pool's process is still its parent.
PARENT_CHECK_SECONDS = 0.5


def _watch_parent(log: _Log) -> None:
    """Exit, with this process group, soon after the pool's process dies.

    A worker in the middle of a call does not read stdin, so it would not see
    the end of input a dead pool leaves, and a call that never returns would
    keep it running for good. A thread checks every PARENT_CHECK_SECONDS
    whether the process has a new parent (it was re-parented because the
    pool's process died), and then kills the worker's process group (so that
    a handler's child processes go too) when the worker leads one, as the
    pool starts it, or exits the process otherwise. Started by serve() on the
    process's own stdin and stdout only; ``_thread`` and ``time`` are built
    in, so it costs no import.
    """
    import _thread
    import time

    parent = os.getppid()
    if parent <= 1:
        return  # no pool to outlive: started by init, or already orphaned

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        try:
            log.error("the pool's process (pid %s) is gone; exiting", parent)
        except Exception:  # stderr went with the pool
            pass
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), SIGKILL)
        os._exit(EXIT_IO)

    # The thread takes no signal: a SIGTERM the kernel gave it would set
    # Python's flag without interrupting the main thread's blocking read,
    # and an idle worker would not exit until its next frame (seen as
    # test_sigterm_while_idle_exits_0_promptly failing 4 runs in 80 on a
    # loaded machine). A thread starts with its creator's mask, so every
    # signal is blocked around the start.
    previous = _pthread_sigmask(_SIG_BLOCK, _valid_signals())
    try:
        _thread.start_new_thread(watch, ())
    finally:
        _pthread_sigmask(_SIG_SETMASK, previous)


def _stream_io(frames_in: BinaryIO, frames_out: BinaryIO) -> Tuple[Any, Any, Any]:
    """read(source, n), readinto(source, view) and write(sink, data) over binary streams."""
    read_some = getattr(frames_in, "read1", frames_in.read)
    fill = getattr(frames_in, "readinto", None)

    def read(_source: Any, size: int) -> bytes:
        return read_some(size)

    def readinto(_source: Any, view: memoryview) -> int:
        if fill is not None:
            return fill(view) or 0
        data = read_some(len(view))
        view[: len(data)] = data
        return len(data)

    def write(_sink: Any, data: bytes) -> int:
        frames_out.write(data)
        frames_out.flush()
        return len(data)

    return read, readinto, write


def _readinto_fd(fd: int, view: memoryview) -> int:
    return os.readv(fd, [view])


class Worker:
    """A seedpool worker: register handlers, then call :meth:`run`.

    ``frame_bytes_max`` bounds frames in both directions: larger incoming
    frames are a protocol error, larger replies become ``ReplyTooLarge``
    error frames. Keep it equal to the pool's setting. With ``protect_stdio``
    (the default) stray output to stdout goes to stderr instead of corrupting
    the frame stream; without it frames use ``sys.stdin.buffer`` and
    ``sys.stdout.buffer`` as they are. ``log_level`` is the level that
    logging to stderr starts at (``logging.INFO``, 20, by default).
    """

    def __init__(
        self,
        *,
        frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT,
        protect_stdio: bool = True,
        log_level: int = _INFO,
    ) -> None:
        if frame_bytes_max < FRAME_HEADER_BYTES:
            raise ValueError(
                f"frame_bytes_max {frame_bytes_max} is below the {FRAME_HEADER_BYTES}-byte header"
            )
        self._frame_bytes_max = frame_bytes_max
        self._protect_stdio = protect_stdio
        self._log_level = log_level
        self._handlers: Dict[str, Handler] = {}
        self._raw_call: Optional[RawCall] = None
        self._init_hook: Optional[InitHook] = None
        self._init_info: Optional[InitInfo] = None

    def handler(self, name: str) -> Callable[[_H], _H]:
        """Register the decorated function as the handler for calls naming ``name``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a handler name must be a non-empty string, got {name!r}")

        def register(function: _H) -> _H:
            if name in self._handlers:
                raise ValueError(f"handler {name!r} is already registered")
            if self._raw_call is not None:
                raise ValueError("this worker answers calls with its on_raw_call function")
            self._handlers[name] = function
            return function

        return register

    def on_raw_call(self, function: _R) -> _R:
        """Register the decorated function to answer every call, bypassing the JSON convention.

        It receives the call's payload (bytes) and returns the reply's payload
        (bytes, bytearray or memoryview). A worker has either named handlers
        or one raw call function.
        """
        if self._raw_call is not None:
            raise ValueError("an on_raw_call function is already registered")
        if self._handlers:
            raise ValueError("this worker has named handlers; it cannot also take raw calls")
        self._raw_call = function
        return function

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
        log = _Log(self._log_level)
        try:
            if frames_in is not None and frames_out is not None:
                read, readinto, write = _stream_io(frames_in, frames_out)
                source: Any = None
                sink: Any = None
            elif self._protect_stdio:
                source, sink = _claim_stdio()
                read, readinto, write = os.read, _readinto_fd, os.write
            else:
                read, readinto, write = _stream_io(sys.stdin.buffer, sys.stdout.buffer)
                source = sink = None
        except (OSError, ValueError, AttributeError) as exc:
            log.error("cannot use stdin and stdout for frames: %s", exc)
            return EXIT_IO
        if frames_in is None or frames_out is None:
            _watch_parent(log)
        try:
            return self._serve_frames(log, read, readinto, source, write, sink)
        except _Exit as exit_:
            return exit_.code
        except _Terminated:
            log.info("SIGTERM received; exiting")
            return EXIT_OK

    def _serve_frames(
        self, log: _Log, read: Any, readinto: Any, source: Any, write: Any, sink: Any
    ) -> int:
        """The serving loop: read a frame, answer it, until a reason to exit.

        ``read(source, n)`` returns up to n bytes (b"" at the end of input),
        ``readinto(source, view)`` fills up to len(view) bytes of a buffer, and
        ``write(sink, data)`` writes bytes and returns how many it wrote: on
        the process's streams, os.read, os.readv and os.write on the frame
        descriptors. Everything the loop touches per call is a local variable.
        """
        frame_bytes_max = self._frame_bytes_max
        length_max = min(frame_bytes_max, _LENGTH_FIELD_MAX + FRAME_LENGTH_BYTES) - FRAME_LENGTH_BYTES
        reply_max = length_max - FRAME_LENGTH_MIN
        handlers = self._handlers
        raw_call = self._raw_call
        unpack_from = _HEADER.unpack_from
        pack = _HEADER.pack
        modules = sys.modules
        chunk = _READ_CHUNK_BYTES
        scan: Any = None
        iterencode: Any = None
        markers: Any = None
        join = "".join
        plain_log = log.logger is None
        initialised = False
        # SIGTERM while waiting for a frame exits at once; during a frame,
        # once it is answered. ``busy`` says which; the handler sets ``terminate``.
        busy = False
        terminate = False

        def on_sigterm(_signum: int, _frame: Any) -> None:
            nonlocal terminate
            terminate = True
            if not busy:
                raise _Terminated()

        def send(kind: int, request_id: int, payload: bytes = b"") -> None:
            data = pack(FRAME_LENGTH_MIN + len(payload), kind, request_id) + payload
            try:
                written = write(sink, data)
                if written != len(data):
                    _write_rest(write, sink, data, written)
            except OSError as exc:
                log.error("writing a %s frame to stdout failed: %s", _KIND_NAMES[kind], exc)
                raise _Exit(EXIT_IO) from None

        def more(buffer: bytes, need: int) -> bytes:
            """Read until the buffer holds ``need`` bytes (a header, or a whole frame)."""
            if need > chunk:
                # A large frame: fill one buffer of the exact size, without copies per read.
                whole = bytearray(need)
                have = len(buffer)
                whole[:have] = buffer
                view = memoryview(whole)
                while have < need:
                    got = readinto(source, view[have:])
                    if not got:
                        raise ProtocolError(_ended_inside(have, need - FRAME_LENGTH_BYTES))
                    have += got
                view.release()
                return bytes(whole)
            while len(buffer) < need:
                if len(buffer) >= FRAME_LENGTH_BYTES:
                    length = int.from_bytes(buffer[:FRAME_LENGTH_BYTES], "big")
                    problem = _length_problem(length, frame_bytes_max)
                    if problem is not None:
                        raise ProtocolError(problem)
                else:
                    length = None
                data = read(source, chunk)
                if not data:
                    raise ProtocolError(_ended_inside(len(buffer), length))
                buffer += data
            return buffer

        def violation(message: str) -> int:
            log.error("%s; exiting", message)
            return EXIT_PROTOCOL

        try:
            previous = _set_signal(SIGTERM, on_sigterm)
            installed = True
        except ValueError:  # not the main thread (a test serving streams from a thread)
            installed = False
        try:
            buffer = b""
            while True:
                busy = False
                # ---- one frame: usually whole in a single read.
                try:
                    if len(buffer) < FRAME_HEADER_BYTES:
                        if not buffer:
                            buffer = read(source, chunk)
                            if not buffer:
                                if initialised:
                                    log.info("stdin closed by the pool; exiting")
                                else:
                                    log.info("stdin closed before init; exiting")
                                return EXIT_OK
                        if len(buffer) < FRAME_HEADER_BYTES:
                            buffer = more(buffer, FRAME_HEADER_BYTES)
                    length, kind, request_id = unpack_from(buffer)
                    if length > length_max or length < FRAME_LENGTH_MIN:
                        raise ProtocolError(_length_problem(length, frame_bytes_max))
                    end = length + FRAME_LENGTH_BYTES
                    if len(buffer) < end:
                        if not _INIT <= kind <= _SHUTDOWN:
                            raise ProtocolError(_unknown_kind(kind, request_id))
                        buffer = more(buffer, end)
                except ProtocolError as exc:
                    return violation(f"stdin broke the protocol: {exc}")
                except OSError as exc:
                    log.error("reading stdin failed: %s", exc)
                    return EXIT_IO
                payload = buffer[FRAME_HEADER_BYTES:end]
                buffer = buffer[end:]
                busy = True
                if not initialised and kind != _INIT and _INIT <= kind <= _SHUTDOWN:
                    return violation(f"the first frame was {_KIND_NAMES[kind]}, not init")
                # ---- its answer.
                if kind == _CALL:
                    if raw_call is not None:
                        self._answer_raw(raw_call, payload, request_id, reply_max, send, log)
                    else:
                        name = None
                        try:  # the usual call, decoded in one step
                            text = payload.decode()
                            request, parsed = scan(text, 0)
                            if parsed != len(text):
                                raise ValueError
                            name = request["handler"]
                            function = handlers[name]
                            args = request.get("args", {})
                        except Exception:  # anything else, with json.loads's verdict
                            name, function, args = self._resolve_call(payload, request_id, send, log)
                        if function is not None:
                            try:
                                reply = join(iterencode(function(args), 0)).encode()
                            except Exception as exc:  # the handler's failure is the caller's answer
                                markers.clear()
                                self._answer_failure(exc, name, request_id, send, log)
                            else:
                                size = len(reply)
                                if size > reply_max:
                                    self._answer_too_large(size, name, request_id, send, log)
                                else:
                                    data = pack(FRAME_LENGTH_MIN + size, _REPLY, request_id) + reply
                                    try:
                                        written = write(sink, data)
                                        if written != len(data):
                                            _write_rest(write, sink, data, written)
                                    except OSError as exc:
                                        log.error("writing a reply frame to stdout failed: %s", exc)
                                        return EXIT_IO
                    if plain_log and "logging" in modules:
                        plain_log = not log.adopt_logging()
                elif kind == _PING:
                    send(_PONG, request_id)
                elif kind == _SHUTDOWN:
                    log.info("shutdown frame received; exiting")
                    return EXIT_OK
                elif kind == _INIT:
                    if initialised:
                        return violation(f"a second init frame arrived (request id {request_id})")
                    busy = False  # SIGTERM during the init hook exits at once
                    self._handshake(payload, request_id, send, log)
                    initialised = True
                    plain_log = log.logger is None
                    if raw_call is None:
                        # After ready: the pool is not waiting for this, and a
                        # first call that comes a few ms later does not either.
                        scan, iterencode, markers = _json_codec()
                    # Everything alive now (modules, what the init hook
                    # loaded) lives as long as the worker: moved out of the
                    # collector's generations, the full collections that
                    # calls' allocations trigger no longer traverse it.
                    import gc

                    gc.freeze()
                elif _INIT <= kind <= _SHUTDOWN:
                    return violation(
                        f"the pool sent a {_KIND_NAMES[kind]} frame (request id {request_id}), "
                        "which only workers send"
                    )
                else:
                    return violation(f"stdin broke the protocol: {_unknown_kind(kind, request_id)}")
                if terminate:
                    log.info("SIGTERM received during a call; exiting after answering it")
                    return EXIT_OK
        finally:
            if installed:
                _set_signal(SIGTERM, previous if previous is not None else SIG_DFL)

    def _handshake(self, payload: bytes, request_id: int, send: Any, log: _Log) -> None:
        """Answer init with ready, or with an error frame and an exit (raised as _Exit)."""
        try:
            info = parse_init_payload(payload)
        except ValueError as exc:
            send(_ERROR, request_id, _error_payload("BadInit", str(exc)))
            log.error("%s; exiting", exc)
            raise _Exit(EXIT_INCOMPATIBLE) from None
        if info.protocol != PROTOCOL_VERSION:
            message = (
                f"the pool speaks protocol {info.protocol}, this worker speaks {PROTOCOL_VERSION}"
            )
            send(_ERROR, request_id, _error_payload("ProtocolVersionMismatch", message))
            log.error("%s; exiting", message)
            raise _Exit(EXIT_INCOMPATIBLE)
        self._init_info = info
        if self._init_hook is not None:
            try:
                self._init_hook(info)
            except Exception as exc:  # any failure of user code is reported, not fatal to the report
                trace = _format_exception(exc)
                send(_ERROR, request_id, _exception_payload(exc, trace=trace))
                log.error("init hook failed; exiting:\n%s", trace.rstrip())
                raise _Exit(EXIT_INIT_FAILED) from None
        send(_READY, request_id)
        if self._raw_call is not None:
            served = "raw calls"
        else:
            served = "handlers " + (", ".join(self.handler_names) or "(none)")
        log.info("ready as worker_id %d with %s", info.worker_id, served)

    def _resolve_call(
        self, payload: bytes, request_id: int, send: Any, log: _Log
    ) -> Tuple[Optional[str], Any, Any]:
        """(name, handler, args) of a call, or (name, None, None) once it has been answered with an error."""
        try:
            name, args = _parse_call(payload)
        except _BadRequest as exc:
            log.warning("bad request (request id %d): %s", request_id, exc)
            send(_ERROR, request_id, _error_payload("BadRequest", str(exc)))
            return None, None, None
        function = self._handlers.get(name)
        if function is None:
            known = ", ".join(repr(n) for n in self.handler_names) or "none"
            message = f"no handler named {name!r}; this worker has {known}"
            log.warning("%s (request id %d)", message, request_id)
            send(_ERROR, request_id, _error_payload("UnknownHandler", message, handler=name))
            return name, None, None
        return name, function, args

    @staticmethod
    def _answer_failure(
        exc: Exception, name: Optional[str], request_id: int, send: Any, log: _Log
    ) -> None:
        trace = _format_exception(exc)
        if name is None:
            log.error("raw call failed (request id %d):\n%s", request_id, trace.rstrip())
        else:
            log.error("handler %r failed (request id %d):\n%s", name, request_id, trace.rstrip())
        send(_ERROR, request_id, _exception_payload(exc, handler=name, trace=trace))

    def _answer_too_large(
        self, size: int, name: Optional[str], request_id: int, send: Any, log: _Log
    ) -> None:
        message = (
            f"the reply of {size} bytes does not fit "
            f"frame_bytes_max {self._frame_bytes_max} "
            f"with the {FRAME_HEADER_BYTES}-byte header"
        )
        if name is None:
            log.error("raw call: %s", message)
        else:
            log.error("handler %r: %s", name, message)
        send(_ERROR, request_id, _error_payload("ReplyTooLarge", message, handler=name))

    def _answer_raw(
        self, raw_call: Any, payload: bytes, request_id: int, reply_max: int, send: Any, log: _Log
    ) -> None:
        """Answer a call with the raw call function's bytes."""
        try:
            reply = raw_call(payload)
            if not isinstance(reply, (bytes, bytearray, memoryview)):
                raise TypeError(
                    f"the on_raw_call function returned {type(reply).__name__}, not bytes"
                )
            reply = bytes(reply)
        except Exception as exc:  # the function's failure is the caller's answer
            self._answer_failure(exc, None, request_id, send, log)
            return
        if len(reply) > reply_max:
            self._answer_too_large(len(reply), None, request_id, send, log)
            return
        send(_REPLY, request_id, reply)


def _write_rest(write: Any, sink: Any, data: bytes, written: int) -> None:
    """Finish a write that a signal or a full pipe cut short."""
    view = memoryview(data)
    while written < len(data):
        written += write(sink, view[written:])
