#!/usr/bin/env bash
# Side-by-side speed of dejavu and llama.cpp on the same GGUF file.
#
#   LLAMA_CPP_DIR=/path/to/llama.cpp bench/llamacpp.sh
#
# Builds llama.cpp's llama-bench (CPU only, Release, -DGGML_NATIVE=ON) from a
# source tree you point it at (never vendored here) into
# $LLAMA_CPP_DIR/build-dejavu, writes the model as a GGUF with
# `dejavu convert`, then runs `llama-bench` and `dejavu bench` on that one
# file with the same thread count, prompt and generation lengths, alternating
# (llama, dejavu, llama, dejavu, ...), and prints prompt and decode tokens/s
# of both and the dejavu/llama.cpp ratios (median over the rounds).
#
# Environment (all optional except LLAMA_CPP_DIR):
#   LLAMA_CPP_DIR  llama.cpp source tree (required)
#   MODEL          what `dejavu convert` reads: a Hugging Face directory or
#                  llama2.c .bin, or "--synthetic NAME"
#                  (default: "--synthetic llama-3.2-1b")
#   TYPE           weight type `dejavu convert` writes: f16 (default), bf16,
#                  f32, q8_0 or q4_0 (quantized as llama.cpp's reference
#                  quantizers do)
#   QUANT          a llama-quantize type (Q8_0, Q4_0, Q4_K, ...): quantize
#                  the converted file with llama.cpp's own llama-quantize
#                  --pure (every matrix that type, as in a uniform file;
#                  needs TYPE f16, f32 or bf16); builds llama-quantize too
#   DEJAVU_ARGS    extra arguments for `dejavu bench` (e.g. sparse decoding:
#                  "--predictors DIR" or "--mlp-density 0.3 --head-density 1")
#   THREADS        thread counts to measure, space separated (default: nproc)
#   PROMPT         prompt tokens (default 128)
#   GEN            generated (decode) tokens (default 64)
#   ROUNDS         alternating rounds per thread count (default 3)
#   REPS           llama-bench repetitions per round, its -r (default 3)
#   BUILD_DIR      llama.cpp build directory (default $LLAMA_CPP_DIR/build-dejavu)
#   WORK           scratch directory for the GGUF and the JSON results
#                  (default: a new temporary directory, removed at the end
#                  unless KEEP=1)
#   GGUF           use this existing GGUF instead of converting MODEL
#   LLAMA_BENCH_ARGS  extra arguments for llama-bench
#
# Needs: go, cmake, a C/C++ compiler, python3. Takes a few minutes to build
# llama-bench the first time (about 5-10 on 2 cores).
#
# How the two measure (both on random token ids):
#   llama-bench  pp: one PROMPT-token batch; tg: GEN single-token steps from an
#                empty context; mean tokens/s over REPS runs after a warm-up.
#   dejavu bench one PROMPT-token prompt pass (not repeated), then GEN decode
#                steps after it; decode tokens/s = 1000 / median ms per step.
set -euo pipefail

die() { echo "llamacpp.sh: $*" >&2; exit 1; }

