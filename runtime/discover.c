/* discover.c - to be written */
