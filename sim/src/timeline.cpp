#include <seedpool/sim/timeline.hpp>

#include <fmt/format.h>

namespace seedpool::sim {
namespace {

std::string json_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;
        }
    }
  }
  return out;
}

// Chrome trace timestamps are microseconds; keep nanosecond precision.
std::string micros(std::int64_t ns) { return fmt::format("{}.{:03}", ns / 1000, ns % 1000); }

}  // namespace

Timeline::Timeline(bool enabled, std::size_t events_max) : enabled_(enabled), events_max_(events_max) {}

std::size_t Timeline::lane_id(std::string_view lane) {
  const auto it = lane_ids_.find(lane);
  if (it != lane_ids_.end()) {
    return it->second;
  }
  lanes_.emplace_back(lane);
  lane_ids_.emplace(std::string(lane), lanes_.size() - 1);
  return lanes_.size() - 1;
}

void Timeline::push(Event event) {
  if (events_.size() >= events_max_) {
    ++dropped_;
    return;
  }
  events_.push_back(std::move(event));
}

void Timeline::begin(std::string_view lane, std::string_view name, Instant at) {
  if (!enabled_) {
    return;
  }
  end(lane, at);
  open_[lane_id(lane)] = {std::string(name), at};
}

void Timeline::end(std::string_view lane, Instant at) {
  if (!enabled_) {
    return;
  }
  const std::size_t id = lane_id(lane);
  const auto it = open_.find(id);
  if (it == open_.end()) {
    return;
  }
  push(Event{id, std::move(it->second.first), it->second.second, at, false});
  open_.erase(it);
}

void Timeline::instant(std::string_view lane, std::string_view name, Instant at) {
  if (!enabled_) {
    return;
  }
  push(Event{lane_id(lane), std::string(name), at, at, true});
}

std::string Timeline::to_chrome_json() const {
  std::string out = "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
  bool first = true;
  auto separator = [&first, &out] {
    if (!first) {
      out += ",\n";
    }
    first = false;
  };
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    separator();
    out += fmt::format(R"({{"ph":"M","pid":1,"tid":{},"name":"thread_name","args":{{"name":"{}"}}}})", i + 1,
                       json_escape(lanes_[i]));
  }
  for (const Event& e : events_) {
    separator();
    if (e.instant) {
      out += fmt::format(R"({{"ph":"i","s":"t","pid":1,"tid":{},"ts":{},"name":"{}"}})", e.lane + 1,
                         micros(e.begin.ns()), json_escape(e.name));
    } else {
      out += fmt::format(R"({{"ph":"X","pid":1,"tid":{},"ts":{},"dur":{},"name":"{}"}})", e.lane + 1,
                         micros(e.begin.ns()), micros((e.end - e.begin).ns()), json_escape(e.name));
    }
  }
  out += fmt::format("\n],\"otherData\":{{\"dropped_events\":{}}}}}\n", dropped_);
  return out;
}

void add_task_lanes(Timeline& timeline, const Trace& trace, std::span<const std::string> task_names) {
  const auto lane = [&](std::uint32_t task) {
    return task < task_names.size() ? fmt::format("task {} (#{})", task_names[task], task) : fmt::format("task #{}", task);
  };
  const auto label = [&](const TraceEvent& e) -> std::string_view {
    return e.label < trace.labels().size() ? std::string_view(trace.labels()[e.label]) : std::string_view();
  };
  for (const TraceEvent& e : trace.events()) {
    switch (e.kind) {
      case EventKind::block: timeline.begin(lane(e.task), fmt::format("blocked: {}", label(e)), e.time); break;
      case EventKind::wake:
      case EventKind::finish: timeline.end(lane(e.task), e.time); break;
      case EventKind::note: timeline.instant(lane(e.task), label(e), e.time); break;
      case EventKind::exit: timeline.instant(lane(e.task), "exit", e.time); break;
      case EventKind::fail: timeline.instant(lane(e.task), fmt::format("FAILED: {}", label(e)), e.time); break;
      case EventKind::spawn:
      case EventKind::schedule:
      case EventKind::advance:
      case EventKind::decide: break;
    }
  }
}

}  // namespace seedpool::sim
