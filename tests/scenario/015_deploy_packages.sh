#!/usr/bin/env bash
# The container image's package lists (deploy/Dockerfile) keep up with the
# build: the build stage installs every development package the Makefile
# installs for building (each `*-dev` of DEBS, and protobuf-c-compiler),
# and the runtime stage installs the Debian package of every shared
# library the three programs link directly (readelf NEEDED), apart from
# libc's, which every Debian image has. No container engine is needed:
# the lists are read from the Dockerfile.
source "$(dirname "$0")/lib.sh"
: "${BUILD:?}"
DF=$SRC/deploy/Dockerfile
command -v readelf >/dev/null || fail "readelf is not installed (binutils)"

# The packages of the apt-get install in stage N (1: build, 2: runtime).
stage_packages() {
    awk -v want="$1" '/^FROM / { stage++ } stage == want' "$DF" |
        sed -n '/apt-get install/,/rm -rf/p' | tr ' \\' '\n\n' |
        grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vE '^(apt-get|install|rm|update|useradd)$' | sort -u
}
stage_packages 1 > "$WORK/build.txt"
stage_packages 2 > "$WORK/runtime.txt"
grep -qx cmake "$WORK/build.txt" || fail "could not read the build stage's packages from $DF"
grep -qx libzmq5 "$WORK/runtime.txt" || fail "could not read the runtime stage's packages from $DF"

step "the build stage installs the Makefile's development packages"
sed -n '/^DEBS :=/,/^[^ ]/p' "$SRC/Makefile" | tr ' \\' '\n\n' |
    grep -E -- '-dev$|^protobuf-c-compiler$' | sort -u > "$WORK/need-build.txt"
[ "$(wc -l < "$WORK/need-build.txt")" -ge 6 ] || fail "could not read DEBS from the Makefile"
missing=$(comm -23 "$WORK/need-build.txt" "$WORK/build.txt")
[ -z "$missing" ] || fail "deploy/Dockerfile's build stage lacks: $(echo $missing)"

step "the runtime stage installs every library the programs link"
for b in sluice sluice-master sluice-worker; do
    [ -x "$BUILD/$b" ] || fail "$BUILD/$b is not built"
    ldd "$BUILD/$b" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' > "$WORK/ldd-$b.txt"
    readelf -d "$BUILD/$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r lib; do
        case "$lib" in libc.so.* | libm.so.* | libasan.so.* | libubsan.so.* | ld-linux*) continue ;; esac
        path=$(awk -v l="$lib" '$1 == l { print $2 }' "$WORK/ldd-$b.txt")
        [ -n "$path" ] || { echo "$b: $lib not found by ldd" >&2; exit 1; }
        dpkg -S "$(readlink -f "$path")" | cut -d: -f1 | head -n 1
    done >> "$WORK/need-runtime.txt" || fail "$b: cannot resolve its libraries"
done
sort -u -o "$WORK/need-runtime.txt" "$WORK/need-runtime.txt"
grep -qx librocksdb7.8 "$WORK/need-runtime.txt" || fail "expected the worker to link librocksdb"
missing=$(comm -23 "$WORK/need-runtime.txt" "$WORK/runtime.txt")
[ -z "$missing" ] || fail "deploy/Dockerfile's runtime stage lacks: $(echo $missing)"
echo "PASS deploy packages"
