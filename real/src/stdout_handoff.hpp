#pragma once

// Who holds a process's stdout: its descriptor, its one decoder and the right
// to offer frames to the router. The I/O loop and callers waiting for a reply
// (Process::read_output) pass it between them; every state and every legal
// move is here, and SharedStdout::hand_to asserts each move against this table.
//
//   loop ──claim──> caller ──reply taken, linger──> kept ──next call──> caller
//    ^  \             │  \                            │
//    │   \            │   └──service──> handed_back ──┼──> loop (it queued the rest)
//    │    └─> closed  └──re-armed the interest────────┴──> loop (linger over, exit)
//
// `closed` is final: the loop closed the descriptor and dropped the router.

#include <cstdint>
#include <string_view>

namespace seedpool::real::detail {

enum class StdoutHolder : std::uint8_t {
  // The loop reads when its interest fires. `armed` says whether the interest
  // is armed now; a caller may claim it either way, disarming it first.
  loop,
  // A caller reads on its own thread: the loop neither reads nor arms it.
  caller,
  // After a caller took its reply, the descriptor stays with the callers,
  // unwatched, for RealWorldConfig::caller_read_linger: the next call claims
  // it without touching epoll. The loop takes it back when that passes, when
  // the process exits, or when it has to read stdout itself.
  kept,
  // A caller stopped reading and asked the loop for service: the loop queues
  // what it decoded and the router left (handed_off), closes the descriptor
  // if the caller read its end, and re-arms it. Until the loop has run, a
  // caller may claim it again only when nothing waits for the loop.
  handed_back,
  // The loop closed the descriptor; no frame can follow.
  closed,
};

std::string_view to_string(StdoutHolder holder) noexcept;

// Whether stdout may pass from `from` to `to`. Staying put is not a move.
bool stdout_move_legal(StdoutHolder from, StdoutHolder to) noexcept;

}  // namespace seedpool::real::detail
