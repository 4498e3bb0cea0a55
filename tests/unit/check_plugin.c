/* check_plugin.c — loading user-function plugins: a good one opens and
 * lists its functions, one built for another ABI or without the entry
 * point is refused with a message that says so, content hashes are
 * SHA-256, and the store is content-addressed. Plus the master refusing a
 * bad plugin even when a client skips the local check. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "minicluster.h"
#include "sluice/err.h"
#include "sluice/plan.h"
#include "sluice/plugin.h"
#include "testutil.h"

#define S_GOOD SL_PLUGIN_DIR "/libsluice_example_udf.so"
#define S_BAD_ABI SL_PLUGIN_DIR "/libbad_abi_udf.so"
#define S_NO_ENTRY SL_PLUGIN_DIR "/libno_entry_udf.so"

START_TEST(test_open_good_plugin)
{
    sl_plugin_t *p = NULL;
    char err[512];
    ck_assert_int_eq(sl_plugin_open(S_GOOD, &p, err, sizeof err), SL_OK);
    const sl_udf_function_t *f = sl_plugin_find(p, "normalize");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(f->kind, SL_UDF_MAP);
    ck_assert_ptr_null(sl_plugin_find(p, "normalise"));
    const char *names[8];
    ck_assert_int_eq(sl_plugin_names(p, names, 8), 3);
    sl_plugin_close(&p);
    ck_assert_ptr_null(p);
    sl_plugin_close(&p); /* accepts NULL */
}
END_TEST

START_TEST(test_refuse_bad_plugins)
{
    sl_plugin_t *p = NULL;
    char err[512];
    ck_assert_int_eq(sl_plugin_open(S_BAD_ABI, &p, err, sizeof err), SL_VERSION);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err, "ABI version 999") && strstr(err, "supports version 1"), "%s", err);
    ck_assert_int_eq(sl_plugin_open(S_NO_ENTRY, &p, err, sizeof err), SL_NOTFOUND);
    ck_assert_msg(strstr(err, "does not export sluice_plugin()"), "%s", err);
    ck_assert_int_eq(sl_plugin_open("/nonexistent/libx.so", &p, err, sizeof err), SL_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/libx.so"));
    /* Not a shared object at all. */
    char *dir = sl_test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/junk.so", dir);
    sl_test_write_file(path, "this is not an ELF file");
    ck_assert_int_eq(sl_plugin_open(path, &p, err, sizeof err), SL_NOTFOUND);
    sl_test_rmrf(dir);
    free(dir);
}
END_TEST

START_TEST(test_sha256_and_store)
{
    char hex[65];
    sl_sha256_hex("abc", 3, hex); /* FIPS 180-2 test vector */
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sl_sha256_hex("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char *dir = sl_test_tmpdir();
    char sub[4096], p1[4200], p2[4200];
    snprintf(sub, sizeof sub, "%s/plugins", dir);
    ck_assert_int_eq(sl_plugin_store(sub, "abc", 3, p1, sizeof p1), SL_OK);
    ck_assert_ptr_nonnull(
        strstr(p1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.so"));
    ck_assert_int_eq(sl_plugin_store(sub, "abc", 3, p2, sizeof p2), SL_OK);
    ck_assert_str_eq(p1, p2);
    size_t len = 0;
    char *back = sl_test_read_file(p1, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(back, "abc", 3) == 0);
    free(back);
    sl_rmtree(sub);
    struct stat st;
    ck_assert_int_ne(stat(sub, &st), 0);
    sl_test_rmrf(dir);
    free(dir);
}
END_TEST

static const char *s_spec = "name: u\n"
                            "plugin: whatever.so\n"
                            "sources:\n"
                            "  - { name: l, type: file, format: text, path: x }\n"
                            "operators:\n"
                            "  - { name: w, type: flat_map, input: l, function: split_words }\n"
                            "  - { name: n, type: map, input: w, function: normalise }\n"
                            "  - { name: f, type: filter, input: w, function: normalize }\n"
                            "sinks:\n"
                            "  - { name: o, type: stdout, input: n }\n"
                            "  - { name: o2, type: stdout, input: f }\n";

START_TEST(test_plan_checks_functions)
{
    sl_plugin_t *p = NULL;
    char err[512];
    ck_assert_int_eq(sl_plugin_open(S_GOOD, &p, err, sizeof err), SL_OK);
    sl_diag_t *d = sl_diag_new("u.yaml");
    sl_spec_t *spec = NULL;
    sl_plan_t *plan = NULL;
    ck_assert_int_eq(
        sl_plan_load_with("u.yaml", s_spec, strlen(s_spec), NULL, 0, p, d, &spec, &plan), SL_SPEC);
    /* normalise: no such function (with a hint); normalize used as a filter. */
    bool hint = false, kind = false;
    for (int i = 0; i < sl_diag_count(d); i++) {
        if (sl_diag_line(d, i) == 7 && strstr(sl_diag_message(d, i), "no function 'normalise'") &&
            sl_diag_hint_of(d, i) && strstr(sl_diag_hint_of(d, i), "normalize"))
            hint = true;
        if (sl_diag_line(d, i) == 8 && strstr(sl_diag_message(d, i), "is a map function"))
            kind = true;
    }
    ck_assert(hint && kind);
    sl_diag_destroy(&d);
    /* Without the plugin loaded, the planner says so. */
    d = sl_diag_new("u.yaml");
    ck_assert_int_eq(sl_plan_load("u.yaml", s_spec, strlen(s_spec), NULL, 0, d, &spec, &plan),
                     SL_SPEC);
    ck_assert_ptr_nonnull(strstr(sl_diag_message(d, 0), "was not loaded"));
    sl_diag_destroy(&d);
    sl_plugin_close(&p);
}
END_TEST

START_TEST(test_master_refuses_bad_abi_upload)
{
    char err[2048], job[64];
    sl_minicluster_t *mc = sl_minicluster_start(1, 1, err, sizeof err);
    size_t len = 0;
    uint8_t *bytes = sl_plugin_read(S_BAD_ABI, &len, err, sizeof err);
    ck_assert_ptr_nonnull(bytes);
    const char *spec = "name: b\nplugin: libbad.so\nsources:\n"
                       "  - { name: l, type: file, format: text, path: x }\n"
                       "operators:\n  - { name: k, type: filter, input: l, function: keep }\n"
                       "sinks:\n  - { name: o, type: stdout, input: k }\n";
    /* A client that skipped the local check: the master checks too. */
    ck_assert_int_eq(sl_client_submit_plugin(sl_minicluster_client(mc), "b.yaml", spec,
                                             strlen(spec), bytes, len, NULL, 0, job, sizeof job,
                                             err, sizeof err),
                     SL_VERSION);
    ck_assert_msg(strstr(err, "ABI version 999"), "%s", err);
    free(bytes);
    sl_minicluster_stop(&mc);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("plugin");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_open_good_plugin);
    tcase_add_test(tc, test_refuse_bad_plugins);
    tcase_add_test(tc, test_sha256_and_store);
    tcase_add_test(tc, test_plan_checks_functions);
    tcase_add_test(tc, test_master_refuses_bad_abi_upload);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sl_test_run(s_suite());
}
