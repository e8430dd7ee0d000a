# Steps shared by the examples' CI scripts (examples/*/ci/build_and_test.cmake):
# install the seedpool build tree into a scratch prefix, build the example
# against it through find_package(seedpool) as a user's project would, and run
# commands checking their exit status.
#
# Requires SEEDPOOL_BINARY_DIR, EXAMPLE_SOURCE_DIR and WORK_DIR; sets prefix
# and example_build.
foreach(var SEEDPOOL_BINARY_DIR EXAMPLE_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "-D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED CMAKE_GENERATOR)
  set(CMAKE_GENERATOR "Unix Makefiles")
endif()

set(prefix ${WORK_DIR}/prefix)
set(example_build ${WORK_DIR}/build)

# run_step(description [ECHO] [STATUS n] command...): runs a command, fails
# with its output when it does not exit with n (default 0); with ECHO also
# prints its output when it succeeds.
function(run_step description)
  set(echo FALSE)
  set(expected 0)
  set(command ${ARGN})
  list(GET command 0 first)
  if(first STREQUAL "ECHO")
    set(echo TRUE)
    list(REMOVE_AT command 0)
  endif()
  list(GET command 0 first)
  if(first STREQUAL "STATUS")
    list(GET command 1 expected)
    list(REMOVE_AT command 0 1)
  endif()
  execute_process(COMMAND ${command} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL expected)
    message(FATAL_ERROR "${description} failed (${status}, expected ${expected}):\n${out}\n${err}")
  endif()
  if(echo)
    message("${out}${err}")
  endif()
  message(STATUS "${description}: ok")
endfunction()

# Installs seedpool, configures and builds the example in a fresh directory.
function(install_and_build_example)
  file(REMOVE_RECURSE ${WORK_DIR})
  run_step("install seedpool into ${prefix}" ${CMAKE_COMMAND} --install ${SEEDPOOL_BINARY_DIR} --prefix ${prefix})
  run_step("configure the example" ${CMAKE_COMMAND} -S ${EXAMPLE_SOURCE_DIR} -B ${example_build}
    -G ${CMAKE_GENERATOR} -DCMAKE_PREFIX_PATH=${prefix})
  run_step("build the example" ${CMAKE_COMMAND} --build ${example_build})
endfunction()

# drive_sim(sim scenario buggy_scenario seeds): the driver as a user takes it
# through a bug: the correct scenario passes a sweep with --jobs 2; the buggy
# one fails one (exit 1) and saves the failure as a seed file; that file
# replays exactly with a Perfetto trace; it shrinks; the shrunk file replays.
function(drive_sim sim scenario buggy seeds)
  run_step("${sim} list" ECHO ${sim} list)
  run_step("${sim} run ${scenario} --jobs 2" ECHO ${sim} run ${scenario} --seeds ${seeds} --jobs 2 --quiet)
  run_step("${sim} run ${buggy} finds the bug" ECHO STATUS 1
    ${sim} run ${buggy} --seeds ${seeds} --jobs 2 --quiet --max-failures 1 --save-failures ${WORK_DIR}/found)
  file(GLOB found ${WORK_DIR}/found/${buggy}-*.json)
  list(LENGTH found found_count)
  if(NOT found_count EQUAL 1)
    message(FATAL_ERROR "${sim} run --save-failures wrote ${found_count} seed files, expected 1")
  endif()
  run_step("${sim} replay the found seed file --trace" ECHO ${sim} replay ${found} --trace ${WORK_DIR}/t.json)
  if(NOT EXISTS ${WORK_DIR}/t.json)
    message(FATAL_ERROR "${sim} replay --trace wrote no ${WORK_DIR}/t.json")
  endif()
  run_step("${sim} shrink the found seed file" ECHO ${sim} shrink ${found} -o ${WORK_DIR}/shrunk.json)
  run_step("${sim} replay the shrunk file" ECHO ${sim} replay ${WORK_DIR}/shrunk.json)
endfunction()
