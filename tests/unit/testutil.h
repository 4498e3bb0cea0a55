/* testutil.h — helpers shared by the Check suites: the suite runner, temp
 * directories, files, and the one wait_until every test uses instead of
 * sleeping. */
#ifndef SLUICE_TESTUTIL_H
#define SLUICE_TESTUTIL_H
#include <check.h>
#include <stdbool.h>
#include <stddef.h>

/* Runs the suite (CK_NORMAL output) and returns the process exit status:
 * 0 when every test passed, 1 otherwise. Use as `return sl_test_run(s);`. */
int sl_test_run(Suite *s);
/* Fresh directory under $TMPDIR or /tmp; caller frees the string and
 * removes the directory with sl_test_rmrf. */
char *sl_test_tmpdir(void);
void sl_test_rmrf(const char *dir);
/* Whole file (NUL-terminated, length in *len if non-NULL) or NULL; caller frees. */
char *sl_test_read_file(const char *path, size_t *len);
/* Writes text to path; aborts the test on failure. */
void sl_test_write_file(const char *path, const char *text);
/* Polls cond(arg) every few milliseconds until it is true or timeout_ms
 * passes. Returns the last value of cond. */
bool sl_wait_until(bool (*cond)(void *), void *arg, int timeout_ms);

#endif
