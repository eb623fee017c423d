/* fakedep.c - a library the FAKE_NEEDDEP plugin links against; the tests
 * copy the plugin without it, so loading fails on the missing soname. */
int fakedep_answer(void);
int fakedep_answer(void)
{
    return 42;
}
