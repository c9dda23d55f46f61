# version.cmake: run by the build (cmake -P) before cuvae_core compiles: writes
# generated/version.h from version.h.in with the source tree's `git describe`
# and commit as they are now, not as they were when CMake configured, so
# `cuvae --version` and each run's provenance name the commit that was built.
# configure_file rewrites the header only when its text changes: an unchanged
# tree recompiles nothing. Inputs: SRC (source dir), OUT (header path),
# GIT (git executable, may be empty), ARCHS (CMAKE_CUDA_ARCHITECTURES, comma-separated).
set(CUVAE_CUDA_ARCHITECTURES "${ARCHS}")
set(CUVAE_GIT_DESCRIBE "unknown")
set(CUVAE_GIT_COMMIT "unknown")
if(GIT)
  execute_process(COMMAND ${GIT} describe --always --dirty --tags
    WORKING_DIRECTORY ${SRC} OUTPUT_VARIABLE git_describe
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE git_rc)
  if(git_rc EQUAL 0 AND git_describe)
    set(CUVAE_GIT_DESCRIBE "${git_describe}")
  endif()
  execute_process(COMMAND ${GIT} rev-parse HEAD
    WORKING_DIRECTORY ${SRC} OUTPUT_VARIABLE git_commit
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE git_rc)
  if(git_rc EQUAL 0 AND git_commit)
    set(CUVAE_GIT_COMMIT "${git_commit}")
  endif()
endif()
configure_file(${SRC}/cmake/version.h.in ${OUT} @ONLY)
