/*
 * emu.h - run kernels.hip on the host (tests only, never installed).
 *
 * The kernels are compiled as C++ with -DGPU_EMULATE (plugins/rocm/
 * gpu_port.h) into the fake runtimes; each registers itself by name.
 * emu_launch runs a grid block after block on the calling thread; the
 * threads of a block are fibers (ucontext) switched at every gpu_sync(),
 * so __syncthreads has its GPU meaning: no thread passes it before every
 * thread of the block has reached it.
 */
#ifndef LAMINA_TESTS_EMU_H
#define LAMINA_TESTS_EMU_H

#include <stddef.h>
#include <stdint.h>

#include "gpu_port.h"

/* The kernel registered as `name`, NULL when there is none. */
gpu_emu_fn emu_find(const char *name);

/* Run fn over grid gx x gy of blocks of bx threads (by = bz = gz = 1).
 * Returns 0, or -1 with a message when the launch is malformed. */
int emu_launch(gpu_emu_fn fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
               unsigned by, unsigned bz, const kargs *args, char *err, size_t err_size);

#endif
