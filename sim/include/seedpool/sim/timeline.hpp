#pragma once

// A timeline of what happened in a simulated run, lane by lane — one lane per
// worker (its states as slices) and per caller (checkout waits and calls),
// faults as instants — exported as Chrome trace JSON for Perfetto.

#include <seedpool/core/time.hpp>
#include <seedpool/sim/trace.hpp>

#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace seedpool::sim {

class Timeline {
 public:
  // Keeps at most events_max events; later ones are counted and dropped.
  explicit Timeline(bool enabled, std::size_t events_max = 1'000'000);

  // Starts a slice on `lane`, ending the lane's open slice if any.
  void begin(std::string_view lane, std::string_view name, Instant at);
  // Ends the lane's open slice, if any.
  void end(std::string_view lane, Instant at);
  // A point event.
  void instant(std::string_view lane, std::string_view name, Instant at);

  bool enabled() const noexcept { return enabled_; }
  std::size_t size() const noexcept { return events_.size(); }

  // {"traceEvents":[...]}: complete events ("X") for slices, instants ("i"),
  // and thread names so that Perfetto labels each lane.
  std::string to_chrome_json() const;

 private:
  struct Event {
    std::size_t lane;
    std::string name;
    Instant begin;
    Instant end;
    bool instant;
  };
  std::size_t lane_id(std::string_view lane);
  void push(Event event);

  bool enabled_;
  std::size_t events_max_;
  std::size_t dropped_ = 0;
  std::vector<std::string> lanes_;
  std::map<std::string, std::size_t, std::less<>> lane_ids_;
  std::map<std::size_t, std::pair<std::string, Instant>> open_;
  std::vector<Event> events_;
};

// Adds a lane per task of a run, from its kept trace events: a slice for
// every wait ("blocked: <reason>", from the block to the wake), and instants
// for fault firings and other notes and for the failure. Any scenario's
// replay --trace shows these; the pool's scenarios add their own lanes.
void add_task_lanes(Timeline& timeline, const Trace& trace, std::span<const std::string> task_names);

}  // namespace seedpool::sim
