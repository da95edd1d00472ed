#!/bin/sh
# gen_ptx.sh compiles the CUDA C kernels of cuda/kernels to the PTX that the
# Go package embeds (cuda/ptx/*.ptx). It needs nvcc (CUDA 12 or 13); run it
# from anywhere on a machine that has it, then commit the PTX:
#
#	sh cuda/gen_ptx.sh [outdir]
#
# Two PTX files per kernel source: compute_80 (Ampere on) and compute_90
# (Hopper on: programmatic dependent launch); the package picks by the
# GPU's compute capability and the driver JIT-compiles the PTX once per
# process.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/ptx}
mkdir -p "$out"
for f in "$here"/kernels/*.cu; do
	name=$(basename "$f" .cu)
	for cc in 80 90; do
		nvcc -ptx -arch=compute_$cc -O3 -o "$out/${name}_sm$cc.ptx" "$f"
		echo "gen_ptx: $out/${name}_sm$cc.ptx"
	done
done
