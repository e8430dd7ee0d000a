# Fails when a file under core/ names a clock, thread, sleep, random source or
# OS interface directly. Those belong behind the World.
cmake_policy(SET CMP0057 NEW)  # if(... IN_LIST ...)
file(GLOB_RECURSE sources ${CORE_DIR}/*.hpp ${CORE_DIR}/*.cpp ${CORE_DIR}/*.h)
set(forbidden
  "std::chrono" "<chrono>" "std::thread" "<thread>" "std::this_thread" "std::jthread"
  "std::async" "<future>" "std::random_device" "std::mt19937" "<random>" "rand("
  "srand(" "time(nullptr" "clock_gettime" "gettimeofday" "usleep" "nanosleep"
  "::sleep(" "<unistd.h>" "<sys/" "<signal.h>" "<fcntl.h>" "fork(" "execv" "posix_spawn"
  "pthread_" "std::condition_variable" "std::mutex" "<mutex>" "<condition_variable>"
  "std::recursive_mutex" "std::timed_mutex" "std::shared_mutex" "<shared_mutex>" "std::call_once"
  "std::once_flag" "std::latch" "<latch>" "std::barrier" "<barrier>" "std::counting_semaphore"
  "std::binary_semaphore" "<semaphore>" "steady_clock" "system_clock" "high_resolution_clock"
  "utc_clock" "file_clock" "tai_clock" "gps_clock")
# sync.hpp may include <mutex> for std::unique_lock and std::lock_guard, the
# standard lock holders its ConditionVariable and users hold a Mutex with; the
# kernel-backed types declared beside them stay forbidden there too. It may
# include <chrono> for std::chrono::duration, so that ported code passes its
# timeouts unchanged; the clocks stay forbidden there too. It may include
# <future> for std::future_error and std::future_status, which its Promise
# and Future use as the standard library's do; std::async stays forbidden.
# It may include <condition_variable> for std::cv_status, which its
# ConditionVariable's timed waits return; the kernel-backed condition
# variables stay forbidden there too.
set(allowed_in_sync "<mutex>" "<chrono>" "std::chrono" "<future>" "<condition_variable>")
set(violations "")
foreach(source IN LISTS sources)
  file(READ ${source} text)
  foreach(word IN LISTS forbidden)
    if(source MATCHES "/core/include/seedpool/core/sync\\.hpp$" AND word IN_LIST allowed_in_sync)
      continue()
    endif()
    string(FIND "${text}" "${word}" at)
    if(NOT at EQUAL -1)
      list(APPEND violations "${source}: ${word}")
    endif()
  endforeach()
endforeach()
list(LENGTH sources count)
if(count EQUAL 0)
  message(FATAL_ERROR "no sources found under ${CORE_DIR}")
endif()
if(violations)
  string(REPLACE ";" "\n  " listing "${violations}")
  message(FATAL_ERROR "core/ must use the World for these:\n  ${listing}")
endif()
message(STATUS "${count} files under core/ use only the World")
