/* selftest.c - to be written */
