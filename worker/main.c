/* main.c — `sluice-worker`: a worker as a process.
 *
 * Connects to the master (waiting and retrying while it is not there),
 * registers, runs what it is given, and keeps going when the master
 * restarts (it registers again). Ends on SIGINT/SIGTERM. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "worker.h"

static const char s_usage[] =
    "usage: sluice-worker [options]\n"
    "\n"
    "  --master ENDPOINT        the master's control endpoint (SLUICE_MASTER;\n"
    "                           default tcp://127.0.0.1:6123)\n"
    "  --slots N                task slots offered (SLUICE_SLOTS; default: CPU count)\n"
    "  --id ID                  worker id, unique in the cluster (SLUICE_WORKER_ID;\n"
    "                           default HOSTNAME-PID)\n"
    "  --data-bind tcp://ADDR   where task inputs listen, on ephemeral ports\n"
    "                           (SLUICE_DATA_BIND; default tcp://0.0.0.0)\n"
    "  --advertise-host HOST    the address other workers reach this one at\n"
    "                           (SLUICE_ADVERTISE_HOST; default: the bind address,\n"
    "                           or the host name for 0.0.0.0)\n"
    "  --help                   this text\n";

static volatile sig_atomic_t s_signaled;

static void s_on_signal(int sig)
{
    (void)sig;
    s_signaled = 1;
}

static const char *s_env(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static const char *s_opt(int argc, char **argv, int *i, const char *name)
{
    if (strcmp(argv[*i], name) != 0)
        return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "sluice-worker: %s needs a value\n%s", name, s_usage);
        exit(2);
    }
    return argv[++*i];
}

int main(int argc, char **argv)
{
    const char *master = s_env("SLUICE_MASTER", "tcp://127.0.0.1:6123");
    const char *slots_s = s_env("SLUICE_SLOTS", NULL);
    const char *id = s_env("SLUICE_WORKER_ID", NULL);
    const char *bind = s_env("SLUICE_DATA_BIND", "tcp://0.0.0.0");
    const char *adv = s_env("SLUICE_ADVERTISE_HOST", NULL);
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = s_opt(argc, argv, &i, "--master")))
            master = v;
        else if ((v = s_opt(argc, argv, &i, "--slots")))
            slots_s = v;
        else if ((v = s_opt(argc, argv, &i, "--id")))
            id = v;
        else if ((v = s_opt(argc, argv, &i, "--data-bind")))
            bind = v;
        else if ((v = s_opt(argc, argv, &i, "--advertise-host")))
            adv = v;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(s_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "sluice-worker: unknown option '%s'\n%s", argv[i], s_usage);
            return 2;
        }
    }
    long slots = sysconf(_SC_NPROCESSORS_ONLN);
    if (slots_s) {
        char *end;
        errno = 0;
        slots = strtol(slots_s, &end, 10);
        if (errno || *end || end == slots_s || slots < 1 || slots > 1024) {
            fprintf(stderr, "sluice-worker: --slots must be in 1..1024, not '%s'\n", slots_s);
            return 2;
        }
    }
    if (strncmp(bind, "tcp://", 6) != 0) {
        fprintf(stderr, "sluice-worker: --data-bind must be tcp://ADDR, not '%s'\n", bind);
        return 2;
    }
    char host[256] = "localhost", idbuf[300];
    gethostname(host, sizeof host - 1);
    if (!id) {
        snprintf(idbuf, sizeof idbuf, "%s-%ld", host, (long)getpid());
        id = idbuf;
    }
    if (!adv && (strcmp(bind + 6, "0.0.0.0") == 0 || strcmp(bind + 6, "*") == 0))
        adv = host;
    struct sigaction sa = {0};
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    void *zctx = zmq_ctx_new();
    sl_worker_opts_t o = {.zctx = zctx,
                          .master = master,
                          .id = id,
                          .slots = (int)slots,
                          .data_bind = bind,
                          .advertise_host = adv,
                          .keep_running = true};
    sl_worker_t *w = sl_worker_start(&o);
    if (!w) {
        zmq_ctx_term(zctx);
        return 1;
    }
    fprintf(stderr, "sluice-worker %s: %ld slots, master %s\n", id, slots, master);
    while (!s_signaled && sl_worker_running(w)) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL); /* the loop runs on its own thread; this one waits for a signal */
    }
    sl_worker_stop(w);
    sl_worker_join(&w);
    zmq_ctx_term(zctx);
    fprintf(stderr, "sluice-worker %s: stopped\n", id);
    return 0;
}
