#!/usr/bin/env bash
# The main job: sets up ./.venv if needed, then runs the whole notebook pipeline on a
# dataset (default: the embedded synthetic faces, CPU, about 20 minutes on 2 cores).
# Tables and figures land in results/<dataset>/. Extra arguments go to the pipeline,
# e.g. `bash run_study.sh fer2013 --set DEVICE=cuda`.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure_venv.sh
export MPLBACKEND=Agg
DATASET="${1:-synthetic}"
shift || true
python -m fer_utils.pipeline "$DATASET" "$@"
