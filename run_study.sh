#!/usr/bin/env bash
# The main job: sets up ./.venv if needed, then runs the whole notebook pipeline on a
# dataset. Default: the embedded synthetic faces, trained from scratch (about 10 minutes on
# 2 cores), then compared with the published runs in results/synthetic/runs: the last line is
# the verdict, and the exit status is 1 when they differ beyond the measured tolerance.
# Real-data profiles restore their published runs and refresh results/<dataset>/. Extra
# arguments go to the pipeline, e.g. `bash run_study.sh ckplus48 --verify 1` or
# `bash run_study.sh fer2013 --set DEVICE=cuda`.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure_venv.sh
export MPLBACKEND=Agg
DATASET="${1:-synthetic}"
shift || true
python -m fer_utils.pipeline "$DATASET" "$@"
