#!/usr/bin/env bash
# The real-data study (issue 8): FER2013 headline run, FER2013 loss grid, CK+48 from
# scratch, from the headline run's ResNet-18 and from the shipped FER2013 model, each through
# `python -m fer_utils.pipeline`.
# Every training run resumes from its last epoch checkpoint and finished runs are skipped,
# so rerunning this script after any interruption continues where it stopped.
#   bash scripts/run_real_study.sh            # all profiles, in dependency order
#   bash scripts/run_real_study.sh ckplus48   # some of them
# Log: runs/real_study.log. Data: $FER_DATA_ROOT (default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_venv.sh >/dev/null
# fer2013_long first: ckplus48_transfer_long starts from its backbone (ckplus48_transfer from
# results/models/fer2013, committed).
profiles=("${@:-fer2013_long fer2013 ckplus48 ckplus48_transfer_long ckplus48_transfer}")
# Passive OpenMP waiting: training shares the 2 cores with other work without the
# spin-wait collapse seen under oversubscription (ResNet-18 48 px: 124 -> 37 img/s). On a
# quiet machine it costs about 11% (benchmarks/throughput.py --recipes fer2013: 293.5 vs
# 329.4 img/s); OMP_WAIT_POLICY=ACTIVE bash scripts/run_real_study.sh when nothing else runs.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
mkdir -p runs
for profile in ${profiles[@]}; do
  echo "[real-study] $(date -Is) start $profile" | tee -a runs/real_study.log
  .venv/bin/python -m fer_utils.pipeline "$profile" 2>&1 | tee -a runs/real_study.log
  echo "[real-study] $(date -Is) done $profile" | tee -a runs/real_study.log
done