: "${LLAMA_CPP_DIR:?set LLAMA_CPP_DIR to a llama.cpp source tree}"
LLAMA_CPP_DIR=$(cd "$LLAMA_CPP_DIR" && pwd)
[ -f "$LLAMA_CPP_DIR/CMakeLists.txt" ] || die "$LLAMA_CPP_DIR has no CMakeLists.txt"
MODEL=${MODEL:---synthetic llama-3.2-1b}
TYPE=${TYPE:-f16}
THREADS=${THREADS:-$(nproc)}
PROMPT=${PROMPT:-128}
GEN=${GEN:-64}
ROUNDS=${ROUNDS:-3}
REPS=${REPS:-3}
BUILD_DIR=${BUILD_DIR:-$LLAMA_CPP_DIR/build-dejavu}
LLAMA_BENCH_ARGS=${LLAMA_BENCH_ARGS:-}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case "$BUILD_DIR/" in "$REPO"/*) die "BUILD_DIR $BUILD_DIR is inside the repository; put it elsewhere" ;; esac
command -v cmake >/dev/null || die "cmake is missing (Debian: apt-get install -y cmake)"
command -v python3 >/dev/null || die "python3 is missing"

if [ -z "${WORK:-}" ]; then
	WORK=$(mktemp -d -t dejavu-llamacpp.XXXXXX)
	[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"

# 1. llama-bench (and llama-quantize), CPU only, at low priority.
LLAMA_BENCH=$BUILD_DIR/bin/llama-bench
LLAMA_QUANTIZE=$BUILD_DIR/bin/llama-quantize
targets=(--target llama-bench)
[ -z "${QUANT:-}" ] || targets+=(--target llama-quantize)
echo "== building ${targets[*]} in $BUILD_DIR" >&2
cmake -S "$LLAMA_CPP_DIR" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
	-DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF \
	-DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF \
	-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
	-DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_APP=OFF >"$WORK/cmake-configure.log" 2>&1 ||
	{ tail -30 "$WORK/cmake-configure.log" >&2; die "cmake configure failed"; }
nice -n 10 cmake --build "$BUILD_DIR" "${targets[@]}" -j"$(nproc)" >"$WORK/cmake-build.log" 2>&1 ||
	{ tail -30 "$WORK/cmake-build.log" >&2; die "llama-bench build failed"; }
[ -x "$LLAMA_BENCH" ] || die "no $LLAMA_BENCH after the build"

# 2. dejavu, and the GGUF both read.
echo "== building dejavu" >&2
(cd "$REPO" && go build -o "$WORK/dejavu" ./cmd/dejavu)
DEJAVU=$WORK/dejavu
if [ -z "${GGUF:-}" ]; then
	GGUF=$WORK/model.gguf
	case "$MODEL" in
	--synthetic*) read -r -a src <<<"$MODEL" ;;
	*) src=(--model "$MODEL") ;;
	esac
	echo "== dejavu convert ${src[*]} --type $TYPE --out $GGUF" >&2
	"$DEJAVU" convert "${src[@]}" --type "$TYPE" --out "$GGUF"
	if [ -n "${QUANT:-}" ]; then
		echo "== llama-quantize --pure $GGUF $QUANT" >&2
		"$LLAMA_QUANTIZE" --pure "$GGUF" "$WORK/model-$QUANT.gguf" "$QUANT" >"$WORK/quantize.log" 2>&1 ||
			{ tail -20 "$WORK/quantize.log" >&2; die "llama-quantize failed"; }
		rm -f "$GGUF"
		GGUF=$WORK/model-$QUANT.gguf
	fi
fi
[ -f "$GGUF" ] || die "no GGUF at $GGUF"

# 3. Alternate the two, per thread count.
for t in $THREADS; do
	for r in $(seq 1 "$ROUNDS"); do
		echo "== threads $t, round $r/$ROUNDS: llama-bench" >&2
		# shellcheck disable=SC2086
		"$LLAMA_BENCH" -m "$GGUF" -t "$t" -p "$PROMPT" -n "$GEN" -r "$REPS" -o json $LLAMA_BENCH_ARGS \
			>"$WORK/llama-t$t-r$r.json" 2>"$WORK/llama-t$t-r$r.log" ||
			{ tail -20 "$WORK/llama-t$t-r$r.log" >&2; die "llama-bench failed"; }
		echo "== threads $t, round $r/$ROUNDS: dejavu bench" >&2
		# shellcheck disable=SC2086
		"$DEJAVU" bench --model "$GGUF" --threads "$t" --prompt-len "$PROMPT" --gen "$GEN" --json ${DEJAVU_ARGS:-} \
			>"$WORK/dejavu-t$t-r$r.json" 2>"$WORK/dejavu-t$t-r$r.log" ||
			{ tail -20 "$WORK/dejavu-t$t-r$r.log" >&2; die "dejavu bench failed"; }
	done
done

# 4. The table.
python3 - "$WORK" "$GGUF" "$PROMPT" "$GEN" $THREADS <<'EOF'
import glob, json, os, re, statistics, sys
work, gguf, prompt, gen, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
def rounds(prefix, t):
    files = sorted(glob.glob(os.path.join(work, f"{prefix}-t{t}-r*.json")),
                   key=lambda f: int(re.search(r"-r(\d+)\.json$", f).group(1)))
    return [json.load(open(f)) for f in files]
print(f"model {gguf} ({os.path.getsize(gguf)/1e6:.0f} MB), prompt {prompt}, gen {gen}")
print()
print("| threads | rounds | llama.cpp pp t/s | dejavu prompt t/s | ratio | llama.cpp tg t/s | dejavu decode t/s | ratio |")
print("|---|---|---|---|---|---|---|---|")
notes = []
for t in threads:
    ll, dj = rounds("llama", t), rounds("dejavu", t)
    lpp = [x["avg_ts"] for run in ll for x in run if x["n_prompt"] > 0 and x["n_gen"] == 0]
    ltg = [x["avg_ts"] for run in ll for x in run if x["n_gen"] > 0 and x["n_prompt"] == 0]
    dpp = [x["prompt_tokens_per_s"] for x in dj]
    dtg = [x["decode_tokens_per_s"] for x in dj]
    med = statistics.median
    fmt = lambda v: " / ".join(f"{x:.2f}" for x in v)
    print(f"| {t} | {len(dj)} | {med(lpp):.2f} | {med(dpp):.2f} | **{med(dpp)/med(lpp):.2f}** "
          f"| {med(ltg):.2f} | {med(dtg):.2f} | **{med(dtg)/med(ltg):.2f}** |")
    notes.append(f"threads {t}, per round: llama.cpp pp {fmt(lpp)}; dejavu prompt {fmt(dpp)}; "
                 f"llama.cpp tg {fmt(ltg)}; dejavu decode {fmt(dtg)}; "
                 f"decode ratio per round {fmt([d/l for d, l in zip(dtg, ltg)])}")
print()
print("\n".join(notes))
print("(ratio = dejavu / llama.cpp, of the medians over the rounds)")
EOF
