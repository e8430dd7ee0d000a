# Fails when a file under core/ names a clock, thread, sleep, random source or
# OS interface directly. Those belong behind the World.
file(GLOB_RECURSE sources ${CORE_DIR}/*.hpp ${CORE_DIR}/*.cpp ${CORE_DIR}/*.h)
set(forbidden
  "std::chrono" "<chrono>" "std::thread" "<thread>" "std::this_thread" "std::jthread"
  "std::async" "<future>" "std::random_device" "std::mt19937" "<random>" "rand("
  "srand(" "time(nullptr" "clock_gettime" "gettimeofday" "usleep" "nanosleep"
  "::sleep(" "<unistd.h>" "<sys/" "<signal.h>" "<fcntl.h>" "fork(" "execv" "posix_spawn"
  "pthread_" "std::condition_variable" "std::mutex" "<mutex>" "<condition_variable>")
set(violations "")
foreach(source IN LISTS sources)
  file(READ ${source} text)
  foreach(word IN LISTS forbidden)
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
