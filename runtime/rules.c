/* rules.c - to be written */
