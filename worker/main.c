/* main.c — `sluice-worker`: a worker as a process.
 *
 * Settings come from flags, SLUICE_* environment variables and a YAML file
 * (--config), in that order of precedence (sluice/config.h); --help lists
 * them all. Connects to the master (waiting and retrying while it is not
 * there), registers, runs what it is given, and keeps going when the
 * master restarts (it registers again). Ends on SIGINT/SIGTERM. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "sluice/config.h"
#include "sluice/err.h"
#include "worker.h"

static const char s_head[] =
    "usage: sluice-worker [options]\n"
    "\n"
    "Runs a Sluice worker: it registers its task slots with the master, runs the\n"
    "subtasks it is deployed, and exchanges records with the other workers. Each\n"
    "task input listens on an ephemeral TCP port of the --data-bind address, which\n"
    "every other worker must be able to reach at the --advertise-host address.\n"
    "Stops on SIGINT or SIGTERM.\n"
    "\n";

/* After the tcp:// prefix, the host part: from a leading '[' to its ']'. */
static const char *s_host_end(const char *v)
{
    const char *host = v + 6;
    return host[0] == '[' ? strchr(host, ']') : host;
}

/* The master's endpoint names a numeric port. */
static int s_has_port(const char *v, char *why, size_t cap)
{
    const char *end = s_host_end(v), *colon = end ? strrchr(end, ':') : NULL;
    if (!colon || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
        snprintf(why, cap, "must be tcp://HOST:PORT");
        return 1;
    }
    return 0;
}

/* The data address names no port: each task input binds an ephemeral one. */
static int s_no_port(const char *v, char *why, size_t cap)
{
    const char *end = s_host_end(v);
    if (!end || strchr(end, ':') || strchr(v + 6, '/') || v[6] == '\0') {
        snprintf(why, cap, "must be tcp://ADDR without a port (task inputs bind ephemeral ports)");
        return 1;
    }
    return 0;
}

/* A host name or address, not an endpoint. */
static int s_host(const char *v, char *why, size_t cap)
{
    if (strstr(v, "://") || strchr(v, '/')) {
        snprintf(why, cap, "must be a host name or address, without tcp:// or a port");
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
    {.key = "master",
     .env = "SLUICE_MASTER",
     .flag = "--master",
     .metavar = "ENDPOINT",
     .prefix = "tcp://",
     .check = s_has_port,
     .dflt = "tcp://127.0.0.1:6123",
     .help = "the master's control endpoint (tcp://HOST:PORT)"},
    {.key = "slots",
     .env = "SLUICE_SLOTS",
     .flag = "--slots",
     .metavar = "N",
     .type = SL_CONFIG_INT,
     .min = 1,
     .max = 1024,
     .help = "task slots offered (default: the number of online CPUs)"},
    {.key = "id",
     .env = "SLUICE_WORKER_ID",
     .flag = "--id",
     .metavar = "ID",
     .max = 255,
     .help = "worker id, unique in the cluster (default: HOSTNAME-PID); give a\n"
             "restarted worker its old id and it takes over its registration"},
    {.key = "data_bind",
     .env = "SLUICE_DATA_BIND",
     .flag = "--data-bind",
     .metavar = "tcp://ADDR",
     .prefix = "tcp://",
     .check = s_no_port,
     .dflt = "tcp://0.0.0.0",
     .help = "address the task inputs listen on, each on an ephemeral port\n"
             "(the kernel's range, net.ipv4.ip_local_port_range)"},
    {.key = "cache_dir",
     .env = "SLUICE_CACHE_DIR",
     .flag = "--cache-dir",
     .metavar = "DIR",
     .max = 4000,
     .spaces = true,
     .help = "local directory of this worker (one per worker): cached plugins, RocksDB\n"
             "state and local copies of checkpoints (default: a temporary directory,\n"
             "removed at exit)"},
    {.key = "advertise_host",
     .env = "SLUICE_ADVERTISE_HOST",
     .flag = "--advertise-host",
     .metavar = "HOST",
     .max = 255,
     .check = s_host,
     .help = "host name or address other workers connect to this one at (default:\n"
             "the --data-bind address, or this host's name when that is 0.0.0.0 or *)"},
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
        fprintf(stderr, "sluice-worker: out of memory\n");
        return 1;
    }
    int rc = sl_config_from_cli(cfg, argc, argv, "sluice-worker", s_head);
    if (rc != 0) {
        sl_config_destroy(&cfg);
        return rc < 0 ? 0 : rc;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long slots = sl_config_int(cfg, "slots", cpus < 1 ? 1 : cpus > 1024 ? 1024 : cpus);
    const char *master = sl_config_str(cfg, "master");
    const char *bind = sl_config_str(cfg, "data_bind");
    const char *id = sl_config_str(cfg, "id");
    const char *adv = sl_config_str(cfg, "advertise_host");
    char host[256] = "localhost", idbuf[300];
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
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
                          .cache_dir = sl_config_str(cfg, "cache_dir"),
                          .keep_running = true};
    sl_worker_t *w = sl_worker_start(&o);
    if (!w) {
        zmq_ctx_term(zctx);
        sl_config_destroy(&cfg);
        return 1;
    }
    fprintf(stderr, "sluice-worker %s: %ld slots, master %s, data %s advertised as %s%s%s\n", id,
            slots, master, bind, adv ? adv : bind + 6,
            sl_config_str(cfg, "config") ? ", config " : "",
            sl_config_str(cfg, "config") ? sl_config_str(cfg, "config") : "");
    while (!s_signaled && sl_worker_running(w)) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL); /* the loop runs on its own thread; this one waits for a signal */
    }
    sl_worker_stop(w);
    sl_worker_join(&w);
    zmq_ctx_term(zctx);
    fprintf(stderr, "sluice-worker %s: stopped\n", id);
    sl_config_destroy(&cfg);
    return 0;
}
