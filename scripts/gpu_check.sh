#!/usr/bin/env bash
# GPU check, for a machine with a CUDA device: the GPU-marked tests (the same commands with
# --device cuda) and the lego benchmark at full resolution (800x800): val PSNR at 30 s, 1, 2 and
# 5 minutes, samples/s and peak memory. Writes docs/gpu_check.json and docs/bench_train_cuda.json.
#
#   bash scripts/gpu_check.sh            # datasets from $NEURALFIELDS_DATA (default ../shared/data)
#   MARKS="0.5 1" bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
  || { echo "no CUDA device visible to torch: nothing to check"; exit 2; }
python3 -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))"
start=$(date +%s)
python3 -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tee /tmp/gpu_tests.log
tests_rc=${PIPESTATUS[0]}
summary=$(tail -n 1 /tmp/gpu_tests.log)
MARKS=${MARKS:-"0.5 1 2 5"}
python3 scripts/bench_train.py --device cuda --downscale 1 --marks $MARKS --eval-images 10 \
  --set train.target_samples=262144 --set train.max_rays=65536 --set train.init_rays=16384 \
  --out docs/bench_train_cuda.json
bench_rc=$?
python3 - "$tests_rc" "$bench_rc" "$summary" "$(( $(date +%s) - start ))" <<'PY'
import json, sys
tests_rc, bench_rc, summary, seconds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
out = {"gpu_tests": {"exit_code": tests_rc, "summary": summary}, "bench_train_exit_code": bench_rc,
       "bench_train": "docs/bench_train_cuda.json", "seconds": seconds}
open("docs/gpu_check.json", "w").write(json.dumps(out, indent=2) + "\n")
print(json.dumps(out))
PY
exit $(( tests_rc != 0 || bench_rc != 0 ))
