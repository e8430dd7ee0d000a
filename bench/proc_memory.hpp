#pragma once

// This process's memory figures, read from /proc (Linux only). Shared by the
// benchmarks that report what a task, a stack or a worker costs in RSS.

#include <cstddef>
#include <cstdint>

namespace seedpool::bench {

struct MemoryStatus {
  std::uint64_t rss_bytes = 0;         // VmRSS: resident now
  std::uint64_t hwm_bytes = 0;         // VmHWM: peak resident since start or reset_peak_rss()
  std::uint64_t page_table_bytes = 0;  // VmPTE: not part of RSS, but paid per mapping
};

// Reads VmRSS, VmHWM and VmPTE from /proc/self/status. Asserts all three are
// present: without them there is no measurement to report.
MemoryStatus read_memory_status();

// Resets VmHWM to the current RSS ("5" to /proc/self/clear_refs, Linux >=
// 4.0), so that a later VmHWM is the peak of the interval since. Returns
// false where the kernel refuses; VmHWM then is the peak since start.
bool reset_peak_rss();

struct MappingResidency {
  std::size_t mappings = 0;
  std::uint64_t rss_bytes = 0;
};

// Counts the anonymous private read-write mappings exactly `length` bytes
// long in /proc/self/smaps and sums their resident bytes. A simulator stack
// is one such mapping (its guard page is a separate PROT_NONE mapping), so
// with `length` the stack size this measures the stacks; unrelated mappings
// of that size are counted too, which is noise against thousands of stacks.
// Reads the whole of smaps: milliseconds per ten thousand mappings.
MappingResidency anonymous_mappings_of_length(std::size_t length);

}  // namespace seedpool::bench
