/* sluice_dev_kafka.c — sluice-dev-kafka, the Kafka broker of development and tests.
 *
 * No real Kafka broker can be installed on the machines Sluice is built on, so
 * this program wraps librdkafka's Kafka-protocol mock cluster (rdkafka_mock.h)
 * as a standalone process: it starts N mock brokers on loopback, creates the
 * topics named on the command line, prints `bootstrap=HOST:PORT,...` and then
 * serves until SIGTERM/SIGINT, EOF on stdin or a `quit` command.
 *
 * Fault commands arrive on stdin, one per line; every command is answered by
 * exactly one line `ok` or `error: <why>` on stdout (informational lines before
 * it start with "# "). A bad command is answered, never fatal. The commands are
 * listed in s_help() and documented in docs/kafka.md, with the mock's limits.
 *
 * Scenario tests start this program themselves (tests/scenario/080_*.sh) and
 * cross-check it with kcat. Sluice's connectors must not depend on it: to them
 * it is just a Kafka cluster. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "sluice/err.h"

enum {
    S_MAX_BROKERS = 64,      /* more mock brokers than any test needs */
    S_MAX_TOPICS = 256,      /* topics remembered to refuse duplicates */
    S_MAX_PARTITIONS = 1000, /* per topic */
    S_MAX_ERRS = 256,        /* errors in one push-errors command */
    S_LINE_MAX = 4096,       /* longest control line accepted */
    S_MAX_TOKENS = 8,        /* words in one control line */
};

/* The daemon's state: one mock cluster and what was asked of it. */
typedef struct {
    rd_kafka_t *rk;                    /* the producer handle that owns the mock's thread */
    rd_kafka_mock_cluster_t *mcluster; /* the mock cluster, destroyed before rk */
    int brokers;                       /* broker ids are 1..brokers */
    char *topics[S_MAX_TOPICS];        /* names of the topics created, owned */
    int ntopics;                       /* entries used in topics */
    bool quit;                         /* a `quit` command was read */
} s_daemon_t;

/* Set by SIGTERM/SIGINT; the main loop polls it. */
static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

/* Kafka protocol request names and their ApiKey numbers (the mock's table). */
static const struct {
    const char *name; /* as in the Kafka protocol guide */
    int16_t key;      /* ApiKey */
} s_apis[] = {
    {"Produce", 0},
    {"Fetch", 1},
    {"ListOffsets", 2},
    {"Metadata", 3},
    {"OffsetCommit", 8},
    {"OffsetFetch", 9},
    {"FindCoordinator", 10},
    {"JoinGroup", 11},
    {"Heartbeat", 12},
    {"LeaveGroup", 13},
    {"SyncGroup", 14},
    {"DescribeGroups", 15},
    {"ListGroups", 16},
    {"SaslHandshake", 17},
    {"ApiVersions", 18},
    {"CreateTopics", 19},
    {"DeleteTopics", 20},
    {"DeleteRecords", 21},
    {"InitProducerId", 22},
    {"OffsetForLeaderEpoch", 23},
    {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25},
    {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
    {"SaslAuthenticate", 36},
};

static void s_help(void)
{
    static const char *const lines[] = {
        "commands (one per line; each answered by `ok` or `error: why`):",
        "  broker down N            broker N closes its connections and refuses new ones",
        "  broker up N              broker N serves again",
        "  rtt N MS                 broker N delays every response by MS milliseconds",
        "  push-errors API ERR[,ERR...]  the next requests of API fail with ERR, in order",
        "                           (API: Produce, Fetch, Metadata, ... or a number;",
        "                            ERR: NOT_LEADER_FOR_PARTITION, _TRANSPORT, ... or a number)",
        "  clear-errors API         forget the errors pushed for API",
        "  leader TOPIC PARTITION N make broker N (-1: none) the partition's leader",
        "  topic NAME PARTITIONS [REPLICATION]  create a topic",
        "  bootstrap                print the bootstrap address",
        "  help                     this text",
        "  quit                     stop the cluster and exit",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        printf("# %s\n", lines[i]);
}

/* Parses a whole decimal integer in [lo, hi] from s into *out; SL_RANGE or
 * SL_PARSE otherwise. */
static int s_parse_int(const char *s, long lo, long hi, long *out)
{
    if (s == NULL || *s == '\0')
        return SL_PARSE;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0')
        return SL_PARSE;
    if (errno == ERANGE || v < lo || v > hi)
        return SL_RANGE;
    *out = v;
    return 0;
}

/* True when name is a legal Kafka topic name (1..249 of [A-Za-z0-9._-]). */
static bool s_topic_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 249 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Resolves an API name (case-insensitive) or number into *key; SL_NOTFOUND if
 * neither. */
static int s_api_key(const char *s, int16_t *key)
{
    long v;
    if (s_parse_int(s, 0, INT16_MAX, &v) == 0) {
        *key = (int16_t)v;
        return 0;
    }
    for (size_t i = 0; i < sizeof s_apis / sizeof s_apis[0]; i++) {
        if (strcasecmp(s, s_apis[i].name) == 0) {
            *key = s_apis[i].key;
            return 0;
        }
    }
    return SL_NOTFOUND;
}

/* Resolves an error name (with or without the RD_KAFKA_RESP_ERR_ prefix,
 * case-insensitive) or number into *err; SL_NOTFOUND if unknown. */
static int s_err_code(const char *s, rd_kafka_resp_err_t *err)
{
    long v;
    if (s_parse_int(s, INT_MIN, INT_MAX, &v) == 0) {
        *err = (rd_kafka_resp_err_t)v;
        return 0;
    }
    if (strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18) == 0)
        s += 18;
    const struct rd_kafka_err_desc *descs = NULL;
    size_t n = 0;
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++) {
        if (descs[i].name != NULL && strcasecmp(s, descs[i].name) == 0) {
            *err = descs[i].code;
            return 0;
        }
    }
    return SL_NOTFOUND;
}

