/* plugin.h — loading a user-function plugin (see udf.h) and naming it by
 * content: the CLI opens the plugin a job names, the master stores the
 * uploaded bytes under their SHA-256, workers receive them with the deploy
 * and cache them by the same hash. Nothing reads the path a job names
 * except the CLI on the submitter's machine. */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H
#include <stddef.h>
#include <stdint.h>

#include "sluice/udf.h"

#define SL_PLUGIN_MAX_BYTES (8u * 1024u * 1024u)

typedef struct sl_plugin sl_plugin_t;

/* dlopens path, calls sluice_plugin() and checks the descriptor (ABI
 * version, function names, kinds, field types). Returns 0 and *out, or an
 * error with a message naming the file and the problem in err. */
int sl_plugin_open(const char *path, sl_plugin_t **out, char *err, size_t cap);
void sl_plugin_close(sl_plugin_t **pp);
/* The function called name, or NULL. */
const sl_udf_function_t *sl_plugin_find(const sl_plugin_t *p, const char *name);
/* Names of all functions (borrowed), for hints. Returns the count. */
int sl_plugin_names(const sl_plugin_t *p, const char **names, int cap);
const char *sl_plugin_path(const sl_plugin_t *p);

/* Lower-case hex SHA-256 of data into hex (65 bytes). */
void sl_sha256_hex(const void *data, size_t len, char hex[65]);
/* Writes data to dir/<sha256>.so (crash-safely, once: an existing file with
 * that name is reused) and writes the path into path. Returns 0 or SL_IO. */
int sl_plugin_store(const char *dir, const void *data, size_t len, char *path, size_t cap);
/* Removes dir and everything in it (subdirectories too; symbolic links
 * are removed, not followed). */
void sl_rmtree(const char *dir);
/* Reads a plugin file (at most SL_PLUGIN_MAX_BYTES); caller frees. */
uint8_t *sl_plugin_read(const char *path, size_t *len, char *err, size_t cap);

#endif
