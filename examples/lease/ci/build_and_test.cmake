# Builds examples/lease against an INSTALLED seedpool, the way a user's
# project would, and drives lease_sim (the lease's scenarios linked with
# seedpool::sim_main) through run --jobs, replay --trace and shrink, then
# replays the committed corpus.
#
#   cmake -DSEEDPOOL_BINARY_DIR=<seedpool build tree> -DEXAMPLE_SOURCE_DIR=<examples/lease>
#         -DWORK_DIR=<scratch dir> [-DCMAKE_GENERATOR=Ninja] -P build_and_test.cmake
include(${CMAKE_CURRENT_LIST_DIR}/../../ci/example_steps.cmake)

install_and_build_example()
set(sim ${example_build}/lease_sim)
drive_sim(${sim} lease lease-unfenced 4000)
run_step("lease_sim run --swarm names the fault sites" ECHO ${sim} run lease --seeds 500 --swarm --quiet)
run_step("lease_sim replay the committed corpus" ECHO ${sim} replay ${EXAMPLE_SOURCE_DIR}/seeds)