/* Answers a command with `error: ...`. */
static void s_reply_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

/* Parses a broker id in 1..d->brokers; answers the error itself. */
static int s_broker_arg(const s_daemon_t *d, const char *s, int32_t *id)
{
    long v;
    if (s_parse_int(s, 1, d->brokers, &v) != 0) {
        s_reply_error("broker id '%s' is not in 1..%d", s ? s : "", d->brokers);
        return SL_INVAL;
    }
    *id = (int32_t)v;
    return 0;
}

static bool s_topic_known(const s_daemon_t *d, const char *name)
{
    for (int i = 0; i < d->ntopics; i++)
        if (strcmp(d->topics[i], name) == 0)
            return true;
    return false;
}

/* Creates topic name with partitions and replication (0: min(3, brokers));
 * on failure writes why into why and returns a negative error. */
static int s_topic_create(s_daemon_t *d, const char *name, long partitions, long replication,
                          char *why, size_t whylen)
{
    if (!s_topic_name_ok(name)) {
        snprintf(why, whylen, "'%s' is not a valid topic name (1..249 of [A-Za-z0-9._-])", name);
        return SL_INVAL;
    }
    if (s_topic_known(d, name)) {
        snprintf(why, whylen, "topic '%s' already exists", name);
        return SL_EXISTS;
    }
    if (d->ntopics >= S_MAX_TOPICS) {
        snprintf(why, whylen, "too many topics (at most %d)", S_MAX_TOPICS);
        return SL_LIMIT;
    }
    if (replication == 0)
        replication = d->brokers < 3 ? d->brokers : 3;
    if (replication > d->brokers) {
        snprintf(why, whylen, "replication %ld exceeds the %d brokers", replication, d->brokers);
        return SL_RANGE;
    }
    char *copy = strdup(name);
    if (copy == NULL) {
        snprintf(why, whylen, "out of memory");
        return SL_NOMEM;
    }
    rd_kafka_resp_err_t err =
        rd_kafka_mock_topic_create(d->mcluster, name, (int)partitions, (int)replication);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        free(copy);
        snprintf(why, whylen, "creating topic '%s': %s", name, rd_kafka_err2str(err));
        return SL_STATE;
    }
    d->topics[d->ntopics++] = copy;
    return 0;
}

/* Answers a mock call's result. */
static void s_reply_mock(rd_kafka_resp_err_t err)
{
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        puts("ok");
    else
        s_reply_error("%s (%s)", rd_kafka_err2str(err), rd_kafka_err2name(err));
}

