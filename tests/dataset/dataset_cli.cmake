# `edgeprune dataset` on custom JSONL: a good file with two splits is accepted; each
# malformed file is rejected with a non-zero status and "FILE:LINE" in the message;
# --strict rejects the paper's IOI file at its first unequal-length row; usage errors.
set(dir ${WORK}/dataset_cli)
file(REMOVE_RECURSE ${dir})
file(MAKE_DIRECTORY ${dir})

function(run_ok name)
  execute_process(COMMAND ${BIN} dataset ${ARGN} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${name}: exit ${rc}\n${err}")
  endif()
endfunction()

function(expect_fail name pattern)
  execute_process(COMMAND ${BIN} dataset ${ARGN} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(rc EQUAL 0)
    message(FATAL_ERROR "${name}: accepted, expected a failure")
  endif()
  if(NOT err MATCHES "${pattern}")
    message(FATAL_ERROR "${name}: stderr does not match '${pattern}':\n${err}")
  endif()
  message(STATUS "${name}: rejected as expected")
endfunction()

set(good "{\"clean\": \"When Mary and John went to the store, John gave a drink to <predict>Mary</predict>\", \"corrupted\": \"When Alice and Bob went to the store, Carl gave a drink to <predict>Bob</predict>\"}
{\"clean\": \"The capital of France is <predict>Paris</predict>\", \"corrupted\": \"The capital of Spain is\", \"split\": \"validation\"}

{\"clean\": \"One, two, three, <predict>four</predict>\", \"corrupted\": \"One, two, six,\"}
")
file(WRITE ${dir}/good.jsonl "${good}")
run_ok(good --task jsonl --from ${dir}/good.jsonl --tokenizer ${TOKDIR} --out ${dir}/good.h5)
execute_process(COMMAND h5dump -A ${dir}/good.h5 OUTPUT_VARIABLE dump RESULT_VARIABLE rc)
if(rc EQUAL 0)
  if(NOT dump MATCHES "GROUP \"train\"" OR NOT dump MATCHES "GROUP \"validation\"")
    message(FATAL_ERROR "good.jsonl: expected splits train and validation:\n${dump}")
  endif()
endif()

# line 2 in each bad file is the bad one (line 1 is valid)
set(line1 "{\"clean\": \"The capital of France is <predict>Paris</predict>\", \"corrupted\": \"The capital of Spain is\"}")
file(WRITE ${dir}/badjson.jsonl "${line1}\n{\"clean\": \"x <predict>y</predict>\", \"corrupted\": \n")
file(WRITE ${dir}/nopredict.jsonl "${line1}\n{\"clean\": \"The capital of Italy is Rome\", \"corrupted\": \"The capital of Spain is\"}\n")
file(WRITE ${dir}/unequal.jsonl "${line1}\n{\"clean\": \"The capital of France is <predict>Paris</predict>\", \"corrupted\": \"The big capital city of Spain is\"}\n")
file(WRITE ${dir}/nofield.jsonl "${line1}\n{\"clean\": \"The capital of France is <predict>Paris</predict>\"}\n")
file(WRITE ${dir}/multitoken.jsonl "${line1}\n{\"clean\": \"The word is <predict>antidisestablishmentarianism</predict>\", \"corrupted\": \"The name is\"}\n")
file(WRITE ${dir}/notobject.jsonl "${line1}\n[1, 2]\n")
foreach(case badjson nopredict unequal nofield multitoken notobject)
  expect_fail(${case} "${case}\\.jsonl:2:" --task jsonl --from ${dir}/${case}.jsonl --tokenizer ${TOKDIR}
              --out ${dir}/${case}.h5)
  if(EXISTS ${dir}/${case}.h5)
    message(FATAL_ERROR "${case}: an output file was left behind")
  endif()
endforeach()

# the paper's IOI file under --strict: line 2 is its first unequal-length example
expect_fail(strict "ioi-train\\.jsonl:2:" --task ioi --from ${REFDIR}/ioi-train.jsonl --strict
            --tokenizer ${TOKDIR} --out ${dir}/strict.h5)
# a file of another task
expect_fail(wrongtask "this is a gt file" --task gp --from ${REFDIR}/gt-train.jsonl --tokenizer ${TOKDIR}
            --out ${dir}/wrong.h5)
# usage errors: status 2
foreach(args "--task;ioi;--n;10;--out;${dir}/u.h5" "--task;nosuch;--n;1;--out;${dir}/u.h5"
             "--task;ioi;--n;0;--tokenizer;${TOKDIR};--out;${dir}/u.h5")
  execute_process(COMMAND ${BIN} dataset ${args} OUTPUT_QUIET ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 2)
    message(FATAL_ERROR "usage error '${args}': exit ${rc} (expected 2): ${err}")
  endif()
endforeach()
# tracr tasks need no tokenizer
run_ok(reverse --task reverse --n 50 --seed 1 --out ${dir}/reverse.h5)
message(STATUS "dataset CLI ok")
