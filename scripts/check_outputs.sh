#!/usr/bin/env bash
# Do the notebooks' stored outputs hold on a learner's machine? Runs every notebook
# under nbval (strict: each stored output must come out identical) in six settings:
# one, two and four threads, with a core kept busy by another process, with the CPU
# kernels of an AVX2 laptop, and with the plain kernels of a CPU with neither AVX2 nor
# AVX-512 (the machine's own may be AVX-512): for torch through ATEN_CPU_CAPABILITY,
# MKL_ENABLE_INSTRUCTIONS and ONEDNN_MAX_CPU_ISA; for numpy, which runs the built-in
# models, through OPENBLAS_CORETYPE (the BLAS kernels: Haswell is AVX2, Prescott plain
# SSE3) and NPY_DISABLE_CPU_FEATURES (numpy's own SIMD loops). Prints one line per setting and exits
# 1 if any fails. About 2 to 3 minutes per setting on 2 cores. A seventh, "browser", runs
# the browser tests as the test command does (the notebooks in JupyterLab in Chromium, the
# classroom app, the slides and the book, notebook 3 and E1 in JupyterLite), and notebooks
# 6 and 7 in JupyterLab too, which the test command leaves to nbval.
#
#   bash scripts/check_outputs.sh            # all seven
#   bash scripts/check_outputs.sh plain      # one of: 1 2 4 busy avx2 plain browser
set -uo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg PYTHONHASHSEED=0

check() {  # check NAME [VARIABLE=VALUE ...]
    local name=$1; shift
    if [ "$name" = browser ]; then
        FEDASYNC_BROWSER_ALL=1 .venv/bin/python -m pytest tests/browser -p no:cacheprovider -q -n 2 \
            --dist loadscope --timeout=600 > "test-artifacts/check_outputs.log" 2>&1
        return
    fi
    env "$@" .venv/bin/python -m pytest notebooks --nbval --nbval-sanitize-with notebooks/sanitize.cfg \
        -p no:cacheprovider -q -n 2 --dist loadscope --timeout=600 > "test-artifacts/check_outputs.log" 2>&1
}

declare -A SETTINGS=(
    [1]="OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1"
    [2]="OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2"
    [4]="OMP_NUM_THREADS=4 MKL_NUM_THREADS=4 OPENBLAS_NUM_THREADS=4"
    [busy]="BUSY=1"
    [avx2]="ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell NPY_DISABLE_CPU_FEATURES=X86_V4,AVX512_ICL,AVX512_SPR"
    [plain]="ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 ONEDNN_MAX_CPU_ISA=SSE41 OPENBLAS_CORETYPE=Prescott NPY_DISABLE_CPU_FEATURES=X86_V3,X86_V4,AVX512_ICL,AVX512_SPR"
    [browser]=""
)
chosen=("${@:-1 2 4 busy avx2 plain browser}")
chosen=(${chosen[*]})
for name in "${chosen[@]}"; do
    if [ -z "${SETTINGS[$name]+set}" ]; then
        echo "check_outputs.sh: setting=$name is invalid: expected one of 1 2 4 busy avx2 plain browser" >&2
        exit 2
    fi
done
bash scripts/setup.sh
mkdir -p test-artifacts
failed=0
for name in "${chosen[@]}"; do
    spinner=""
    if [ "$name" = busy ]; then  # another process keeps one core busy all along
        .venv/bin/python -c "while True: pass" & spinner=$!
    fi
    start=$(date +%s)
    # shellcheck disable=SC2086  # the settings are words
    if check "$name" ${SETTINGS[$name]}; then
        result="all stored outputs identical"
        [ "$name" = browser ] && result="every browser test passed"
    else
        result="FAILED: $(grep -E '^FAILED' test-artifacts/check_outputs.log | head -5 | tr '\n' ' ')"
        failed=1
        cp test-artifacts/check_outputs.log "test-artifacts/check_outputs_$name.log"
    fi
    [ -n "$spinner" ] && kill "$spinner"
    echo "[check_outputs] $name${SETTINGS[$name]:+ (${SETTINGS[$name]})}: $result ($(( $(date +%s) - start )) s)"
done
exit $failed
