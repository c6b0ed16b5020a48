#!/usr/bin/env bash
# The test command: sets up ./.venv if needed, then runs the unit tests and the
# notebooks under nbval. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure_venv.sh
export MPLBACKEND=Agg
python -m pytest tests "$@"
