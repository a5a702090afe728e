#!/usr/bin/env bash
# The CUDA check of issue 4, in two halves (the GPU machine has no Rust toolchain and no
# network, so the binaries travel):
#   scripts/gpu-check.sh build   here: builds the backend test binary and the throughput
#                                example, stripped, into gpu-bin/ (git-ignored; carry it)
#   scripts/gpu-check.sh run     on the GPU machine: the CUDA tests with REGIME_REQUIRE_GPU=1
#                                (a skip is a failure), then features+filter for 5,000 symbols
#                                x 100,000 bars on CUDA and on the CPU backend of the same
#                                machine; everything is written under $OUT (or gpu-results/).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
build)
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/regime-gpu-target}"
  cargo build --release -p regime-kernels --example gpu_throughput
  test_bin=$(cargo test --release -p regime-kernels --test backends --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "backends":
        print(m["executable"])' | tail -1)
  mkdir -p gpu-bin
  cp "$test_bin" gpu-bin/backends
  cp "$CARGO_TARGET_DIR/release/examples/gpu_throughput" gpu-bin/gpu_throughput
  strip gpu-bin/backends gpu-bin/gpu_throughput
  ls -la gpu-bin
  ;;
run)
  out="${OUT:-gpu-results}"
  mkdir -p "$out"
  nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || true
  nv=$(python3 -c 'import glob,os,nvidia
for b in nvidia.__path__:
    for f in glob.glob(os.path.join(b,"cu13","lib","libnvrtc.so*")): print(os.path.dirname(f)); raise SystemExit' 2>/dev/null || true)
  [ -n "$nv" ] && export LD_LIBRARY_PATH="$nv${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "nvrtc: ${nv:-not found}" | tee "$out/env.txt"
  REGIME_REQUIRE_GPU=1 REGIME_REQUIRE_NVRTC=1 gpu-bin/backends --test-threads 1 --nocapture cuda 2>&1 | tee "$out/cuda-tests.txt"
  REGIME_REQUIRE_NVRTC=1 gpu-bin/backends --nocapture every_cuda_kernel 2>&1 | tee -a "$out/cuda-tests.txt"
  gpu-bin/gpu_throughput cuda 5000 100000 2>&1 | tee "$out/throughput.jsonl"
  gpu-bin/gpu_throughput cpu 5000 100000 2>&1 | tee -a "$out/throughput.jsonl"
  ;;
*)
  echo "usage: scripts/gpu-check.sh build|run" >&2
  exit 2
  ;;
esac
