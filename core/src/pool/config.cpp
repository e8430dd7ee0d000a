#include <seedpool/core/codec.hpp>
#include <seedpool/core/pool_config.hpp>

#include <fmt/format.h>

namespace seedpool {
namespace {

Error invalid(std::string_view field, std::string_view rule) {
  return Error{ErrorCode::invalid_argument, fmt::format("invalid PoolConfig.{}: {}", field, rule), {}};
}

std::string show(Duration d) { return fmt::format("{}ns", d.ns()); }

Status check_sizes(const PoolConfig& c) {
  if (c.size.max == 0) {
    return invalid("size.max", "must be at least 1");
  }
  if (c.size.min > c.size.max) {
    return invalid("size.min", fmt::format("{} exceeds size.max {}", c.size.min, c.size.max));
  }
  if (c.init == InitMode::eager && c.min_ready > c.size.min) {
    return invalid("min_ready", fmt::format("{} exceeds size.min {} (eager start launches size.min workers)",
                                            c.min_ready, c.size.min));
  }
  if (c.waiters_max == 0) {
    return invalid("waiters_max", "must be at least 1");
  }
  if (c.mailbox_depth_max < 16) {
    return invalid("mailbox_depth_max", fmt::format("{} is below the minimum of 16", c.mailbox_depth_max));
  }
  if (c.affinity_keys_max == 0) {
    return invalid("affinity_keys_max", "must be at least 1");
  }
  if (c.stderr_lines_kept == 0 || c.stderr_line_bytes_max == 0) {
    return invalid("stderr_lines_kept", "stderr_lines_kept and stderr_line_bytes_max must be at least 1");
  }
  return {};
}

Status check_durations(const PoolConfig& c) {
  const std::pair<std::string_view, Duration> positive[] = {
      {"init_timeout", c.init_timeout},       {"checkout_timeout", c.checkout_timeout},
      {"call_timeout", c.call_timeout},       {"health_timeout", c.health_timeout},
      {"restart_backoff_base", c.restart_backoff_base}, {"breaker_window", c.breaker_window},
      {"breaker_cooldown", c.breaker_cooldown}, {"terminate_grace", c.terminate_grace},
  };
  for (const auto& [field, value] : positive) {
    if (value <= Duration::zero()) {
      return invalid(field, fmt::format("{} must be positive", show(value)));
    }
  }
  const std::pair<std::string_view, Duration> non_negative[] = {
      {"health_interval", c.health_interval},
      {"max_lifetime", c.max_lifetime},
      {"max_lifetime_jitter", c.max_lifetime_jitter},
      {"shutdown_grace", c.shutdown_grace},
      {"ready_exit_window", c.ready_exit_window},
  };
  for (const auto& [field, value] : non_negative) {
    if (value < Duration::zero()) {
      return invalid(field, fmt::format("{} must not be negative", show(value)));
    }
  }
  if (c.restart_backoff_max < c.restart_backoff_base) {
    return invalid("restart_backoff_max", fmt::format("{} is below restart_backoff_base {}",
                                                      show(c.restart_backoff_max), show(c.restart_backoff_base)));
  }
  if (c.max_lifetime_jitter > c.max_lifetime) {
    return invalid("max_lifetime_jitter", fmt::format("{} exceeds max_lifetime {}", show(c.max_lifetime_jitter),
                                                      show(c.max_lifetime)));
  }
  return {};
}

}  // namespace

Result<InitMode> parse_init_mode(std::string_view text) {
  if (text == "eager") {
    return InitMode::eager;
  }
  if (text == "lazy") {
    return InitMode::lazy;
  }
  return Error{ErrorCode::invalid_argument,
               fmt::format("unknown init mode '{}': expected 'eager' or 'lazy'", text), {}};
}

std::string_view to_string(InitMode mode) noexcept { return mode == InitMode::eager ? "eager" : "lazy"; }

Status PoolConfig::validate() const {
  if (name.empty()) {
    return invalid("name", "must not be empty");
  }
  if (command.program.empty()) {
    return invalid("command.program", "must name the worker executable");
  }
  if (Status s = check_sizes(*this); !s) {
    return s;
  }
  if (Status s = check_durations(*this); !s) {
    return s;
  }
  if (restart_backoff_jitter_percent > 100) {
    return invalid("restart_backoff_jitter_percent", fmt::format("{} exceeds 100", restart_backoff_jitter_percent));
  }
  if (breaker_failures == 0) {
    return invalid("breaker_failures", "must be at least 1");
  }
  if (frame_bytes_max < kFrameHeaderBytes || frame_bytes_max > kFrameLengthBytes + std::uint64_t{UINT32_MAX}) {
    return invalid("frame_bytes_max", fmt::format("{} is outside [{}, {}] (an empty frame .. the length field's range)",
                                                  frame_bytes_max, kFrameHeaderBytes,
                                                  kFrameLengthBytes + std::uint64_t{UINT32_MAX}));
  }
  return {};
}

}  // namespace seedpool
