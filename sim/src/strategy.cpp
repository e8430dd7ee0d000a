#include <seedpool/core/assert.hpp>
#include <seedpool/sim/strategy.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <utility>
#include <vector>

namespace seedpool::sim {
namespace {

class RandomWalk final : public Strategy {
 public:
  void on_run_start(DecisionSource&) override {}
  void on_spawn(TaskId, DecisionSource&) override {}
  std::size_t pick(std::span<const TaskId> runnable, std::uint64_t, DecisionSource& decisions) override {
    return static_cast<std::size_t>(decisions.decide(runnable.size()));
  }
};

class Pct final : public Strategy {
 public:
  Pct(unsigned depth, std::uint64_t steps_estimate) : depth_(depth), steps_estimate_(steps_estimate) {
    SEEDPOOL_ASSERT(depth_ >= 1 && depth_ <= StrategySpec::depth_max);
    SEEDPOOL_ASSERT(steps_estimate_ >= 1);
  }

  void on_run_start(DecisionSource& decisions) override {
    change_points_.clear();
    for (unsigned i = 1; i < depth_; ++i) {
      change_points_.push_back(1 + decisions.decide(steps_estimate_));
    }
  }

  void on_spawn(TaskId task, DecisionSource& decisions) override {
    if (priorities_.size() <= task) {
      priorities_.resize(static_cast<std::size_t>(task) + 1, 0);
    }
    // Initial priorities lie above every change-point priority (1 .. d-1).
    priorities_[task] = depth_ + decisions.decide(std::uint64_t{1} << 32);
  }

  std::size_t pick(std::span<const TaskId> runnable, std::uint64_t step, DecisionSource&) override {
    std::size_t best = highest(runnable);
    for (std::size_t i = 0; i < change_points_.size(); ++i) {
      if (change_points_[i] == step) {
        priorities_[runnable[best]] = i + 1;
        best = highest(runnable);
      }
    }
    return best;
  }

 private:
  std::size_t highest(std::span<const TaskId> runnable) const {
    std::size_t best = 0;
    for (std::size_t i = 1; i < runnable.size(); ++i) {
      const std::uint64_t p = priorities_[runnable[i]];
      const std::uint64_t q = priorities_[runnable[best]];
      if (p > q || (p == q && runnable[i] < runnable[best])) {
        best = i;
      }
    }
    return best;
  }

  unsigned depth_;
  std::uint64_t steps_estimate_;
  std::vector<std::uint64_t> change_points_;
  std::vector<std::uint64_t> priorities_;
};

// Preemption- and delay-bounded scheduling (see make_preemption_bounded).
class Bounded final : public Strategy {
 public:
  Bounded(StrategySpec::Kind kind, unsigned bound, std::shared_ptr<ChoiceLog> choices)
      : kind_(kind), bound_(bound), choices_(std::move(choices)) {
    SEEDPOOL_ASSERT(kind_ == StrategySpec::Kind::preemption_bounded || kind_ == StrategySpec::Kind::delay_bounded);
    SEEDPOOL_ASSERT(bound_ <= StrategySpec::bound_max);
  }

  void on_run_start(DecisionSource&) override {
    picks_ = 0;
    spent_ = 0;
    has_previous_ = false;
    if (choices_ != nullptr) {
      choices_->clear();
    }
  }

  void on_spawn(TaskId, DecisionSource&) override {}

  std::size_t pick(std::span<const TaskId> runnable, std::uint64_t step, DecisionSource& decisions) override {
    // The previous task is the one picked at the previous step: every step
    // must come here, none may be taken past the strategy.
    SEEDPOOL_ASSERT_MSG(step == picks_, "a step was taken without asking the strategy");
    ++picks_;
    const bool continuing =
        has_previous_ && std::find(runnable.begin(), runnable.end(), previous_) != runnable.end();
    order(runnable, continuing);
    ChoicePoint point;
    point.decision_index = decisions.recorded().size();
    point.alternatives = order_.size();
    point.spent_before = spent_;
    point.first_cost = kind_ == StrategySpec::Kind::delay_bounded || continuing ? 1 : 0;
    point.step_cost = kind_ == StrategySpec::Kind::delay_bounded ? 1 : 0;
    std::uint64_t choice = decisions.decide(order_.size());
    const bool decided = decisions.recorded().size() > point.decision_index;
    if (spent_ + point.cost(choice) > bound_) {
      choice = 0;  // past the bound: the default (a shrunk or random list)
    }
    if (decided && choices_ != nullptr) {
      choices_->push_back(point);
    }
    spent_ += point.cost(choice);
    SEEDPOOL_ASSERT(spent_ <= bound_);
    const std::size_t index = order_[choice];
    previous_ = runnable[index];
    has_previous_ = true;
    return index;
  }

  std::uint64_t choose(std::uint64_t alternatives, DecisionSource& decisions) override {
    ChoicePoint point;
    point.decision_index = decisions.recorded().size();
    point.alternatives = alternatives;
    point.spent_before = spent_;
    point.first_cost = 1;
    point.step_cost = kind_ == StrategySpec::Kind::delay_bounded ? 1 : 0;
    std::uint64_t choice = decisions.decide(alternatives);
    const bool decided = decisions.recorded().size() > point.decision_index;
    if (spent_ + point.cost(choice) > bound_) {
      choice = 0;
    }
    if (decided && choices_ != nullptr) {
      choices_->push_back(point);
    }
    spent_ += point.cost(choice);
    return choice;
  }

