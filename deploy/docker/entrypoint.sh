#!/bin/sh
# sluice-entrypoint: the image's entrypoint.
#   master [FLAGS]    runs sluice-master
#   worker [FLAGS]    runs sluice-worker
#   sluice ARGS       runs the CLI (submit, list, status, cancel, workers, ...)
#   anything else     runs as given
# Settings come from flags, SLUICE_* variables or a --config file
# (SLUICE_CONFIG); `master --help` and `worker --help` list them.
set -e
cmd=${1:-master}
[ $# -gt 0 ] && shift
case "$cmd" in
master | sluice-master) exec sluice-master "$@" ;;
worker | sluice-worker) exec sluice-worker "$@" ;;
sluice | cli) exec sluice "$@" ;;
*) exec "$cmd" "$@" ;;
esac
