#include <seedpool/core/assert.hpp>
#include <seedpool/sim/strategy.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
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

bool parse_unsigned(std::string_view text, std::uint64_t& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && !text.empty();
}

Error strategy_error(std::string_view text, std::string_view why) {
  return Error{ErrorCode::invalid_argument,
               fmt::format("invalid strategy '{}': {}; expected 'random', 'pct:D' (the sweep estimates K) or "
                           "'pct:D:K', with depth D in 1..{} and step estimate K >= 1 (e.g. pct:3)",
                           text, why, StrategySpec::depth_max),
               {}};
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
  }
  SEEDPOOL_ASSERT_MSG(false, "unknown strategy kind");
  return {};
}

Result<StrategySpec> parse_strategy(std::string_view text) {
  if (text == "random") {
    return StrategySpec{};
  }
  if (text.starts_with("pct:")) {
    return parse_pct(text);
  }
  return strategy_error(text, "unknown strategy");
}

std::unique_ptr<Strategy> make_random_walk() { return std::make_unique<RandomWalk>(); }

std::unique_ptr<Strategy> make_pct(unsigned depth, std::uint64_t steps_estimate) {
  return std::make_unique<Pct>(depth, steps_estimate);
}

std::unique_ptr<Strategy> make_strategy(const StrategySpec& spec) {
  SEEDPOOL_ASSERT_MSG(!spec.steps_estimate_is_auto(),
                      "pct:D without K reached a run: resolve the strategy before running (resolve_strategy)");
  switch (spec.kind) {
    case StrategySpec::Kind::random_walk: return make_random_walk();
    case StrategySpec::Kind::pct: return make_pct(spec.depth, spec.steps_estimate);
  }
  SEEDPOOL_ASSERT_MSG(false, "unknown strategy kind");
  return nullptr;
}

}  // namespace seedpool::sim
