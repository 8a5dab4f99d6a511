#!/usr/bin/env bash
# One full visit to a lent 16-core machine, within its 15 minutes of device time: the
# 16-thread targets on the current build (device-16core.sh), a sweep of the retire batch
# (write50, read95, churn10 at 16 threads), an A/B of the current build
# against an older one at 16 threads (device-ab.sh), and the pauses of promote() / clear()
# on a 4 Mi-key map (promote_pause). Carry device-bin/ with stripped static builds:
#
#   device-bin/bench-head      readmostly-bench at the commit being measured
#   device-bin/bench-old       readmostly-bench at the "before" commit (A/B skipped if absent)
#   device-bin/rebuild_pause   example of the commit being measured (grow steps)
#   device-bin/promote_pause   example of the commit being measured (pause steps)
#   device-bin/guard_cost      readmostly-bench's example: what each reclaimer's guard costs
#                              one random read, at 1 and 16 threads (run only with
#                              GUARD_COST=1, which can take the whole past 10 minutes)
#
# Everything lands under $OUT/run, then is packed into $OUT/results.tgz (the device tool
# returns at most 8 files). Each part has its own time limit, so the whole run stays
# under 10 minutes (the device tool's limit per command) even when every part runs to
# its limit: 300 + 3 x 30 + 120 + 2 x 40 s.
set -uo pipefail

ROOT=${OUT:-bench-out}
RUN=$ROOT/run
mkdir -p "$RUN"
lscpu >"$RUN/lscpu.txt" 2>&1
echo "start $(date -u +%FT%TZ)" >"$RUN/log.txt"

timeout 300 env BIN=device-bin/bench-head PAUSE_BIN=device-bin/rebuild_pause \
    THREADS=${THREADS:-4,8,16} BUDGET_S=230 OUT="$RUN/dev16" bash benchmarks/device-16core.sh
echo "dev16 exit $? at $(date -u +%T)" >>"$RUN/log.txt"

# Retire batch sweep (session 20): seize's membarrier per batch interrupts every CPU
# running the process, so its cost should grow with the thread count. Same binary, the
# batch given on the command line; user and system CPU seconds of each run beside it.
mkdir -p "$RUN/retire-batch"
for rb in 512 2048 8192; do
    TIMEFORMAT="cpu user %U sys %S"
    { time timeout 30 device-bin/bench-head compare -m syncmap,sharded,scc-hashindex,dashmap \
        -w write50,read95,churn10 -t 16 --duration 500ms --retire-batch $rb --no-claim \
        --no-progress --no-files --format csv >"$RUN/retire-batch/rb$rb.csv"; } \
        2>"$RUN/retire-batch/rb$rb.time"
    echo "retire-batch $rb exit $? at $(date -u +%T)" >>"$RUN/log.txt"
done

if [[ -x device-bin/bench-old ]]; then
    timeout 120 env A=device-bin/bench-old B=device-bin/bench-head ROUNDS=2 OUT="$RUN/ab" \
        bash benchmarks/device-ab.sh
    echo "ab exit $? at $(date -u +%T)" >>"$RUN/log.txt"
fi

for mode in promote clear; do
    flag=()
    [[ $mode == clear ]] && flag=(--clear)
    timeout 40 device-bin/promote_pause --rounds 2 "${flag[@]}" >"$RUN/pause-$mode.txt" 2>&1
    echo "pause-$mode exit $? at $(date -u +%T)" >>"$RUN/log.txt"
done

if [[ -x device-bin/guard_cost && ${GUARD_COST:-0} == 1 ]]; then
    for t in 1 16; do
        timeout 40 device-bin/guard_cost --threads $t --rounds 5 --reads 2M --dependent \
            >"$RUN/guard-cost-$t.txt" 2>&1
        echo "guard-cost-$t exit $? at $(date -u +%T)" >>"$RUN/log.txt"
    done
fi

tar czf "$ROOT/results.tgz" -C "$ROOT" run && echo "packed $ROOT/results.tgz"
cat "$RUN/log.txt" "$RUN/dev16/log.txt"