/* push-errors API ERR[,ERR...] */
static void s_cmd_push_errors(s_daemon_t *d, char **tok, int ntok)
{
    int16_t key;
    if (ntok != 3) {
        s_reply_error("usage: push-errors API ERR[,ERR...]");
        return;
    }
    if (s_api_key(tok[1], &key) != 0) {
        s_reply_error("unknown API '%s' (try Produce, Fetch, Metadata or a number)", tok[1]);
        return;
    }
    rd_kafka_resp_err_t errs[S_MAX_ERRS];
    size_t n = 0;
    char *save = NULL;
    for (char *e = strtok_r(tok[2], ",", &save); e != NULL; e = strtok_r(NULL, ",", &save)) {
        if (n == S_MAX_ERRS) {
            s_reply_error("too many errors (at most %d)", S_MAX_ERRS);
            return;
        }
        if (s_err_code(e, &errs[n]) != 0) {
            s_reply_error("unknown error '%s' (try NOT_LEADER_FOR_PARTITION or a number)", e);
            return;
        }
        n++;
    }
    if (n == 0) {
        s_reply_error("no errors given");
        return;
    }
    rd_kafka_mock_push_request_errors_array(d->mcluster, key, n, errs);
    puts("ok");
}

/* Runs one control line (modified in place: tokenized). */
static void s_command(s_daemon_t *d, char *line)
{
    char *tok[S_MAX_TOKENS];
    int ntok = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t\r", &save); t != NULL; t = strtok_r(NULL, " \t\r", &save)) {
        if (ntok == S_MAX_TOKENS) {
            s_reply_error("too many words (at most %d)", S_MAX_TOKENS);
            return;
        }
        tok[ntok++] = t;
    }
    if (ntok == 0 || tok[0][0] == '#')
        return; /* blank lines and comments are not commands: no answer */
    const char *cmd = tok[0];
    int32_t id;
    long v;
    if (strcmp(cmd, "help") == 0) {
        s_help();
        puts("ok");
    } else if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "exit") == 0) {
        d->quit = true;
        puts("ok");
    } else if (strcmp(cmd, "bootstrap") == 0) {
        printf("# bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(d->mcluster));
        puts("ok");
    } else if (strcmp(cmd, "broker") == 0) {
        if (ntok != 3 || (strcmp(tok[1], "down") != 0 && strcmp(tok[1], "up") != 0)) {
            s_reply_error("usage: broker down|up N");
            return;
        }
        if (s_broker_arg(d, tok[2], &id) != 0)
            return;
        s_reply_mock(strcmp(tok[1], "down") == 0 ? rd_kafka_mock_broker_set_down(d->mcluster, id)
                                                 : rd_kafka_mock_broker_set_up(d->mcluster, id));
    } else if (strcmp(cmd, "rtt") == 0) {
        if (ntok != 3) {
            s_reply_error("usage: rtt N MS");
            return;
        }
        if (s_broker_arg(d, tok[1], &id) != 0)
            return;
        if (s_parse_int(tok[2], 0, 600000, &v) != 0) {
            s_reply_error("delay '%s' is not a number of milliseconds in 0..600000", tok[2]);
            return;
        }
        s_reply_mock(rd_kafka_mock_broker_set_rtt(d->mcluster, id, (int)v));
    } else if (strcmp(cmd, "push-errors") == 0) {
        s_cmd_push_errors(d, tok, ntok);
    } else if (strcmp(cmd, "clear-errors") == 0) {
        int16_t key;
        if (ntok != 2 || s_api_key(tok[1], &key) != 0) {
            s_reply_error("usage: clear-errors API (Produce, Fetch, Metadata, ... or a number)");
            return;
        }
        rd_kafka_mock_clear_request_errors(d->mcluster, key);
        puts("ok");
    } else if (strcmp(cmd, "leader") == 0) {
        long part, broker;
        if (ntok != 4) {
            s_reply_error("usage: leader TOPIC PARTITION N");
            return;
        }
        if (!s_topic_known(d, tok[1])) {
            s_reply_error("unknown topic '%s'", tok[1]);
            return;
        }
        if (s_parse_int(tok[2], 0, S_MAX_PARTITIONS - 1, &part) != 0 ||
            s_parse_int(tok[3], -1, d->brokers, &broker) != 0 || broker == 0) {
            s_reply_error("usage: leader TOPIC PARTITION N (N in 1..%d, or -1)", d->brokers);
            return;
        }
        s_reply_mock(rd_kafka_mock_partition_set_leader(d->mcluster, tok[1], (int32_t)part,
                                                        (int32_t)broker));
    } else if (strcmp(cmd, "topic") == 0) {
        long parts, repl = 0;
        char why[512];
        if (ntok < 3 || ntok > 4) {
            s_reply_error("usage: topic NAME PARTITIONS [REPLICATION]");
            return;
        }
        if (s_parse_int(tok[2], 1, S_MAX_PARTITIONS, &parts) != 0 ||
            (ntok == 4 && s_parse_int(tok[3], 1, S_MAX_BROKERS, &repl) != 0)) {
            s_reply_error("partitions must be in 1..%d and replication in 1..%d", S_MAX_PARTITIONS,
                          d->brokers);
            return;
        }
        if (s_topic_create(d, tok[1], parts, repl, why, sizeof why) != 0)
            s_reply_error("%s", why);
        else
            puts("ok");
    } else {
        s_reply_error("unknown command '%.64s' (try help)", cmd);
    }
}

