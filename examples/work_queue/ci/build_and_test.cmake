# Builds examples/work_queue against an INSTALLED seedpool, the way a user's
# project would, then runs the example's tests and its real program.
#
#   cmake -DSEEDPOOL_BINARY_DIR=<seedpool build tree> -DEXAMPLE_SOURCE_DIR=<examples/work_queue>
#         -DWORK_DIR=<scratch dir> [-DCMAKE_GENERATOR=Ninja] -P build_and_test.cmake
#
# Steps: cmake --install the build tree into WORK_DIR/prefix; configure the
# example with CMAKE_PREFIX_PATH pointing there (find_package(seedpool)); build
# it; run work_queue_tests and work_queue_real; drive work_queue_sim (the
# queue's scenarios linked with seedpool::sim_main) through run --jobs,
# replay --trace and shrink. Any failing step fails the script with that
# step's output.
foreach(var SEEDPOOL_BINARY_DIR EXAMPLE_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "build_and_test.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED CMAKE_GENERATOR)
  set(CMAKE_GENERATOR "Unix Makefiles")
endif()

set(prefix ${WORK_DIR}/prefix)
set(example_build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})

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
    message(FATAL_ERROR "${description} failed (${status}):\n${out}\n${err}")
  endif()
  if(echo)
    message("${out}${err}")
  endif()
  message(STATUS "${description}: ok")
endfunction()

run_step("install seedpool into ${prefix}" ${CMAKE_COMMAND} --install ${SEEDPOOL_BINARY_DIR} --prefix ${prefix})
run_step("configure the example" ${CMAKE_COMMAND} -S ${EXAMPLE_SOURCE_DIR} -B ${example_build}
  -G ${CMAKE_GENERATOR} -DCMAKE_PREFIX_PATH=${prefix})
run_step("build the example" ${CMAKE_COMMAND} --build ${example_build})
run_step("run work_queue_tests" ECHO ${example_build}/work_queue_tests)
run_step("run work_queue_real" ECHO ${example_build}/work_queue_real)

# The driver, as docs/guide.md walks a user through it.
set(sim ${example_build}/work_queue_sim)
run_step("work_queue_sim list" ECHO ${sim} list)
run_step("work_queue_sim run work-queue --jobs 2" ECHO ${sim} run work-queue --seeds 500 --jobs 2 --quiet)
run_step("work_queue_sim run work-queue-buggy finds the bug" ECHO STATUS 1
  ${sim} run work-queue-buggy --seeds 2000 --jobs 2 --quiet --max-failures 1 --save-failures ${WORK_DIR}/found)
file(GLOB found ${WORK_DIR}/found/work-queue-buggy-*.json)
list(LENGTH found found_count)
if(NOT found_count EQUAL 1)
  message(FATAL_ERROR "work_queue_sim run --save-failures wrote ${found_count} seed files, expected 1")
endif()
run_step("work_queue_sim replay the found seed file --trace" ECHO ${sim} replay ${found} --trace ${WORK_DIR}/t.json)
if(NOT EXISTS ${WORK_DIR}/t.json)
  message(FATAL_ERROR "work_queue_sim replay --trace wrote no ${WORK_DIR}/t.json")
endif()
run_step("work_queue_sim shrink the found seed file" ECHO ${sim} shrink ${found} -o ${WORK_DIR}/shrunk.json)
run_step("work_queue_sim replay the shrunk file" ECHO ${sim} replay ${WORK_DIR}/shrunk.json)
run_step("work_queue_sim replay the committed corpus" ECHO ${sim} replay ${EXAMPLE_SOURCE_DIR}/seeds)
