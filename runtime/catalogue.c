/* catalogue.c - to be written */
