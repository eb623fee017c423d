/* report.c - to be written */
