# Builds examples/work_queue against an INSTALLED seedpool, the way a user's
# project would, then runs the example's tests and its real program.
#
#   cmake -DSEEDPOOL_BINARY_DIR=<seedpool build tree> -DEXAMPLE_SOURCE_DIR=<examples/work_queue>
#         -DWORK_DIR=<scratch dir> [-DCMAKE_GENERATOR=Ninja] -P build_and_test.cmake
#
# Steps: cmake --install the build tree into WORK_DIR/prefix; configure the
# example with CMAKE_PREFIX_PATH pointing there (find_package(seedpool)); build
# it; run work_queue_tests and work_queue_real. Any failing step fails the
# script with that step's output.
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

# run_step(description [ECHO] command...): runs a command, fails with its
# output when it fails; with ECHO also prints its output when it succeeds.
function(run_step description)
  set(echo FALSE)
  set(command ${ARGN})
  list(GET command 0 first)
  if(first STREQUAL "ECHO")
    set(echo TRUE)
    list(REMOVE_AT command 0)
  endif()
  execute_process(COMMAND ${command} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
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