/* Writes text to path atomically (temporary file, then rename), so a waiter
 * never reads half of it. */
static int s_write_file(const char *path, const char *text)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return SL_RANGE;
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return SL_IO;
    bool ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return SL_IO;
    }
    return 0;
}

static void s_usage(FILE *out)
{
    fputs("usage: sluice-dev-kafka [--brokers N] [--topic NAME:PARTITIONS[:REPLICATION]]...\n"
          "                        [--port-file FILE] [--no-stdin]\n"
          "Runs librdkafka's mock Kafka cluster on loopback for development and tests.\n"
          "Prints bootstrap=HOST:PORT,... and serves until SIGTERM/SIGINT, `quit` or EOF\n"
          "on stdin; reads fault commands on stdin (send `help`). See docs/kafka.md.\n"
          "  --brokers N       mock brokers, 1..64 (default 3)\n"
          "  --topic T:P[:R]   create topic T with P partitions, replication R\n"
          "  --port-file FILE  also write the bootstrap line to FILE (atomically)\n"
          "  --no-stdin        ignore stdin; serve until a signal\n",
          out);
}

/* A --topic argument, parsed. */
typedef struct {
    char name[256]; /* topic name */
    long parts;     /* partitions */
    long repl;      /* replication, 0 = default */
} s_topic_arg_t;

static int s_parse_topic_arg(const char *arg, s_topic_arg_t *t)
{
    char buf[512];
    if (strlen(arg) >= sizeof buf)
        return SL_RANGE;
    strcpy(buf, arg);
    char *c1 = strchr(buf, ':');
    if (c1 == NULL)
        return SL_PARSE;
    *c1 = '\0';
    char *c2 = strchr(c1 + 1, ':');
    if (c2 != NULL)
        *c2 = '\0';
    if (!s_topic_name_ok(buf) || strlen(buf) >= sizeof t->name)
        return SL_INVAL;
    strcpy(t->name, buf);
    if (s_parse_int(c1 + 1, 1, S_MAX_PARTITIONS, &t->parts) != 0)
        return SL_RANGE;
    t->repl = 0;
    if (c2 != NULL && s_parse_int(c2 + 1, 1, S_MAX_BROKERS, &t->repl) != 0)
        return SL_RANGE;
    return 0;
}

/* Reads what stdin has, runs every complete line; returns false at EOF or
 * on a read error (the daemon then stops). */
static bool s_read_stdin(s_daemon_t *d, char *buf, size_t *len, bool *skipping)
{
    ssize_t n = read(STDIN_FILENO, buf + *len, S_LINE_MAX - 1 - *len);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN;
    if (n == 0) { /* EOF: a last line without its newline is still a command */
        if (*len > 0 && !*skipping) {
            buf[*len] = '\0';
            s_command(d, buf);
            fflush(stdout);
        }
        return false;
    }
    *len += (size_t)n;
    size_t start = 0;
    for (size_t i = 0; i < *len; i++) {
        if (buf[i] != '\n')
            continue;
        buf[i] = '\0';
        if (*skipping) {
            *skipping = false;
            s_reply_error("line too long (at most %d bytes)", S_LINE_MAX - 1);
        } else {
            s_command(d, buf + start);
        }
        fflush(stdout);
        start = i + 1;
    }
    memmove(buf, buf + start, *len - start);
    *len -= start;
    if (*len == S_LINE_MAX - 1) { /* no newline in a full buffer: drop until one comes */
        *skipping = true;
        *len = 0;
    }
    return true;
}

