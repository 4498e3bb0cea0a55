/* main.c — `sluice-master`: the master as a process.
 *
 * Settings come from flags, SLUICE_* environment variables and a YAML file
 * (--config), in that order of precedence (sluice/config.h); --help lists
 * them all. It prints the bound endpoint once listening, and runs until
 * SIGINT/SIGTERM or a Shutdown request. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "master.h"
#include "sluice/config.h"
#include "sluice/err.h"

static const char s_head[] =
    "usage: sluice-master [options]\n"
    "\n"
    "Runs the Sluice master: the worker registry, the slot scheduler and the job\n"
    "lifecycle with its checkpoints and restarts, on one control endpoint that workers\n"
    "and the `sluice submit | list | status | cancel | workers | checkpoints |\n"
    "savepoint | stop` commands connect to. Prints \"sluice-master listening on\n"
    "ENDPOINT\" once bound; stops on SIGINT or SIGTERM.\n"
    "\n";

/* A tcp endpoint must name a port (a number, or * for any free one). */
static int s_has_port(const char *v, char *why, size_t cap)
{
    const char *host = v + 6, *end = host[0] == '[' ? strchr(host, ']') : host;
    const char *colon = end ? strrchr(end, ':') : NULL;
    if (!colon || colon[1] == '\0' ||
        (strcmp(colon + 1, "*") != 0 && strspn(colon + 1, "0123456789") != strlen(colon + 1))) {
        snprintf(why, cap, "must be tcp://HOST:PORT (or tcp://HOST:* for any free port)");
        return 1;
    }
    return 0;
}

static const sl_config_key_t s_keys[] = {
    {.key = "config",
     .env = "SLUICE_CONFIG",
     .flag = "--config",
     .metavar = "FILE",
     .max = 4096,
     .spaces = true,
     .help = "YAML file of `key: value` settings, one per line (the file keys below)",
     .no_file = true},
    {.key = "bind",
     .env = "SLUICE_BIND",
     .flag = "--bind",
     .metavar = "ENDPOINT",
     .prefix = "tcp://",
     .check = s_has_port,
     .dflt = "tcp://0.0.0.0:6123",
     .help = "control endpoint that workers and the CLI connect to;\n"
             "tcp://HOST:* picks a free port (printed at start)"},
    {.key = "heartbeat_timeout_ms",
     .env = "SLUICE_HEARTBEAT_TIMEOUT_MS",
     .flag = "--heartbeat-timeout",
     .metavar = "MS",
     .type = SL_CONFIG_INT,
     .min = 50,
     .max = 3600000,
     .dflt = "800",
     .help = "a worker silent this long is lost, and every running job with a task\n"
             "on it fails or restarts (workers send a heartbeat every 200 ms)"},
    {.key = "state_dir",
     .env = "SLUICE_STATE_DIR",
     .flag = "--state-dir",
     .metavar = "DIR",
     .max = 4000,
     .spaces = true,
     .help = "where the master keeps uploaded plugins and jobs' checkpoints\n"
             "(checkpoints/<job>/chk-<n>/; shared with the workers, e.g. a mount);\n"
             "default: a temporary directory removed when the master stops"},
};

static volatile sig_atomic_t s_signaled;

static void s_on_signal(int sig)
{
    (void)sig;
    s_signaled = 1;
}

int main(int argc, char **argv)
{
    sl_config_t *cfg = sl_config_new(s_keys, (int)(sizeof s_keys / sizeof s_keys[0]));
    if (!cfg) {
        fprintf(stderr, "sluice-master: out of memory\n");
        return 1;
    }
    int rc = sl_config_from_cli(cfg, argc, argv, "sluice-master", s_head);
    if (rc != 0) {
        sl_config_destroy(&cfg);
        return rc < 0 ? 0 : rc;
    }
    struct sigaction sa = {0};
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    void *zctx = zmq_ctx_new();
    char err[512];
    sl_master_opts_t o = {.zctx = zctx,
                          .endpoint = sl_config_str(cfg, "bind"),
                          .heartbeat_timeout_ms =
                              (int)sl_config_int(cfg, "heartbeat_timeout_ms", 800),
                          .state_dir = sl_config_str(cfg, "state_dir")};
    sl_master_t *m = sl_master_start(&o, err, sizeof err);
    if (!m) {
        fprintf(stderr, "sluice-master: %s (bind from %s)\n", err, sl_config_origin(cfg, "bind"));
        zmq_ctx_term(zctx);
        sl_config_destroy(&cfg);
        return 1;
    }
    char ep[256];
    sl_master_endpoint(m, ep, sizeof ep);
    printf("sluice-master listening on %s\n", ep);
    fflush(stdout);
    fprintf(stderr, "sluice-master: heartbeat timeout %d ms%s%s\n", o.heartbeat_timeout_ms,
            sl_config_str(cfg, "config") ? ", config " : "",
            sl_config_str(cfg, "config") ? sl_config_str(cfg, "config") : "");
    while (!s_signaled && sl_master_running(m)) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL); /* the loop runs on its own thread; this one waits for a signal */
    }
    sl_master_stop(m);
    sl_master_join(&m);
    zmq_ctx_term(zctx);
    sl_config_destroy(&cfg);
    fprintf(stderr, "sluice-master: stopped\n");
    return 0;
}
