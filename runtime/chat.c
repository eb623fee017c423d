/* chat.c - to be written */
