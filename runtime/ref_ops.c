/* ref_ops.c - to be written */
