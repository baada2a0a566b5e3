#!/usr/bin/env bash
# sacct-fields.sh - the job mix's sacct output, one field a line, labelled by the manifest's
# key instead of job ids, so two rigs (Slurm 22.05 and 24.11) compare with plain `diff`:
#
#   sacct-fields.sh > /tmp/f-2205.txt     (SLURM_RIG_DIR picks the rig; run after jobs.sh)
#   diff <(SLURM_RIG_DIR=/tmp/a tests/slurm/sacct-fields.sh) <(SLURM_RIG_DIR=/tmp/b ...)
#
# Lines: KEY STEP FIELD=VALUE (STEP is `job` for the allocation line, else `.batch`, `.0`...).
# The fields are src/sacct/fields.rs's list, asked with TZ=UTC and `-P` as slurm-usage does.
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RIG_DIR=${SLURM_RIG_DIR:-/tmp/slurm-usage-rig}
export SLURM_CONF=$RIG_DIR/etc/slurm.conf PATH=$RIG_DIR/bin:$PATH TZ=UTC
FIELDS=$(sed -n '/^pub const SACCT_FIELDS/,/^];/p' "$HERE/../../src/sacct/fields.rs" |
  grep -o '"[A-Za-z]*"' | tr -d '"' | paste -sd, -)
echo "# $(sacct --version)"
awk -F'\t' 'NR > 1 { print $1 "\t" $2 }' "$RIG_DIR/jobs.tsv" |
  while IFS=$'\t' read -r key id; do
    # a line that does not start with a job id continues the record before it: JobName,
    # Comment, SubmitLine may hold newlines (shown as \n)
    sacct -n -P --delimiter=$'\x1f' -j "$id" -o "$FIELDS" |
      awk -v key="$key" -v fields="$FIELDS" '
        BEGIN { n = split(fields, name, ",") }
        function flush(   f, i, step) {
          if (rec == "") return
          split(rec, f, "\037")
          step = f[1]; sub(/^[0-9_]+/, "", step); if (step == "") step = "job"
          for (i = 1; i <= n; i++) printf "%s %s %s=%s\n", key, step, name[i], f[i]
          rec = ""
        }
        /^[0-9]+(_[0-9]+)?(\.[a-z0-9]+)?\037/ { flush(); rec = $0; next }
        { rec = rec "\\n" $0 }
        END { flush() }'
  done
