#include "proc_memory.hpp"

#include <seedpool/core/assert.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seedpool::bench {
namespace {

// The number in a "Name:   1234 kB" line, after the colon.
std::optional<std::uint64_t> parse_kib_field(std::string_view line) {
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view rest = line.substr(colon + 1);
  const std::size_t digits = rest.find_first_not_of(" \t");
  if (digits == std::string_view::npos) {
    return std::nullopt;
  }
  rest.remove_prefix(digits);
  std::uint64_t kib = 0;
  const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), kib);
  if (error != std::errc() || end == rest.data()) {
    return std::nullopt;
  }
  return kib;
}

// True for an smaps header line naming an anonymous read-write private
// mapping exactly `length` bytes long: "lo-hi rw-p offset dev 0" and no path.
bool is_anonymous_rw_mapping(std::string_view line, std::size_t length) {
  std::vector<std::string_view> fields;
  std::size_t at = 0;
  while (fields.size() < 6) {
    at = line.find_first_not_of(' ', at);
    if (at == std::string_view::npos) {
      break;
    }
    const std::size_t end = std::min(line.find(' ', at), line.size());
    fields.push_back(line.substr(at, end - at));
    at = end;
  }
  if (fields.size() != 5 || fields[1] != "rw-p" || fields[4] != "0") {
    return false;
  }
  const std::string_view range = fields[0];
  const std::size_t dash = range.find('-');
  if (dash == std::string_view::npos) {
    return false;
  }
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
  const bool parsed = std::from_chars(range.data(), range.data() + dash, lo, 16).ec == std::errc() &&
                      std::from_chars(range.data() + dash + 1, range.data() + range.size(), hi, 16).ec == std::errc();
  return parsed && hi > lo && hi - lo == length;
}

}  // namespace

MemoryStatus read_memory_status() {
  std::ifstream status("/proc/self/status");
  SEEDPOOL_ASSERT_MSG(status.is_open(), "cannot open /proc/self/status");
  MemoryStatus out;
  int found = 0;
  std::string line;
  while (std::getline(status, line)) {
    std::uint64_t* field = line.starts_with("VmRSS:")   ? &out.rss_bytes
                           : line.starts_with("VmHWM:") ? &out.hwm_bytes
                           : line.starts_with("VmPTE:") ? &out.page_table_bytes
                                                        : nullptr;
    if (field == nullptr) {
      continue;
    }
    const std::optional<std::uint64_t> kib = parse_kib_field(line);
    SEEDPOOL_ASSERT_MSG(kib.has_value(), "malformed line in /proc/self/status");
    *field = *kib * 1024;
    ++found;
  }
  SEEDPOOL_ASSERT_MSG(found == 3, "VmRSS, VmHWM or VmPTE missing from /proc/self/status");
  return out;
}

bool reset_peak_rss() {
  std::FILE* file = std::fopen("/proc/self/clear_refs", "w");
  if (file == nullptr) {
    return false;
  }
  const bool written = std::fputs("5", file) >= 0;
  return std::fclose(file) == 0 && written;
}

MappingResidency anonymous_mappings_of_length(std::size_t length) {
  std::ifstream smaps("/proc/self/smaps");
  SEEDPOOL_ASSERT_MSG(smaps.is_open(), "cannot open /proc/self/smaps");
  MappingResidency out;
  bool counted = false;
  std::string line;
  while (std::getline(smaps, line)) {
    const char first = line.empty() ? ' ' : line.front();
    const bool header = (first >= '0' && first <= '9') || (first >= 'a' && first <= 'f');
    if (header) {
      counted = is_anonymous_rw_mapping(line, length);
      out.mappings += counted ? 1 : 0;
    } else if (counted && line.starts_with("Rss:")) {
      out.rss_bytes += parse_kib_field(line).value_or(0) * 1024;
    }
  }
  return out;
}

}  // namespace seedpool::bench
