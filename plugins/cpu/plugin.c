/* plugin.c - to be written */
