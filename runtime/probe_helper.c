/* probe_helper.c - placeholder */
int main(void) { return 1; }
