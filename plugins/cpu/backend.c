/* backend.c - to be written */
