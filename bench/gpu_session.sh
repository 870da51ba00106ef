#!/usr/bin/env bash
# Everything that needs a GPU, as one script for a session that is lent one (about 10 minutes on an
# H100): the kernels' compile check, the cuda-marked tests, and the quick kernel benchmark. Run from the
# repository root with a Python whose torch sees the GPU:  bash bench/gpu_session.sh [python]
# Results: stdout, and bench/results/ (kernels.json, cuda-tests.txt); paste the table into
# docs/benchmarks.md with the GPU model it prints.
set -uo pipefail
cd "$(dirname "$0")/.."
py="${1:-python}"
out=bench/results
mkdir -p "$out"
status=0
"$py" -c "import torch; assert torch.cuda.is_available(), 'no GPU visible'; print(torch.cuda.get_device_name(0), torch.__version__)" || exit 1
echo "== python -m lgn.kernels --check"
"$py" -m lgn.kernels --check || status=1
echo "== python -m lgn.kernels --build"
"$py" -m lgn.kernels --build > "$out/kernel-build.txt" 2>&1 || { tail -40 "$out/kernel-build.txt"; status=1; }
echo "== pytest -m cuda tests/test_kernels.py"
"$py" -m pytest -q -m cuda tests/test_kernels.py 2>&1 | tee "$out/cuda-tests.txt" | tail -15
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "== python bench/kernels.py --quick"
"$py" bench/kernels.py --quick --out "$out/kernels.json" || status=1
exit $status
