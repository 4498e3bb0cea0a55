/* main.c — `sluice-master`: the master as a process.
 *
 * Every option can come from a flag or a SLUICE_* environment variable
 * (the flag wins). It prints the bound endpoint once listening, and runs
 * until SIGINT/SIGTERM or a Shutdown request. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "master.h"

static const char s_usage[] =
    "usage: sluice-master [options]\n"
    "\n"
    "  --bind ENDPOINT          control endpoint (SLUICE_BIND; default tcp://0.0.0.0:6123;\n"
    "                           tcp://HOST:* picks a free port, printed at start)\n"
    "  --heartbeat-timeout MS   a worker silent this long is dead and its jobs fail\n"
    "                           (SLUICE_HEARTBEAT_TIMEOUT_MS; default 800; workers send\n"
    "                           a heartbeat every 200 ms)\n"
    "  --help                   this text\n";

static volatile sig_atomic_t s_signaled;

static void s_on_signal(int sig)
{
    (void)sig;
    s_signaled = 1;
}

static const char *s_opt(int argc, char **argv, int *i, const char *name)
{
    if (strcmp(argv[*i], name) != 0)
        return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "sluice-master: %s needs a value\n%s", name, s_usage);
        exit(2);
    }
    return argv[++*i];
}

static int s_ms(const char *what, const char *v)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || end == v || n < 50 || n > 3600000) {
        fprintf(stderr, "sluice-master: %s must be milliseconds in 50..3600000, not '%s'\n", what,
                v);
        exit(2);
    }
    return (int)n;
}

int main(int argc, char **argv)
{
    const char *bind = getenv("SLUICE_BIND") ? getenv("SLUICE_BIND") : "tcp://0.0.0.0:6123";
    const char *hb = getenv("SLUICE_HEARTBEAT_TIMEOUT_MS");
    int timeout = hb ? s_ms("SLUICE_HEARTBEAT_TIMEOUT_MS", hb) : 800;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = s_opt(argc, argv, &i, "--bind")))
            bind = v;
        else if ((v = s_opt(argc, argv, &i, "--heartbeat-timeout")))
            timeout = s_ms("--heartbeat-timeout", v);
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(s_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "sluice-master: unknown option '%s'\n%s", argv[i], s_usage);
            return 2;
        }
    }
    struct sigaction sa = {0};
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    void *zctx = zmq_ctx_new();
    char err[512];
    sl_master_opts_t o = {.zctx = zctx, .endpoint = bind, .heartbeat_timeout_ms = timeout};
    sl_master_t *m = sl_master_start(&o, err, sizeof err);
    if (!m) {
        fprintf(stderr, "sluice-master: %s\n", err);
        zmq_ctx_term(zctx);
        return 1;
    }
    char ep[256];
    sl_master_endpoint(m, ep, sizeof ep);
    printf("sluice-master listening on %s\n", ep);
    fflush(stdout);
    while (!s_signaled && sl_master_running(m)) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL); /* the loop runs on its own thread; this one waits for a signal */
    }
    sl_master_stop(m);
    sl_master_join(&m);
    zmq_ctx_term(zctx);
    fprintf(stderr, "sluice-master: stopped\n");
    return 0;
}
