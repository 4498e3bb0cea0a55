/* plugin.c — loading user-function plugins (see sluice/plugin.h). */
#define _POSIX_C_SOURCE 200809L
#include "sluice/plugin.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/err.h"
#include "sluice/fileio.h"
#include "sluice/row.h"

/* The UDF value must stay layout-compatible with the engine's value. */
_Static_assert(sizeof(sl_udf_value_t) == sizeof(sl_value_t), "sl_udf_value_t layout");
_Static_assert(offsetof(sl_udf_value_t, u) == offsetof(sl_value_t, u), "sl_udf_value_t layout");
_Static_assert(offsetof(sl_udf_value_t, len) == offsetof(sl_value_t, len), "sl_udf_value_t");
_Static_assert((int)SL_UDF_STRING == (int)SL_TYPE_STRING, "type numbering");
_Static_assert((int)SL_UDF_TIMESTAMP == (int)SL_TYPE_TIMESTAMP, "type numbering");

/* sl_udf_function_t of ABI version 1 (the version-2 struct without
 * on_timer): a version-1 table is read with this stride. */
typedef struct {
    const char *name;
    sl_udf_kind_t kind;
    const sl_udf_field_t *in;
    int nin;
    const sl_udf_field_t *out;
    int nout;
    int (*call)(sl_udf_ctx_t *ctx, const sl_udf_value_t *in, sl_udf_value_t *out);
} s_function_v1_t;
_Static_assert(offsetof(s_function_v1_t, call) == offsetof(sl_udf_function_t, call),
               "ABI 2 only appends to sl_udf_function_t");

struct sl_plugin {
    void *handle;                /* from dlopen */
    const sl_udf_plugin_t *desc; /* the plugin's static descriptor */
    sl_udf_function_t *fns;      /* its functions in this version's layout (owned copy) */
    char *path;                  /* where it was loaded from */
};

static int s_check_fields(const sl_udf_field_t *f, int n, const char *fn, const char *what,
                          char *err, size_t cap)
{
    if (n < 0 || n > 256 || (n > 0 && !f)) {
        snprintf(err, cap, "function '%s' declares %d %s fields", fn, n, what);
        return SL_INVAL;
    }
    for (int i = 0; i < n; i++)
        if (!f[i].name || !*f[i].name || f[i].type < SL_UDF_INT64 || f[i].type > SL_UDF_TIMESTAMP) {
            snprintf(err, cap, "function '%s': %s field %d has no name or an unknown type", fn,
                     what, i);
            return SL_INVAL;
        }
    return SL_OK;
}

