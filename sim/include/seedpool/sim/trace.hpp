#pragma once

// The trace of a simulated run: every scheduling decision and World event,
// folded into a rolling 64-bit hash and, when asked for, kept as a compact
// event list. Two runs are the same run exactly when their hashes agree.

#include <seedpool/core/time.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace seedpool::sim {

enum class EventKind : std::uint8_t {
  spawn,     // task: the new task; arg: the spawning task's id and its name's hash; label: the name
  schedule,  // a step: `task` runs next
  block,     // task waits; arg: monitor id (0 for a sleep); label: the reason
  wake,      // arg: 1 when woken by its deadline, 0 when notified
  advance,   // virtual time jumped to `time`; arg: the same, in nanoseconds
  finish,    // task returned
  decide,    // a World decision; arg: the value chosen
  fail,      // the run failed; arg: the message's hash; label: the message
  note,      // a user or pool event; arg: its value; label: what happened (hashed as well as arg)
  exit,      // the task ended the run (World::exit)
};

std::string_view to_string(EventKind kind) noexcept;

struct TraceEvent {
  std::uint64_t step = 0;
  Instant time;
  std::uint32_t task = 0;
  EventKind kind = EventKind::note;
  std::uint64_t arg = 0;
  std::uint32_t label = 0;  // index into Trace::labels(); 0 is the empty label

  friend bool operator==(const TraceEvent&, const TraceEvent&) = default;
};

// A stable 64-bit hash of text (FNV-1a), for folding names into trace hashes.
std::uint64_t hash_text(std::string_view text) noexcept;

class Trace {
 public:
  // With keep_events false only the hash is maintained (the fast mode used by
  // sweeps). At most events_max events are kept; later ones still reach the
  // hash and are counted in dropped().
  Trace(bool keep_events, std::size_t events_max);

  // Folds an event into the hash and keeps it if asked. The label is kept
  // for reading only and not hashed: whatever of it matters goes into `arg`
  // (hashed by content, so the hash never depends on addresses), or the
  // event is recorded with record_labelled. The hash is the same whether
  // events are kept or not.
  void record(std::uint64_t step, Instant time, std::uint32_t task, EventKind kind, std::uint64_t arg,
              std::string_view label_text = {}) {
    // The step and the time need no hashing: every step is a schedule
    // event, and time changes only at advance events, which carry it in arg.
    hash_ = mix(mix(hash_, (static_cast<std::uint64_t>(task) << 8) | static_cast<std::uint64_t>(kind)), arg);
    if (keep_events_) {
      keep(TraceEvent{step, time, task, kind, arg, 0}, label_text);
    }
  }

  // Records an event whose label is part of what happened (a note): the
  // label's text is folded into the hash before the event, and `arg` is kept
  // as it is, so that the event reads "note LABEL = ARG".
  void record_labelled(std::uint64_t step, Instant time, std::uint32_t task, EventKind kind, std::uint64_t arg,
                       std::string_view label_text) {
    hash_ = mix(hash_, hash_text(label_text));
    record(step, time, task, kind, arg, label_text);
  }

  std::uint64_t hash() const noexcept { return hash_; }
  bool keeps_events() const noexcept { return keep_events_; }
  const std::vector<TraceEvent>& events() const noexcept { return events_; }
  const std::vector<std::string>& labels() const noexcept { return labels_; }
  std::size_t dropped() const noexcept { return dropped_; }

  // One readable line: "step 12 @1.500000ms task 'pool' (#1) block 3: receive on 'mailbox'";
  // a note reads "... note sim_process launch = 1000".
  std::string describe(const TraceEvent& event, std::span<const std::string> task_names) const;

 private:
  static std::uint64_t mix(std::uint64_t h, std::uint64_t v) noexcept {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdULL;
  }
  void keep(TraceEvent event, std::string_view label_text);

  bool keep_events_;
  std::size_t events_max_;
  std::uint64_t hash_ = 0xcbf29ce484222325ULL;
  std::vector<TraceEvent> events_;
  std::vector<std::string> labels_;
  std::size_t dropped_ = 0;
};

// "1.500000ms"-style rendering of a virtual instant, exact to the nanosecond.
std::string format_instant(Instant time);

}  // namespace seedpool::sim
