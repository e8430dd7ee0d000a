// The states of a process's stdout between the I/O loop and reading callers;
// see stdout_handoff.hpp.

#include "stdout_handoff.hpp"

namespace seedpool::real::detail {

std::string_view to_string(StdoutHolder holder) noexcept {
  switch (holder) {
    case StdoutHolder::loop: return "loop";
    case StdoutHolder::caller: return "caller";
    case StdoutHolder::kept: return "kept";
    case StdoutHolder::handed_back: return "handed_back";
    case StdoutHolder::closed: return "closed";
  }
  return "unknown";
}

bool stdout_move_legal(StdoutHolder from, StdoutHolder to) noexcept {
  using enum StdoutHolder;
  switch (from) {
    case loop:
      // A caller claims it (disarming the interest if armed), or the loop
      // closes it at the end of the stream or of the process.
      return to == caller || to == closed;
    case caller:
      // Done reading: it re-armed the interest itself, keeps the descriptor
      // for the next call after a reply, or asks the loop to take over. The
      // loop also takes it back outright when the World is destroyed.
      return to == loop || to == kept || to == handed_back;
    case kept:
      // The next call claims it, or the loop takes it back (linger over, the
      // process exited, the loop had to read or close stdout).
      return to == caller || to == loop;
    case handed_back:
      // The loop took over what the caller left; or a caller claims it again
      // before the loop ran, when nothing waits for the loop.
      return to == loop || to == caller;
    case closed:
      return false;
  }
  return false;
}

}  // namespace seedpool::real::detail