 private:
  // order_: indices into `runnable`, the default first.
  void order(std::span<const TaskId> runnable, bool continuing) {
    order_.resize(runnable.size());
    for (std::size_t i = 0; i < runnable.size(); ++i) {
      order_[i] = i;
    }
    const TaskId from = has_previous_ ? previous_ : 0;
    // Preemption-bounded: the previous task, then by id. Delay-bounded:
    // cyclically by id from the previous task's (unsigned wrap-around).
    const auto key = [&](std::size_t i) -> std::uint64_t {
      const TaskId id = runnable[i];
      if (kind_ == StrategySpec::Kind::delay_bounded) {
        return static_cast<TaskId>(id - from);
      }
      return continuing && id == previous_ ? 0 : std::uint64_t{id} + 1;
    };
    std::sort(order_.begin(), order_.end(), [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  }

  StrategySpec::Kind kind_;
  unsigned bound_;
  std::shared_ptr<ChoiceLog> choices_;
  std::uint64_t picks_ = 0;
  std::uint64_t spent_ = 0;  // preemptions or delays so far
  bool has_previous_ = false;
  TaskId previous_ = 0;
  std::vector<std::size_t> order_;
};

bool parse_unsigned(std::string_view text, std::uint64_t& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && !text.empty();
}

Error strategy_error(std::string_view text, std::string_view why) {
  return Error{ErrorCode::invalid_argument,
               fmt::format("invalid strategy '{}': {}; expected 'random', 'pct:D' (the sweep estimates K), "
                           "'pct:D:K', 'dfs:preemptions=P' or 'delay:D', with depth D in 1..{}, step estimate "
                           "K >= 1 and bounds P, D in 0..{} (e.g. pct:3, dfs:preemptions=2)",
                           text, why, StrategySpec::depth_max, StrategySpec::bound_max),
               {}};
}

// "dfs:preemptions=P" or "delay:D": the bound after `prefix`.
Result<StrategySpec> parse_bounded(std::string_view text, std::string_view prefix, StrategySpec::Kind kind) {
  std::uint64_t bound = 0;
  if (!parse_unsigned(text.substr(prefix.size()), bound) || bound > StrategySpec::bound_max) {
    return strategy_error(text, "bad bound");
  }
  StrategySpec spec;
  spec.kind = kind;
  spec.bound = static_cast<unsigned>(bound);
  return spec;
}

Result<StrategySpec> parse_pct(std::string_view text) {
  std::string_view rest = text.substr(4);
  const std::size_t colon = rest.find(':');
  std::uint64_t depth = 0;
  if (!parse_unsigned(rest.substr(0, colon), depth) || depth < 1 || depth > StrategySpec::depth_max) {
    return strategy_error(text, "bad depth");
  }
  StrategySpec spec;
  spec.kind = StrategySpec::Kind::pct;
  spec.depth = static_cast<unsigned>(depth);
  if (colon != std::string_view::npos) {
    std::uint64_t k = 0;
    if (!parse_unsigned(rest.substr(colon + 1), k) || k < 1) {
      return strategy_error(text, "bad step estimate");
    }
    spec.steps_estimate = k;
  }
  return spec;
}

}  // namespace

std::string StrategySpec::to_string() const {
  switch (kind) {
    case Kind::random_walk: return "random";
    case Kind::pct:
      return steps_estimate_is_auto() ? fmt::format("pct:{}", depth) : fmt::format("pct:{}:{}", depth, steps_estimate);
    case Kind::preemption_bounded: return fmt::format("dfs:preemptions={}", bound);
    case Kind::delay_bounded: return fmt::format("delay:{}", bound);
  }
  SEEDPOOL_ASSERT_MSG(false, "unknown strategy kind");
  return {};
}

Result<StrategySpec> parse_strategy(std::string_view text) {
  constexpr std::string_view preemptions = "dfs:preemptions=";
  constexpr std::string_view delays = "delay:";
  if (text == "random") {
    return StrategySpec{};
  }
  if (text.starts_with("pct:")) {
    return parse_pct(text);
  }
  if (text.starts_with(preemptions)) {
    return parse_bounded(text, preemptions, StrategySpec::Kind::preemption_bounded);
  }
  if (text.starts_with(delays)) {
    return parse_bounded(text, delays, StrategySpec::Kind::delay_bounded);
  }
  return strategy_error(text, "unknown strategy");
}

std::unique_ptr<Strategy> make_random_walk() { return std::make_unique<RandomWalk>(); }

std::unique_ptr<Strategy> make_pct(unsigned depth, std::uint64_t steps_estimate) {
  return std::make_unique<Pct>(depth, steps_estimate);
}

std::unique_ptr<Strategy> make_preemption_bounded(unsigned bound, std::shared_ptr<ChoiceLog> choices) {
  return std::make_unique<Bounded>(StrategySpec::Kind::preemption_bounded, bound, std::move(choices));
}

std::unique_ptr<Strategy> make_delay_bounded(unsigned bound, std::shared_ptr<ChoiceLog> choices) {
  return std::make_unique<Bounded>(StrategySpec::Kind::delay_bounded, bound, std::move(choices));
}

std::unique_ptr<Strategy> make_strategy(const StrategySpec& spec) {
  SEEDPOOL_ASSERT_MSG(!spec.steps_estimate_is_auto(),
                      "pct:D without K reached a run: resolve the strategy before running (resolve_strategy)");
  switch (spec.kind) {
    case StrategySpec::Kind::random_walk: return make_random_walk();
    case StrategySpec::Kind::pct: return make_pct(spec.depth, spec.steps_estimate);
    case StrategySpec::Kind::preemption_bounded: return make_preemption_bounded(spec.bound, spec.choices);
    case StrategySpec::Kind::delay_bounded: return make_delay_bounded(spec.bound, spec.choices);
  }
  SEEDPOOL_ASSERT_MSG(false, "unknown strategy kind");
  return nullptr;
}

}  // namespace seedpool::sim
