# cuda_emu.cmake: the emulated build's two targets, included by CMakeLists.txt when
# -DCUVAE_CUDA_EMU=ON (docs/emulated-device.md):
#   cuvae_emu   the test-only runtime: CUDA runtime and cuBLAS subsets, fibers, the scheduler
#   cuvae_cuda  the same kernels/*.cu as the toolkit build, compiled as host C++ against it
# -DCUVAE_EMU_TSAN=ON compiles the kernels (only them) with ThreadSanitizer and makes every
# CUDA thread a TSan fiber, so shared-memory races between threads of a block are reported
# (scripts/emu_race_check.sh); the runtime itself stays uninstrumented.
option(CUVAE_EMU_TSAN "Emulated build: report shared-memory races of the kernels with ThreadSanitizer" OFF)
set(CUVAE_EMU_DIR ${CMAKE_SOURCE_DIR}/tests/cuda_emu)

add_library(cuvae_emu STATIC
  ${CUVAE_EMU_DIR}/emu_runtime.cpp
  ${CUVAE_EMU_DIR}/emu_fiber.cpp
  ${CUVAE_EMU_DIR}/emu_cublas.cpp)
target_include_directories(cuvae_emu PUBLIC ${CUVAE_EMU_DIR}/include PRIVATE ${CUVAE_EMU_DIR})
set_target_properties(cuvae_emu PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
# The emulated GEMM and copies round as written: no multiply-add contracted into an FMA.
target_compile_options(cuvae_emu PRIVATE -ffp-contract=off)

add_library(cuvae_cuda STATIC ${CUVAE_CUDA_SOURCES})
set_source_files_properties(${CUVAE_CUDA_SOURCES} PROPERTIES LANGUAGE CXX)
set_target_properties(cuvae_cuda PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
# -x c++: g++ takes .cu for a linker input otherwise. __CUDACC__: the headers shared with
# nvcc (cuda_common.cuh, philox.h, vae_math.h) take their device branches. No FP contraction,
# so the kernels' float expressions round as the C reference's do (nvcc's --fmad=true is
# what a real GPU runs: that difference is the GPU check's to see).
target_compile_options(cuvae_cuda PRIVATE -x c++ -ffp-contract=off)
target_compile_definitions(cuvae_cuda PUBLIC CUVAE_CUDA_EMU PRIVATE __CUDACC__)
target_link_libraries(cuvae_cuda PUBLIC cuvae_emu cuvae_io)

if(CUVAE_EMU_TSAN)
  target_compile_options(cuvae_cuda PRIVATE -fsanitize=thread -g)
  target_compile_definitions(cuvae_emu PRIVATE CUVAE_EMU_TSAN)
  add_link_options(-fsanitize=thread)
endif()
