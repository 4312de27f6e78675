#!/usr/bin/env bash
# The GPU figures that docs/performance.md lists as not yet measured, in one
# command, for the session that is lent a CUDA machine:
#
#   bash benchmarks/gpu_check.sh [OUT_DIR] [STEP...]   # on the GPU machine
#   bash benchmarks/gpu_check.sh --cpu-check           # here: what runs without CUDA
#
# STEPs, in order (default: all of them; a device session with a time limit
# per command may run them one or two at a time):
#   device     the GPU's name, driver, torch and CUDA versions (device.txt)
#   test_cuda  python -m pytest tests/test_cuda.py (test_cuda.txt); never run on a GPU yet
#   quick      benchmarks/run.py --device cuda --quick (gpu_quick.json, gpu_quick.txt):
#              with --device cuda the throughput benchmark compares the wrapper with
#              a plain loop at batch 1024 and 4096, the month on the device
#              (month_on_device="auto"), and the penalties and Fisher run on the GPU
#   big        bench_out_of_core item 1 on cuda: the 4M x 2,381 month (38 GB) from
#              host memory and from a memmap (big.txt; SKLEARN_CF_BENCH_ROWS=400000
#              for a tenth of it)
# Each step's output goes to OUT_DIR (default gpu_check_out/); a failed step is
# reported and the next one still runs; the exit status is 1 if any failed.
# Several GPUs (NCCL, AcceleratedContinualClassifier) are not covered: that
# needs a machine with two GPUs and `accelerate launch --multi_gpu`.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ "${1:-}" = "--cpu-check" ]; then
    # Everything that can be checked without CUDA: the script parses, the
    # commands it runs exist and accept their options, test_cuda.py is
    # collected (and skipped).
    set -e
    bash -n "$0"
    "$PYTHON" benchmarks/run.py --help > /dev/null
    "$PYTHON" -c "
import sys, inspect
sys.path.insert(0, 'benchmarks')
import bench_out_of_core, bench_throughput
for module in (bench_out_of_core, bench_throughput):
    assert 'device' in inspect.signature(module.run).parameters, module.__name__
"
    "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_cuda.py
    echo "gpu_check --cpu-check: ok (the CUDA steps were not run)"
    exit 0
fi

OUT=${1:-gpu_check_out}
shift || true
STEPS=${*:-device test_cuda quick big}
mkdir -p "$OUT"
if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "No CUDA device: nothing measured (use --cpu-check on a machine without a GPU)." >&2
    exit 2
fi

failed=0
run_step() {  # name, log file, command...
    local name=$1 log=$2
    shift 2
    echo "== $name: $*"
    local start=$SECONDS
    if "$@" > "$OUT/$log" 2>&1; then
        echo "   ok ($((SECONDS - start)) s) -> $OUT/$log"
    else
        echo "   FAILED ($((SECONDS - start)) s) -> $OUT/$log"
        tail -20 "$OUT/$log"
        failed=1
    fi
}

for step in $STEPS; do
    case $step in
        device)
            run_step device device.txt "$PYTHON" -c "
import torch
print('device:', torch.cuda.get_device_name(0))
print('memory GiB:', round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
print('torch', torch.__version__, 'cuda', torch.version.cuda)
" ;;
        test_cuda)
            run_step test_cuda test_cuda.txt "$PYTHON" -m pytest -q -rs tests/test_cuda.py ;;
        quick)
            run_step quick gpu_quick.txt "$PYTHON" benchmarks/run.py --device cuda --quick \
                --out "$OUT/gpu_quick.json" ;;
        big)
            run_step big big.txt env SKLEARN_CF_BENCH_ITEMS=1 "$PYTHON" -c "
import sys
sys.path.insert(0, 'benchmarks')
import bench_out_of_core
bench_out_of_core.run(device='cuda')
" ;;
        *)
            echo "unknown step $step (device, test_cuda, quick, big)" >&2
            failed=1 ;;
    esac
done
exit $failed
