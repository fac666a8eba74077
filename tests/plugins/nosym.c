/*
 * nosym.c - a broken plugin for the loader tests: a shared object that
 * exports no dagd_executor symbol.
 */
int dagd_not_an_executor(void);

int dagd_not_an_executor(void) {
	return 0;
}
