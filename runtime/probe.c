/* probe.c - to be written */
