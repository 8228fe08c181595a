#!/usr/bin/env bash
# The robustness study (sweeps/robustness.md): post-hoc checks of every completed run that has none (its final.pt),
# then commit the completed run folders
# (records and posthoc.json; *.pt stay out of git), one commit each. Run it from anywhere in the main checkout.
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
root=results/sweeps/robustness
for d in "$root"/*/; do
  d=${d%/}
  [ -f "$d/summary.json" ] || continue
  status=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['status'])" "$d/summary.json")
  [ "$status" = completed ] || continue
  if [ ! -f "$d/posthoc.json" ]; then
    nice -n 10 .venv/bin/python -m dbsl.posthoc "$d" --threads 1 >> "${POSTHOC_LOG:-/tmp/dbsl-posthoc.log}" 2>&1  # not read while the study runs: no interim look
  fi
  if [ -n "$(git status --porcelain -- "$d")" ]; then
    git add -- "$d"
    git commit -q -m "Robustness study records: $(basename "$d") completed (with its post-hoc checks)" -- "$d"
    echo "committed $d"
  fi
done