int sl_plugin_open(const char *path, sl_plugin_t **out, char *err, size_t cap)
{
    *out = NULL;
    /* dlopen searches the library path for a bare name; a job means a file. */
    char local[4096];
    if (!strchr(path, '/')) {
        snprintf(local, sizeof local, "./%s", path);
        path = local;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, cap, "cannot load plugin %s: %s", path, dlerror());
        return SL_NOTFOUND;
    }
    const sl_udf_plugin_t *(*entry)(void);
    void *sym = dlsym(h, "sluice_plugin");
    memcpy(&entry, &sym, sizeof entry); /* object pointer to function pointer, as POSIX allows */
    if (!sym) {
        snprintf(err, cap,
                 "plugin %s does not export sluice_plugin() (is it built against sluice/udf.h?)",
                 path);
        dlclose(h);
        return SL_NOTFOUND;
    }
    const sl_udf_plugin_t *d = entry();
    char why[256] = "";
    if (!d)
        snprintf(why, sizeof why, "sluice_plugin() returned NULL");
    else if (d->abi_version < SL_UDF_ABI_MIN_VERSION || d->abi_version > SL_UDF_ABI_VERSION)
        snprintf(why, sizeof why,
                 "it was built for UDF ABI version %u, this Sluice supports version %d to %d "
                 "(rebuild it against this sluice/udf.h)",
                 d->abi_version, SL_UDF_ABI_MIN_VERSION, SL_UDF_ABI_VERSION);
    else if (d->nfunctions < 0 || d->nfunctions > 1024 || (d->nfunctions && !d->functions))
        snprintf(why, sizeof why, "it declares %d functions", d->nfunctions);
    /* The functions in this version's layout (a version-1 table is shorter
     * per entry and has no on_timer). */
    sl_udf_function_t *fns = NULL;
    if (!why[0] && !(fns = calloc((size_t)d->nfunctions + 1, sizeof *fns))) {
        dlclose(h);
        return SL_NOMEM;
    }
    for (int i = 0; !why[0] && i < d->nfunctions; i++) {
        if (d->abi_version == 1)
            memcpy(&fns[i], (const s_function_v1_t *)(const void *)d->functions + i,
                   sizeof(s_function_v1_t));
        else
            fns[i] = d->functions[i];
    }
    for (int i = 0; !why[0] && d && i < d->nfunctions; i++) {
        const sl_udf_function_t *f = &fns[i];
        sl_udf_kind_t top = d->abi_version >= 2 ? SL_UDF_PROCESS : SL_UDF_FLAT_MAP;
        if (!f->name || !*f->name || !f->call)
            snprintf(why, sizeof why, "function %d has no name or no code", i);
        else if (f->kind < SL_UDF_MAP || f->kind > top)
            snprintf(why, sizeof why, "function '%s' has an unknown kind %d", f->name, f->kind);
        else if (f->on_timer && f->kind != SL_UDF_PROCESS)
            snprintf(why, sizeof why, "function '%s' has on_timer but is not a process function",
                     f->name);
        else if (s_check_fields(f->in, f->nin, f->name, "input", why, sizeof why) ||
                 s_check_fields(f->out, f->kind == SL_UDF_FILTER ? 0 : f->nout, f->name, "output",
                                why, sizeof why))
            ;
        else if (f->kind != SL_UDF_FILTER && f->nout < 1)
            snprintf(why, sizeof why, "function '%s' declares no output fields", f->name);
    }
    if (why[0]) {
        snprintf(err, cap, "plugin %s refused: %s", path, why);
        free(fns);
        dlclose(h);
        return SL_VERSION;
    }
    sl_plugin_t *p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(path))) {
        free(p);
        free(fns);
        dlclose(h);
        return SL_NOMEM;
    }
    p->handle = h;
    p->desc = d;
    p->fns = fns;
    *out = p;
    return SL_OK;
}

void sl_plugin_close(sl_plugin_t **pp)
{
    if (!pp || !*pp)
        return;
    dlclose((*pp)->handle);
    free((*pp)->fns);
    free((*pp)->path);
    free(*pp);
    *pp = NULL;
}

const sl_udf_function_t *sl_plugin_find(const sl_plugin_t *p, const char *name)
{
    for (int i = 0; i < p->desc->nfunctions; i++)
        if (strcmp(p->fns[i].name, name) == 0)
            return &p->fns[i];
    return NULL;
}

int sl_plugin_names(const sl_plugin_t *p, const char **names, int cap)
{
    int n = 0;
    for (int i = 0; i < p->desc->nfunctions && n < cap; i++)
        names[n++] = p->fns[i].name;
    return n;
}

const char *sl_plugin_path(const sl_plugin_t *p)
{
    return p->path;
}

void sl_sha256_hex(const void *data, size_t len, char hex[65])
{
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, sizeof digest, digest);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

int sl_plugin_store(const char *dir, const void *data, size_t len, char *path, size_t cap)
{
    char hex[65];
    sl_sha256_hex(data, len, hex);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return SL_IO;
    snprintf(path, cap, "%s/%s.so", dir, hex);
    struct stat st;
    if (stat(path, &st) == 0 && (size_t)st.st_size == len)
        return SL_OK; /* content-addressed: same name, same bytes */
    return sl_fs_write_atomic(path, data, len);
}

uint8_t *sl_plugin_read(const char *path, size_t *len, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "cannot read plugin %s: %s", path, strerror(errno));
        return NULL;
    }
    uint8_t *buf = malloc(SL_PLUGIN_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, SL_PLUGIN_MAX_BYTES + 1, f) : 0;
    fclose(f);
    if (!buf || n > SL_PLUGIN_MAX_BYTES) {
        snprintf(err, cap, "plugin %s is larger than %u bytes", path, SL_PLUGIN_MAX_BYTES);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

void sl_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            struct stat st;
            if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                sl_rmtree(path); /* a checkpoint's kv-* directories, a worker's state */
            else
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}
