# An experiment killed at the worst moment of a round (its checkpoint written, state.json not
# yet updated) resumes to exactly the result of an uninterrupted run; a rerun with other
# settings, or while another run holds the folder, is refused.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(args --model demo --limit 96 --validation 100 --test-limit 64 --calib-images 64 --batch 32 --baseline-epochs 1 --sparse-epochs 1
         --finetune-epochs 1 --sparsity-at relu --budget 100 --rounds 3 --threads 1 --controls ns)
execute_process(COMMAND ${EXE} ${args} --dir ${WORK}/whole --json ${WORK}/whole.json RESULT_VARIABLE rc
                ERROR_VARIABLE log)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the uninterrupted run failed: ${log}")
endif()
# Stopped right after round 2's checkpoint is written (the test hook ends the process there).
execute_process(COMMAND ${CMAKE_COMMAND} -E env SGP_TEST_STOP_AFTER_ROUND_CHECKPOINT=2 ${EXE} ${args} --dir
                        ${WORK}/killed --json ${WORK}/killed.json RESULT_VARIABLE rc ERROR_VARIABLE log)
file(READ ${WORK}/killed/state.json state)
string(JSON r1 ERROR_VARIABLE no1 GET "${state}" sgp_round_1)
string(JSON r2 ERROR_VARIABLE no2 GET "${state}" sgp_round_2)
if(NOT rc EQUAL 3 OR no1 OR NOT no2)
  message(FATAL_ERROR "the run should stop after round 2's checkpoint, before state.json records round 2: ${rc} ${log}")
endif()
execute_process(COMMAND ${EXE} ${args} --dir ${WORK}/killed --json ${WORK}/killed.json RESULT_VARIABLE rc
                ERROR_VARIABLE log)
string(FIND "${log}" "round 2's record recovered" recovered)
string(FIND "${log}" "round 2:" redone)
if(NOT rc EQUAL 0 OR recovered EQUAL -1 OR NOT redone EQUAL -1)
  message(FATAL_ERROR "the resumed run should take round 2 from its checkpoint, not redo it: ${log}")
endif()
file(READ ${WORK}/whole.json whole)
file(READ ${WORK}/killed.json killed)
foreach(key params_after macs_after pruned_accuracy rounds)
  string(JSON a GET "${whole}" ${key})
  string(JSON b GET "${killed}" ${key})
  if(NOT a STREQUAL b)
    message(FATAL_ERROR "${key}: ${a} uninterrupted, ${b} killed and resumed")
  endif()
endforeach()
string(JSON n LENGTH "${whole}" round_reports)
math(EXPR last "${n} - 1")
foreach(i RANGE ${last})
  string(JSON a GET "${whole}" round_reports ${i} params_removed)
  string(JSON b GET "${killed}" round_reports ${i} params_removed)
  if(NOT a STREQUAL b)
    message(FATAL_ERROR "round ${i}: ${a} of the parameters removed uninterrupted, ${b} killed and resumed")
  endif()
endforeach()
string(JSON params GET "${whole}" params_after)
message(STATUS "uninterrupted and killed-and-resumed: ${params} parameters after ${n} rounds")
# Other settings in the same folder are refused, naming them.
execute_process(COMMAND ${EXE} ${args} --seed 2 --lr 0.1 --dir ${WORK}/killed RESULT_VARIABLE rc ERROR_VARIABLE log)
string(FIND "${log}" "--lr 0.0500000007 (now 0.100000001), --seed 1 (now 2)" named)
if(rc EQUAL 0 OR named EQUAL -1)
  message(FATAL_ERROR "a rerun with other settings should be refused, naming them: ${log}")
endif()
# A folder another live run holds is refused (flock(1) holds its lock meanwhile).
execute_process(COMMAND flock ${WORK}/killed/lock sleep 3
                COMMAND sh -c "sleep 1; \"$0\" \"$@\"" ${EXE} ${args} --dir ${WORK}/killed
                RESULT_VARIABLE rcs ERROR_VARIABLE log)
string(FIND "${log}" "another run (process" refused)
if(refused EQUAL -1)
  message(FATAL_ERROR "a folder held by another run should be refused: ${log}")
endif()
