# emit_header end to end: the quantize example writes the pruned source VGG13BN (weights from
# docs/results) as a static header with its int8 model, plus 16 test images and the source
# network's outputs; a program that includes them, and reads no file, is compiled with the
# project's flags and must reproduce every output exactly. The int8 model is fine-tuned (QAT)
# first, so its int8 weights are not those of the float weights the header also carries.
# With GENERATOR and MODEL (tests/static_header_graph.cpp): a pruned ResNet-20 or MobileNetV2
# (residual adds, depthwise convolutions, ReLU6, average pools) instead, written the same way.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
if(DEFINED GENERATOR)
  execute_process(COMMAND ${GENERATOR} ${MODEL} ${WORK} RESULT_VARIABLE rc OUTPUT_VARIABLE log ERROR_VARIABLE err)
else()
  execute_process(COMMAND ${QUANTIZE} --weights ${SOURCE}/docs/results/sgp_vgg13bn_source_pruned.npz
                          --calib-images 64 --qat-images 64 --qat-epochs 1 --test-limit 64 --header ${WORK}/model.hpp
                          --header-check ${WORK}/check_data.hpp RESULT_VARIABLE rc OUTPUT_VARIABLE log ERROR_VARIABLE err)
endif()
if(NOT rc EQUAL 0 OR NOT EXISTS ${WORK}/model.hpp)
  message(FATAL_ERROR "writing the header failed: ${log} ${err}")
endif()
message(STATUS "${log}")
separate_arguments(flags UNIX_COMMAND "${FLAGS}")
execute_process(COMMAND ${CXX} ${flags} -I${SOURCE}/include -I${WORK} ${SOURCE}/tests/static_header_check.cpp
                        -o ${WORK}/check -lz -pthread RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the program on the emitted header does not compile: ${err}")
endif()
execute_process(COMMAND ${WORK}/check RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the static header's outputs differ from the source network's: ${out} ${err}")
endif()