int main(int argc, char **argv)
{
    long brokers = 3;
    const char *port_file = NULL;
    bool use_stdin = true;
    static s_topic_arg_t targs[S_MAX_TOPICS];
    int ntargs = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else if (strcmp(a, "--no-stdin") == 0) {
            use_stdin = false;
            continue;
        }
        if (strcmp(a, "--brokers") != 0 && strcmp(a, "--topic") != 0 &&
            strcmp(a, "--port-file") != 0) {
            fprintf(stderr, "sluice-dev-kafka: unknown argument '%s'\n", a);
            s_usage(stderr);
            return 2;
        }
        if (val == NULL) {
            fprintf(stderr, "sluice-dev-kafka: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--brokers") == 0) {
            if (s_parse_int(val, 1, S_MAX_BROKERS, &brokers) != 0) {
                fprintf(stderr, "sluice-dev-kafka: --brokers '%s' is not a number in 1..%d\n", val,
                        S_MAX_BROKERS);
                return 2;
            }
        } else if (strcmp(a, "--port-file") == 0) {
            port_file = val;
        } else {
            if (ntargs == S_MAX_TOPICS) {
                fprintf(stderr, "sluice-dev-kafka: too many --topic (at most %d)\n", S_MAX_TOPICS);
                return 2;
            }
            if (s_parse_topic_arg(val, &targs[ntargs]) != 0) {
                fprintf(stderr,
                        "sluice-dev-kafka: --topic '%s' is not NAME:PARTITIONS[:REPLICATION] "
                        "(NAME of [A-Za-z0-9._-], PARTITIONS in 1..%d)\n",
                        val, S_MAX_PARTITIONS);
                return 2;
            }
            ntargs++;
        }
    }
    for (int i = 0; i < ntargs; i++) {
        if (targs[i].repl > brokers) {
            fprintf(stderr,
                    "sluice-dev-kafka: --topic %s: replication %ld exceeds the %ld brokers\n",
                    targs[i].name, targs[i].repl, brokers);
            return 2;
        }
        for (int j = 0; j < i; j++) {
            if (strcmp(targs[i].name, targs[j].name) == 0) {
                fprintf(stderr, "sluice-dev-kafka: topic '%s' given twice\n", targs[i].name);
                return 2;
            }
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal; /* no SA_RESTART: poll() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    /* The mock cluster runs on the thread of a client handle; a producer that
     * never produces is the lightest one. librdkafka blocks signals in its own
     * threads, so SIGTERM reaches this one. */
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "sluice-dev-kafka: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    s_daemon_t d = {.brokers = (int)brokers};
    d.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (d.rk == NULL) {
        fprintf(stderr, "sluice-dev-kafka: creating the client handle: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    int rc = 0;
    d.mcluster = rd_kafka_mock_cluster_new(d.rk, (int)brokers);
    if (d.mcluster == NULL) {
        fprintf(stderr, "sluice-dev-kafka: could not start the mock cluster\n");
        rc = 1;
        goto out;
    }
    for (int i = 0; i < ntargs; i++) {
        char why[512];
        if (s_topic_create(&d, targs[i].name, targs[i].parts, targs[i].repl, why, sizeof why) !=
            0) {
            fprintf(stderr, "sluice-dev-kafka: %s\n", why);
            rc = 1;
            goto out;
        }
    }

    char line[PATH_MAX + 64];
    snprintf(line, sizeof line, "bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(d.mcluster));
    if (port_file != NULL && s_write_file(port_file, line) != 0) {
        fprintf(stderr, "sluice-dev-kafka: cannot write --port-file '%s': %s\n", port_file,
                strerror(errno));
        rc = 1;
        goto out;
    }
    fputs(line, stdout);
    fflush(stdout);

    static char buf[S_LINE_MAX];
    size_t len = 0;
    bool skipping = false;
    while (!s_stop && !d.quit) {
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int n = poll(&pfd, use_stdin ? 1 : 0, 1000);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "sluice-dev-kafka: poll: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        if (n > 0 && !s_read_stdin(&d, buf, &len, &skipping))
            break; /* EOF on the control channel */
    }
    fflush(stdout);

out:
    if (d.mcluster != NULL)
        rd_kafka_mock_cluster_destroy(d.mcluster);
    rd_kafka_destroy(d.rk);
    for (int i = 0; i < d.ntopics; i++)
        free(d.topics[i]);
    return rc;
}
