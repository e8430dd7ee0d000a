#include "options.hpp"

#include <fmt/format.h>

#include <charconv>

namespace seedpool::tool {
namespace {

Error bad_load(const std::string& text, std::string_view why) {
  return Error{ErrorCode::invalid_argument,
               fmt::format("invalid --load '{}': {}; expected calls=N,concurrency=C[,payload=TEXT]", text, why), {}};
}

}  // namespace

Result<LoadSpec> parse_load(const std::string& text) {
  LoadSpec spec;
  std::string_view rest = text;
  while (!rest.empty()) {
    // payload= takes the rest of the text: a JSON payload contains commas.
    if (rest.starts_with("payload=")) {
      spec.payload = std::string(rest.substr(8));
      break;
    }
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return bad_load(text, fmt::format("'{}' is not KEY=VALUE", item));
    }
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = item.substr(eq + 1);
    std::uint64_t number = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (ec != std::errc() || end != value.data() + value.size() || number == 0) {
      return bad_load(text, fmt::format("'{}' needs a positive integer, got '{}'", key, value));
    }
    if (key == "calls") {
      spec.calls = number;
    } else if (key == "concurrency") {
      spec.concurrency = number;
    } else {
      return bad_load(text, fmt::format("unknown key '{}'", key));
    }
  }
  if (spec.calls == 0) {
    return bad_load(text, "calls=N is required");
  }
  return spec;
}

}  // namespace seedpool::tool
