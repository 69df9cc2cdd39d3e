# A short run of one fuzz target from its seeds: any crash, sanitizer report or exception
# other than sgp::error fails the test, naming the input libFuzzer saved.
#   cmake -DEXE=<fuzz_x> -DSEEDS=<dir> -DWORK=<dir> -DSECONDS=5 [-DVALUE_PROFILE=ON] -P run.cmake
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/crashes)
file(GLOB _seeds ${SEEDS}/*)
if(NOT _seeds)
  message(FATAL_ERROR "no seeds in ${SEEDS}")
endif()
file(COPY ${_seeds} DESTINATION ${WORK}/corpus)
set(_extra "")
if(VALUE_PROFILE)
  set(_extra -use_value_profile=1)  # g++'s comparison tracing is the only feedback
endif()
execute_process(COMMAND ${EXE} ${_extra} -max_total_time=${SECONDS} -rss_limit_mb=2560 -timeout=20
                        -print_final_stats=1 -artifact_prefix=${WORK}/crashes/ ${WORK}/corpus
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
string(REGEX MATCH "stat::number_of_executed_units: *[0-9]+" _runs "${out}")
message("${_runs}")
if(NOT rc EQUAL 0)
  file(GLOB _crash ${WORK}/crashes/*)
  message("${out}")
  message(FATAL_ERROR "${EXE} failed (exit ${rc}); input: ${_crash}")
endif()
