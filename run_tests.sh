#!/usr/bin/env bash
# The test command: sets up ./.venv if needed, then runs the unit tests and the
# notebooks under nbval. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure_venv.sh
source scripts/pin_kernels.sh  # nbval's checked results must not depend on the host
export MPLBACKEND=Agg
# Unit tests, then every notebook re-executed under nbval (smoke parameters). conftest.py empties
# the smoke runs folder first, so nbval retrains instead of reusing runs left by an earlier call.
python -m pytest tests notebooks --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg \
  --nbval-cell-timeout=1800 -p no:cacheprovider "$@"
