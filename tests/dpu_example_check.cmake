# quantize exports the pruned source VGG13BN as an .xmodel and counts its int8 hits on 300 test
# images; the board program (built against the VART stand-in) runs that file on the same
# images and must count the same; a truncated copy of the file is a clear error.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
execute_process(COMMAND ${QUANTIZE} --weights ${SOURCE}/docs/results/sgp_vgg13bn_source_pruned.npz
                        --calib-images 128 --test-limit 300 --xmodel ${WORK}/model.xmodel --json ${WORK}/q.json
                RESULT_VARIABLE rc OUTPUT_VARIABLE log ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "quantize --xmodel failed: ${log} ${err}")
endif()
file(READ ${WORK}/q.json q)
string(JSON int8_correct GET "${q}" int8_correct)
execute_process(COMMAND ${DPU} --xmodel ${WORK}/model.xmodel --limit 300 RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
message(STATUS "${out}")
string(REGEX MATCH "([0-9]+) correct" m "${out}")
if(NOT rc EQUAL 0 OR NOT CMAKE_MATCH_1 EQUAL int8_correct)
  message(FATAL_ERROR "the DPU program should count ${int8_correct} correct, as int8_target: ${out} ${err}")
endif()
file(COPY_FILE ${WORK}/model.xmodel ${WORK}/truncated.xmodel)
execute_process(COMMAND truncate -s 1000 ${WORK}/truncated.xmodel)
execute_process(COMMAND ${DPU} --xmodel ${WORK}/truncated.xmodel --limit 10 RESULT_VARIABLE rc ERROR_VARIABLE err)
string(FIND "${err}" "truncated.xmodel: not a serialized XIR graph" named)
if(rc EQUAL 0 OR named LESS 0)
  message(FATAL_ERROR "a truncated model should be a clear error: ${err}")
endif()
