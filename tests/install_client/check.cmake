# Installs sgp into a fresh prefix, then configures, builds and runs a client project
# that finds it with find_package(sgp).
file(REMOVE_RECURSE ${WORK})
foreach(step
    "${CMAKE_COMMAND};-S;${SOURCE};-B;${WORK}/sgp-build;-G;${GENERATOR};-DSGP_BUILD_TESTS=OFF;-DSGP_BUILD_EXAMPLES=OFF;-DSGP_BUILD_BENCH=OFF;-DCMAKE_INSTALL_PREFIX=${WORK}/prefix"
    "${CMAKE_COMMAND};--build;${WORK}/sgp-build"
    "${CMAKE_COMMAND};--install;${WORK}/sgp-build"
    "${CMAKE_COMMAND};-S;${SOURCE}/tests/install_client;-B;${WORK}/client-build;-G;${GENERATOR};-DCMAKE_PREFIX_PATH=${WORK}/prefix;-DCMAKE_BUILD_TYPE=Release"
    "${CMAKE_COMMAND};--build;${WORK}/client-build"
    "${WORK}/client-build/client")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install check failed at: ${step}")
  endif()
endforeach()
