/* kernels_scalar.c - to be written */
