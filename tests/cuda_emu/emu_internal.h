/*
 * emu_internal.h: what the emulated device's runtime (emu_runtime.cpp) offers its own
 * libraries (emu_cublas.cpp), beyond the CUDA API: device-memory checks and a way to
 * queue host code as a kernel on a stream (captured into graphs like any launch).
 */
#ifndef CUVAE_EMU_INTERNAL_H
#define CUVAE_EMU_INTERNAL_H

#include "cuda_runtime.h"

#include <cstddef>
#include <functional>

/* 1 when [p, p + bytes) lies inside one live device allocation. */
int cuda_emu_is_device_range(const void *p, size_t bytes);
/* Queue `run` on stream as a kernel named `name` (a graph node of kernel type when captured);
 * device buffers' guard bytes are checked after it runs. */
cudaError_t cuda_emu_issue_kernel(cudaStream_t stream, const char *name, std::function<void()> run);

#endif /* CUVAE_EMU_INTERNAL_H */
