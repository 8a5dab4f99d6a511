#!/usr/bin/env bash
# Retire batch A/B on one binary (readmostly-bench --retire-batch), alternating settings
# round by round so that the host's drift hits every setting alike.
# usage: [BIN=target/release/readmostly-bench] [ROUNDS=6] [BATCHES="512 2048 8192"]
#        [WORKLOADS=write50,read95,churn10] [THREADS=1,2] [MAPS=syncmap] retire-batch-ab.sh
# prints one line per (round, batch, cell): round batch map workload threads Mops p99 p999
# max allocs/op, and the run's user and system CPU seconds
set -euo pipefail
bin=${BIN:-target/release/readmostly-bench}
for round in $(seq "${ROUNDS:-6}"); do
  for rb in ${BATCHES:-512 2048 8192}; do
    csv=$(TIMEFORMAT="CPU %U %S"; { time "$bin" compare -m "${MAPS:-syncmap}" \
        -w "${WORKLOADS:-write50,read95,churn10}" -t "${THREADS:-1,2}" --duration 300ms \
        --keys 64Ki --retire-batch "$rb" --no-claim --no-progress --no-files --format csv; } 2>&1)
    cpu=$(echo "$csv" | grep '^CPU' | cut -d' ' -f2-)
    echo "$csv" | grep -v '^CPU' | python3 -c "
import csv, sys
for r in csv.DictReader(sys.stdin):
    print('$round $rb %s %s %s %.2f %s %s %s %.4f cpu $cpu' % (r['map'], r['workload'], r['threads'],
          float(r['mops']), r['p99_ns'], r['p999_ns'], r['max_ns'], float(r['allocs_per_op'] or 0)))"
  done
done
