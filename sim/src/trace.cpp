#include <seedpool/sim/trace.hpp>

#include <fmt/format.h>

namespace seedpool::sim {

std::string_view to_string(EventKind kind) noexcept {
  switch (kind) {
    case EventKind::spawn: return "spawn";
    case EventKind::schedule: return "schedule";
    case EventKind::block: return "block";
    case EventKind::wake: return "wake";
    case EventKind::advance: return "advance";
    case EventKind::finish: return "finish";
    case EventKind::decide: return "decide";
    case EventKind::fail: return "fail";
    case EventKind::note: return "note";
    case EventKind::exit: return "exit";
  }
  return "unknown";
}

std::uint64_t hash_text(std::string_view text) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

Trace::Trace(bool keep_events, std::size_t events_max) : keep_events_(keep_events), events_max_(events_max) {
  labels_.emplace_back();
}

void Trace::keep(TraceEvent event, std::string_view label_text) {
  if (events_.size() >= events_max_) {
    ++dropped_;
    return;
  }
  if (!label_text.empty()) {
    // Consecutive events often share a label (a task blocking on the same
    // channel); reuse the last entry rather than growing the table.
    if (labels_.back() != label_text) {
      labels_.emplace_back(label_text);
    }
    event.label = static_cast<std::uint32_t>(labels_.size() - 1);
  }
  events_.push_back(event);
}

std::string format_instant(Instant time) {
  const std::int64_t ns = time.ns();
  return fmt::format("{}.{:06}ms", ns / 1'000'000, ns % 1'000'000);
}

std::string Trace::describe(const TraceEvent& event, std::span<const std::string> task_names) const {
  const std::string task = event.task < task_names.size() ? task_names[event.task] : std::string("?");
  std::string line = fmt::format("step {} @{} task '{}' (#{}) {}", event.step, format_instant(event.time), task,
                                 event.task, to_string(event.kind));
  if (event.kind == EventKind::note) {
    const std::string_view label = event.label < labels_.size() ? std::string_view(labels_[event.label]) : "?";
    return line + fmt::format(" {} = {}", label, event.arg);
  }
  if (event.arg != 0 || event.kind == EventKind::decide) {
    line += fmt::format(" {}", event.arg);
  }
  if (event.label != 0 && event.label < labels_.size()) {
    line += ": " + labels_[event.label];
  }
  return line;
}

}  // namespace seedpool::sim
