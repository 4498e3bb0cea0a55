# lib.sh — shared by the benchmark scripts (sourced, not run).

# write_section DOC HEADING: replaces the section of DOC that starts with the
# line HEADING ("## ...") up to the next "## " heading by the text in the
# SECTION variable (which starts with HEADING), or appends it; creates DOC
# with its title when missing. Other sections are kept as they are.
write_section() {
    local doc=$1 heading=$2
    mkdir -p "$(dirname "$doc")"
    if [ -f "$doc" ]; then
        SECTION=$SECTION HEADING=$heading awk '
            /^## / {
                if (skip) { skip = 0; print "" }
                if ($0 == ENVIRON["HEADING"] && !done) {
                    skip = 1; done = 1; print ENVIRON["SECTION"]; next
                }
            }
            !skip { print }
            END { if (!done) { print ""; print ENVIRON["SECTION"] } }' "$doc" >"$doc.tmp"
    else
        printf '# Benchmarks\n\nThis file is written by `make bench` and `make bench-nexmark`;\nrerun them rather than editing the numbers by hand.\n\n%s\n' \
            "$SECTION" >"$doc.tmp"
    fi
    mv "$doc.tmp" "$doc"
}

# machine_line: "2 CPUs (model), 23.5 GiB memory, Linux x.y" for the reports.
machine_line() {
    local model mem
    model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    echo "$(nproc) CPUs ($model), $mem memory, Linux $(uname -r)"
}

# commit_id ROOT: the short commit of the tree benchmarked, or "unknown".
commit_id() {
    git -C "$1" rev-parse --short HEAD 2>/dev/null || echo unknown
}
