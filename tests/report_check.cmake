# sgp-report on the committed pruned VGG13BN (and on the declared network, and on its exported
# .xmodel where the xmodel component is built): the files exist, the JSON's rows sum to its
# totals, every int8 op has its error, bad input is a clear error naming the file; then the
# plotting script draws every plot from those reports (where matplotlib is installed).
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(weights ${SOURCE}/docs/results/sgp_vgg13bn_source_pruned.npz)

function(run_report out)
  execute_process(COMMAND ${REPORT} --model vgg13bn-source --repeats 3 ${ARGN} --out ${out}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE log ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "sgp-report ${ARGN} failed: ${log} ${err}")
  endif()
  message(STATUS "${log}")
  foreach(ext json csv md)
    if(NOT EXISTS ${out}.${ext})
      message(FATAL_ERROR "sgp-report wrote no ${out}.${ext}")
    endif()
  endforeach()
endfunction()

# Rows against totals, read back from the JSON.
function(check_sums file state)
  file(READ ${file} j)
  string(JSON schema GET "${j}" schema)
  string(JSON got_state GET "${j}" state)
  string(JSON total_params GET "${j}" totals parameters)
  string(JSON total_macs GET "${j}" totals macs)
  string(JSON n LENGTH "${j}" layers)
  if(NOT schema STREQUAL "sgp-report/1" OR NOT got_state STREQUAL state OR n EQUAL 0)
    message(FATAL_ERROR "${file}: schema ${schema}, state ${got_state} (want ${state}), ${n} layers")
  endif()
  set(params 0)
  set(macs 0)
  set(int8_ops 0)
  math(EXPR last "${n} - 1")
  foreach(i RANGE ${last})
    string(JSON p GET "${j}" layers ${i} parameters)
    string(JSON m GET "${j}" layers ${i} macs)
    math(EXPR params "${params} + ${p}")
    math(EXPR macs "${macs} + ${m}")
    string(JSON op TYPE "${j}" layers ${i} int8_op)
    if(NOT op STREQUAL "NULL")
      math(EXPR int8_ops "${int8_ops} + 1")
      string(JSON sqnr TYPE "${j}" layers ${i} sqnr_db)
      string(JSON exact GET "${j}" layers ${i} int8_exact)
      if(NOT sqnr STREQUAL "NUMBER" AND NOT exact)
        message(FATAL_ERROR "${file}: layer ${i} runs int8 op ${op} but has no SQNR")
      endif()
    endif()
  endforeach()
  if(NOT params EQUAL total_params OR NOT macs EQUAL total_macs OR int8_ops EQUAL 0)
    message(FATAL_ERROR "${file}: the layers sum to ${params} parameters and ${macs} multiply-adds, the totals say "
                        "${total_params} and ${total_macs}; ${int8_ops} int8 ops")
  endif()
endfunction()

# Totals against figures found elsewhere: docs/results.md's pruned network, the declared one's
# compile-time counts (tests/test_shapes.cpp).
function(check_totals file params macs)
  file(READ ${file} j)
  string(JSON p GET "${j}" totals parameters)
  string(JSON m GET "${j}" totals macs)
  if(NOT p EQUAL params OR NOT m EQUAL macs)
    message(FATAL_ERROR "${file}: ${p} parameters and ${m} multiply-adds, expected ${params} and ${macs}")
  endif()
endfunction()

run_report(${WORK}/after --weights ${weights} --calib-images 16 --sqnr-images 8)
check_sums(${WORK}/after.json pruned)
check_totals(${WORK}/after.json 72370 2620096)
run_report(${WORK}/before --sqnr-images 1 --calib-images 4)
check_sums(${WORK}/before.json declared)
check_totals(${WORK}/before.json 28346698 245997568)

if(XMODEL)
  run_report(${WORK}/xmodel --xmodel ${XMODEL} --calib-images 16 --sqnr-images 4)
  check_sums(${WORK}/xmodel.json xmodel)
endif()

# A file XIR 3.5's own writer produced (tests/fixtures/xir), whose input is not an image the
# report knows: analysed on seeded noise, and said so (xmodel component only).
if(XMODEL)
  run_report(${WORK}/xir --xmodel ${SOURCE}/tests/fixtures/xir/random34_plain.xmodel --calib-images 1 --sqnr-images 4)
  check_sums(${WORK}/xir.json xmodel)
  file(READ ${WORK}/xir.json j)
  string(JSON note GET "${j}" int8_note)
  if(NOT note MATCHES "seeded")
    message(FATAL_ERROR "the report of a non-image graph should say what it ran on: ${note}")
  endif()
endif()

# Bad input names the file and the problem.
execute_process(COMMAND ${REPORT} --model vgg13bn-source --weights ${WORK}/missing.npz --out ${WORK}/x
                RESULT_VARIABLE rc ERROR_VARIABLE err)
string(FIND "${err}" "missing.npz" named)
if(rc EQUAL 0 OR named LESS 0)
  message(FATAL_ERROR "a missing weights file should be a clear error: ${err}")
endif()
execute_process(COMMAND ${REPORT} --model demo --weights ${weights} --out ${WORK}/x RESULT_VARIABLE rc
                ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "sgp_vgg13bn_source_pruned.npz")
  message(FATAL_ERROR "weights of another network should be a clear error: ${err}")
endif()
execute_process(COMMAND ${REPORT} --model demo --dpu B9999 --out ${WORK}/x RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "B9999")
  message(FATAL_ERROR "an unknown DPU size should be refused by name: ${err}")
endif()

# The plots, drawn from the reports just written.
if(PYTHON)
  execute_process(COMMAND ${PYTHON} -c "import matplotlib" RESULT_VARIABLE has_mpl OUTPUT_QUIET ERROR_QUIET)
  if(has_mpl EQUAL 0)
    execute_process(COMMAND ${PYTHON} ${SOURCE}/scripts/plot_report.py --report ${WORK}/after.json --before
                            ${WORK}/before.json --out ${WORK}/plots RESULT_VARIABLE rc OUTPUT_VARIABLE log
                            ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "plot_report.py failed: ${log} ${err}")
    endif()
    foreach(stem layers_macs layers_cpu_time layers_dpu_time layers_memory layers_sqnr)
      foreach(ext png svg)
        if(NOT EXISTS ${WORK}/plots/${stem}.${ext})
          message(FATAL_ERROR "plot_report.py drew no ${stem}.${ext}: ${log}")
        endif()
      endforeach()
    endforeach()
    if(XMODEL)  # a report without fp32 figures
      execute_process(COMMAND ${PYTHON} ${SOURCE}/scripts/plot_report.py --report ${WORK}/xmodel.json --out
                              ${WORK}/xplots RESULT_VARIABLE rc OUTPUT_VARIABLE log ERROR_VARIABLE err)
      if(NOT rc EQUAL 0 OR NOT EXISTS ${WORK}/xplots/layers_dpu_time.png)
        message(FATAL_ERROR "plot_report.py on the .xmodel's report failed: ${log} ${err}")
      endif()
    endif()
  else()
    message(STATUS "matplotlib not installed: the plots are not drawn here")
  endif()
endif()
