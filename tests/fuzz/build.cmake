# Builds the fuzz targets (tests/fuzz/CMakeLists.txt) twice, with clang (libFuzzer) and with
# g++ (the two targets that declare a network), and writes the seed corpora.
#   cmake -DSOURCE=<repo> -DWORK=<dir> -DCLANG=<clang++> -DGXX=<g++> -DENGINE=<libFuzzer .a> -P build.cmake
foreach(side clang gcc)
  if(side STREQUAL "clang")
    set(_cxx ${CLANG})
  else()
    set(_cxx ${GXX})
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE}/tests/fuzz -B ${WORK}/${side} -DCMAKE_BUILD_TYPE=Debug
                          -DCMAKE_CXX_COMPILER=${_cxx} -DSGP_LIBFUZZER=${ENGINE}
                  RESULT_VARIABLE rc OUTPUT_QUIET)
  if(rc)
    message(FATAL_ERROR "configuring the fuzz targets with ${_cxx} failed")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK}/${side} -j 2 RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "building the fuzz targets with ${_cxx} failed")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK}/seeds)
execute_process(COMMAND ${WORK}/gcc/fuzz_seeds ${WORK}/seeds RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "fuzz_seeds failed")
endif()
