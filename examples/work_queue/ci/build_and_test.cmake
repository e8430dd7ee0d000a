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
include(${CMAKE_CURRENT_LIST_DIR}/../../ci/example_steps.cmake)

install_and_build_example()
run_step("run work_queue_tests" ECHO ${example_build}/work_queue_tests)
run_step("run work_queue_real" ECHO ${example_build}/work_queue_real)

# The driver, as docs/guide.md walks a user through it.
drive_sim(${example_build}/work_queue_sim work-queue work-queue-buggy 2000)
run_step("work_queue_sim replay the committed corpus" ECHO ${example_build}/work_queue_sim replay ${EXAMPLE_SOURCE_DIR}/seeds)
