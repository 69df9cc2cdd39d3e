# Runs the pruning experiment end to end on a slice of Fashion-MNIST with the demo network,
# then again to check that a finished run resumes without redoing its stages.
file(REMOVE_RECURSE ${WORK})
set(args --model demo --limit 96 --test-limit 64 --calib-images 64 --batch 32 --baseline-epochs 1 --sparse-epochs 1
         --finetune-epochs 1 --final-epochs 1 --sparsity-at relu --budget 100 --dir ${WORK}/run
         --json ${WORK}/out.json)
execute_process(COMMAND ${EXE} ${args} --rounds 1 RESULT_VARIABLE rc ERROR_VARIABLE log)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "sgp_experiment failed: ${log}")
endif()
file(READ ${WORK}/out.json json)
foreach(key baseline_accuracy pruned_accuracy params_before params_after macs_before macs_after layers rule rounds
            round_reports network_slimming speedup_batch1 pruned_accuracy_before_final_finetuning within_budget)
  string(JSON value ERROR_VARIABLE err GET "${json}" ${key})
  if(err)
    message(FATAL_ERROR "out.json has no '${key}': ${json}")
  endif()
endforeach()
string(JSON before GET "${json}" params_before)
string(JSON after GET "${json}" params_after)
string(JSON name GET "${json}" layers 0 name)
if(NOT after LESS before OR NOT name STREQUAL "0 conv2d" OR NOT EXISTS ${WORK}/run/sgp_plan.json)
  message(FATAL_ERROR "nothing was pruned, or no plan: ${json}")
endif()
# Everything is done: a second invocation trains nothing and reports the same figures.
execute_process(COMMAND ${EXE} ${args} --rounds 1 RESULT_VARIABLE rc ERROR_VARIABLE log)
string(FIND "${log}" "== baseline training" retrained)
file(READ ${WORK}/out.json json2)
string(JSON after2 GET "${json2}" params_after)
if(NOT rc EQUAL 0 OR NOT retrained EQUAL -1 OR NOT after2 EQUAL after)
  message(FATAL_ERROR "resuming a finished run should redo nothing: ${log}")
endif()
# Interrupted after round 1 (the later stages' results forgotten): a run allowed two rounds
# resumes from the round checkpoint and does round 2 only.
file(READ ${WORK}/run/state.json state)
foreach(key sgp_rounds_finished sgp_accuracy sgp_accuracy_rounds ns_accuracy ns_pruning ns_fraction
            ns_accuracy_pruned ns_origin)
  string(JSON state REMOVE "${state}" ${key})
endforeach()
file(WRITE ${WORK}/run/state.json "${state}")
execute_process(COMMAND ${EXE} ${args} --rounds 2 RESULT_VARIABLE rc ERROR_VARIABLE log)
string(FIND "${log}" "resuming SGP after round 1" resumed)
string(FIND "${log}" "round 1:" redone)
file(READ ${WORK}/out.json json3)
string(JSON rounds3 GET "${json3}" rounds)
if(NOT rc EQUAL 0 OR resumed EQUAL -1 OR NOT redone EQUAL -1 OR NOT rounds3 EQUAL 2)
  message(FATAL_ERROR "resuming after round 1 should do round 2 only: ${log}")
endif()
# A run that prunes nothing (here: no rounds allowed) is a failure of the job, not a result: exit
# status 1, the message, and "failed" in its JSON.
set(args0 --model demo --limit 96 --test-limit 64 --calib-images 64 --batch 32 --baseline-epochs 1 --sparse-epochs 1
          --finetune-epochs 1 --final-epochs 1 --budget 100 --dir ${WORK}/none --json ${WORK}/none.json --rounds 0)
execute_process(COMMAND ${EXE} ${args0} RESULT_VARIABLE rc ERROR_VARIABLE log)
string(FIND "${log}" "error: SGP removed no channel" said)
if(rc EQUAL 0 OR said EQUAL -1 OR NOT EXISTS ${WORK}/none.json)
  message(FATAL_ERROR "a run that pruned nothing should fail with a message (rc ${rc}): ${log}")
endif()
file(READ ${WORK}/none.json json)
string(JSON failed GET "${json}" failed)
if(NOT failed)
  message(FATAL_ERROR "the JSON of a run that pruned nothing should say failed: ${json}")
endif()
