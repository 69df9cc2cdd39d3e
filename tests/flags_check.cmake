# The programs refuse bad flags and unusable output paths before any work, with an error
# naming the flag; a resumed run with other settings and a diverging run fail clearly.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(small --limit 64 --test-limit 32 --batch 32)

# expect_error(<text the message must hold> <command...>): exit status 1, "error: ..." on
# stderr holding the text, and no training done (no epoch line).
function(expect_error text)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE log)
  string(FIND "${log}" "error: " is_error)
  string(FIND "${log}" "${text}" named)
  string(FIND "${log}" "epoch 1/" trained)
  if(NOT rc EQUAL 1 OR NOT is_error EQUAL 0 OR named EQUAL -1 OR NOT trained EQUAL -1)
    message(FATAL_ERROR "${ARGN}\nshould fail at once with an error holding '${text}'; exit ${rc}:\n${log}")
  endif()
endfunction()

# Numbers out of range or not numbers at all.
expect_error("--epochs: '1e25' is not a whole number from 1 to" ${TRAIN} ${small} --epochs 1e25)
expect_error("--epochs: '0' is not a whole number from 1 to" ${TRAIN} ${small} --epochs 0)
expect_error("--epochs: '-1'" ${TRAIN} ${small} --epochs -1)
expect_error("--threads: '0' is not a whole number from 1 to" ${TRAIN} ${small} --threads 0)
expect_error("per core" ${TRAIN} ${small} --threads 1000)
expect_error("--batch: '100000' is not a whole number from 2 to 4096" ${TRAIN} ${small} --batch 100000)
expect_error("--batch: '1'" ${TRAIN} --batch 1)
expect_error("--lr: 'nan' is not a number" ${TRAIN} ${small} --lr nan)
expect_error("--seed: '18446744073709551615'" ${TRAIN} ${small} --seed 18446744073709551615)
expect_error("--model: nope not in" ${TRAIN} --model nope)
expect_error("--schedule: nope not in" ${TRAIN} --schedule nope)
expect_error("--nope" ${TRAIN} --nope 1)
expect_error("--rounds: '1e25'" ${EXPERIMENT} --rounds 1e25 --dir ${WORK}/exp)
expect_error("--target-params: '101'" ${EXPERIMENT} --target-params 101 --dir ${WORK}/exp)
expect_error("--validation: '0' is not a whole number from 100" ${EXPERIMENT} --validation 0 --dir ${WORK}/exp)
expect_error("--validation: '60000'" ${EXPERIMENT} --validation 60000 --dir ${WORK}/exp)
expect_error("--validation: '60000'" ${TRAIN} ${small} --validation 60000)
expect_error("--controls: unknown control 'slimming'" ${EXPERIMENT} --controls ns,slimming --dir ${WORK}/exp)
expect_error("--schedule: step not in" ${EXPERIMENT} --schedule step --dir ${WORK}/exp)
expect_error("--patience: '0'" ${EXPERIMENT} --patience 0 --dir ${WORK}/exp)
expect_error("--weights is required" ${QUANTIZE})
expect_error("--calib-images: '0'" ${QUANTIZE} --weights ${WORK}/w.npz --calib-images 0)
expect_error("--search-images: 64" ${QUANTIZE} --weights ${WORK}/w.npz --calib-images 32 --search-images 64)
expect_error("--qat-lr: " ${QUANTIZE} --weights ${WORK}/w.npz --qat-images 8 --qat-lr 0)
expect_error("--qat-epochs: " ${QUANTIZE} --weights ${WORK}/w.npz --qat-images 8 --qat-epochs 0)

# Output paths in a missing folder, or that are folders, before any training.
expect_error("--json: cannot write '${WORK}/none/out.json': folder ${WORK}/none does not exist" ${TRAIN} ${small}
             --json ${WORK}/none/out.json)
expect_error("--checkpoint: '${WORK}' is a folder" ${TRAIN} ${small} --checkpoint ${WORK})
expect_error("--json: cannot write" ${EXPERIMENT} --model demo ${small} --dir ${WORK}/exp --json ${WORK}/none/x.json)
expect_error("--json: cannot write" ${QUANTIZE} --weights ${WORK}/w.npz --json ${WORK}/none/q.json)
expect_error("--xmodel: cannot write" ${QUANTIZE} --weights ${WORK}/w.npz --xmodel ${WORK}/none/q.xmodel)
expect_error("--header: cannot write" ${QUANTIZE} --weights ${WORK}/w.npz --header ${WORK}/none/q.hpp)

# Divergence on the last (here the only) step of the epoch: an error naming the epoch, and no
# checkpoint.
execute_process(COMMAND ${TRAIN} --limit 32 --test-limit 32 --batch 32 --epochs 1 --lr 1e30 --checkpoint
                        ${WORK}/diverged.npz RESULT_VARIABLE rc ERROR_VARIABLE log)
string(FIND "${log}" "after epoch 1" named)
if(NOT rc EQUAL 1 OR named EQUAL -1 OR EXISTS ${WORK}/diverged.npz)
  message(FATAL_ERROR "a run diverging on its last step should fail, naming the epoch, with no checkpoint: ${log}")
endif()

# A checkpoint resumed with another seed: refused, naming the flag and both values.
execute_process(COMMAND ${TRAIN} ${small} --epochs 1 --seed 2 --checkpoint ${WORK}/c.npz RESULT_VARIABLE rc
                ERROR_VARIABLE log)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "training failed: ${log}")
endif()
expect_error("--seed 2 (now 1)" ${TRAIN} ${small} --epochs 2 --seed 1 --checkpoint ${WORK}/c.npz)
