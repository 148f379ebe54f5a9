#!/bin/sh
# Download the wheels of benchmarks/gpu_wheels.txt into .whl/ (ignored by git) for the GPU
# machine: CPython 3.12, manylinux x86_64, no dependencies (the list names every one).
# Run from the repository root on a machine that reaches the package index:
#
#     sh benchmarks/gpu_wheels.sh [PYTHON]      # PYTHON defaults to python3
#
# Then carry .whl to the GPU machine and install it there as benchmarks/GPU.md says.
set -eu
python=${1:-python3}
list=benchmarks/gpu_wheels.txt
mkdir -p .whl
rm -f .whl/*.whl
grep -v '^#' "$list" | grep -v '^$' | while read -r requirement; do
    "$python" -m pip download --quiet --no-deps --only-binary=:all: \
        --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 -d .whl "$requirement"
done
count=$(ls .whl/*.whl | wc -l)
wanted=$(grep -cv -e '^#' -e '^$' "$list")
if [ "$count" -ne "$wanted" ]; then
    echo "expected $wanted wheels in .whl, found $count" >&2
    exit 1
fi
echo "$count wheels, $(du -sh .whl | cut -f1) in .whl:"
ls .whl
