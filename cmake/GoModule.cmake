# juke_go_module(OUT_DIR_VAR MODULE VERSION SUM)
#
# Downloads a Go module through the Go module proxy at configure time and
# checks its content hash against SUM (the "h1:" hash that go.sum records).
# The go command also verifies the hash against the checksum database, so a
# module that changed upstream, or a proxy that lies, stops the build here.
# Sets OUT_DIR_VAR to the read-only directory that holds the module's files.
function(juke_go_module out_dir_var module version sum)
  find_program(GO_PROGRAM go REQUIRED)
  execute_process(
    COMMAND ${GO_PROGRAM} mod download -json ${module}@${version}
    WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
    OUTPUT_VARIABLE json
    ERROR_VARIABLE err
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "go mod download ${module}@${version} failed: ${err}")
  endif()
  string(JSON got_sum GET "${json}" Sum)
  string(JSON dir GET "${json}" Dir)
  if(NOT got_sum STREQUAL sum)
    message(FATAL_ERROR
      "${module}@${version}: checksum ${got_sum} does not match the pinned "
      "${sum}; refusing to build with it")
  endif()
  set(${out_dir_var} ${dir} PARENT_SCOPE)
endfunction()
