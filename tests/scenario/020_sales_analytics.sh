#!/usr/bin/env bash
# The CSV analytics job (filter, map with expressions, aggregate by two
# keys) equals the same computation done independently in awk over a
# generated sales CSV.
source "$(dirname "$0")/lib.sh"

CSV=$WORK/sales.csv
step "generating sales"
awk -v seed=7 -v n=60000 'BEGIN {
    srand(seed)
    split("north,South,  east ,WEST,Central,north-east", regions, ",")
    split("completed,COMPLETED,cancelled,refunded,Completed,pending", statuses, ",")
    print "order_id,region,ordered_at,status,quantity,unit_price_cents"
    for (i = 1; i <= n; i++) {
        r = regions[1 + int(6 * rand())]
        if (r ~ / /) r = "\"" r "\""
        m = 1 + int(12 * rand()); d = 1 + int(28 * rand())
        ts = sprintf("2025-%02d-%02dT%02d:%02d:%02dZ", m, d, int(24*rand()), int(60*rand()), int(60*rand()))
        q = int(10 * rand()) - 1          # some zero and negative quantities
        p = 50 + int(200000 * rand() * rand())
        printf "%d,%s,%s,%s,%d,%d\n", i, r, ts, statuses[1 + int(6 * rand())], q, p
    }
}' > "$CSV"

# The reference: the same rules, written in awk.
awk -F, 'NR > 1 {
    region = $2; gsub(/"/, "", region); gsub(/^ +| +$/, "", region); region = toupper(region)
    status = tolower($4); q = $5 + 0; p = $6 + 0
    if (status != "completed" || q <= 0) next
    k = region "," substr($3, 1, 7); rev = q * p
    n[k]++; sum[k] += rev; if (!(k in mx) || rev > mx[k]) mx[k] = rev
    if (rev >= 100000) big[k]++
}
END { for (k in n) printf "%s,%d,%d,%d,%.6f,%d\n", k, n[k], sum[k], mx[k], sum[k] / n[k], big[k] + 0 }' \
    "$CSV" | sort > "$WORK/expected.csv"
test "$(wc -l < "$WORK/expected.csv")" -ge 60 || fail "reference has too few groups"

for P in 1 3; do
    step "parallelism $P"
    OUT=$WORK/revenue-$P.csv
    sluice run "$SRC/jobs/sales-by-region.yaml" --parallelism "$P" --workers 2 --quiet \
        --param input="$CSV" --param output="$OUT" || { cat "$WORK/stderr"; fail "run P=$P"; }
    head -n 1 "$OUT" | grep -qx "region,month,orders,revenue_cents,largest_cents,avg_order_cents,big_orders" ||
        fail "unexpected header: $(head -n 1 "$OUT")"
    tail -n +2 "$OUT" | awk -F, '{ printf "%s,%s,%d,%d,%d,%.6f,%d\n", $1, $2, $3, $4, $5, $6, $7 }' |
        sort > "$WORK/got.csv"
    if ! cmp -s "$WORK/expected.csv" "$WORK/got.csv"; then
        diff "$WORK/expected.csv" "$WORK/got.csv" | head -n 20 >&2
        fail "revenue differs at parallelism $P"
    fi
done
echo "PASS sales analytics"
