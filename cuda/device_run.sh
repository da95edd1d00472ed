#!/bin/sh
# device_run.sh runs the GPU suite on a machine with an NVIDIA GPU and nvcc:
# it compiles the kernels to PTX (into $OUT, used through DEJAVU_PTX, so a
# kernel change needs no Go rebuild), runs the package's tests from a test
# binary built elsewhere with
#
#	CGO_ENABLED=0 go test -c -o .devdata/cuda/cuda.test ./cuda
#
# and, when BENCH is set (e.g. BENCH=opt-6.7b,opt-13b), the decode
# benchmark; SCALING=opt-6.7b,opt-13b adds TestSelectSpeed and
# TestDecodeScaling (decode vs context, attention and selection variants).
# Logs go to $OUT.
set -u
OUT=${OUT:-/tmp/cuda-out}
mkdir -p "$OUT"
T=${TESTBIN:-.devdata/cuda/cuda.test}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader
nvcc --version | tail -1
sh cuda/gen_ptx.sh "$OUT" || exit 1
nvcc -cubin -arch=sm_90 -O3 --resource-usage -o /tmp/dejavu.cubin cuda/kernels/dejavu.cu 2>&1 | grep -E 'Function properties|registers|spill' > "$OUT/resources.txt"
export DEJAVU_PTX="$OUT"
if [ -f .devdata/cuda/tb.part00 ] && [ -f .devdata/cuda/tb.part01 ]; then
	cat .devdata/cuda/tb.part00 .devdata/cuda/tb.part01 > /tmp/tb.gguf
	export DEJAVU_TESTBED=/tmp/tb.gguf DEJAVU_TESTBED_JSON=$PWD/testdata/testbed/testbed-llama-relu.json
fi
export DEJAVU_CUDA_BENCH=${BENCH:-}
export DEJAVU_CUDA_SCALING=${SCALING:-}
T=$PWD/$T
cd cuda
timeout ${TEST_TIMEOUT:-240} $T -test.v -test.run "${RUN:-.}" 2>&1 | tee "$OUT/test.log" | grep -vE '^=== RUN' | tail -${TAIL:-80}
