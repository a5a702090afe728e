#!/usr/bin/env bash
# The README's test command: everything the tests need on a fresh machine, then the tests.
# Installs Debian's postgresql when it is missing (as root), starts a throwaway cluster on
# loopback for the PostgreSQL tests; installs Mesa's lavapipe for the wgpu tests and NVRTC
# (PyPI wheel) to compile the CUDA kernels, and promtool for the alert rules; runs `cargo test --workspace --release`, then
# installs the Python bindings (`pip install ./regime-py`) and runs their pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing postgresql (Debian package) for the store tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
fi
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  eval "$(scripts/test-postgres.sh start)"
  trap 'scripts/test-postgres.sh stop' EXIT
  echo "== PostgreSQL test server: $REGIME_TEST_PG"
else
  echo "== WARNING: no PostgreSQL server; the PostgreSQL tests will print SKIP" >&2
fi
# monitoring tests: promtool (Debian's prometheus package; no daemon is started) checks and
# unit-tests the alert rules.
if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing prometheus (for promtool) for the alert-rule tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "== WARNING: no promtool; the alert-rule tests will print SKIP" >&2
  fi
fi
# wgpu tests: Mesa's software Vulkan (lavapipe) runs the WGSL kernels with no GPU.
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing mesa-vulkan-drivers (lavapipe) for the wgpu tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  else
    echo "== WARNING: no lavapipe; the wgpu tests will print SKIP" >&2
  fi
fi
# Mesa wants a runtime dir; without one it prints a warning per device it opens.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  export XDG_RUNTIME_DIR="/tmp/regime-xdg-$(id -u)"
  mkdir -p -m 700 "$XDG_RUNTIME_DIR"
fi
# CUDA kernels: NVRTC from the PyPI wheel compiles every one of them with no GPU (the
# driver itself is only on GPU machines; there the CUDA tests run for real).
nvrtc_dir() {
  python3 - <<'PY' 2>/dev/null
import glob, os, nvidia
for base in nvidia.__path__:
    for lib in glob.glob(os.path.join(base, "cu13", "lib", "libnvrtc.so.13")):
        print(os.path.dirname(lib))
        raise SystemExit
PY
}
if [ -z "$(nvrtc_dir)" ] && command -v python3 >/dev/null; then
  echo "== installing nvidia-cuda-nvrtc 13.0 (PyPI) to compile the CUDA kernels"
  python3 -m pip install -q --disable-pip-version-check "nvidia-cuda-nvrtc==13.0.*" >/dev/null 2>&1 \
    || echo "== WARNING: could not install nvidia-cuda-nvrtc; the NVRTC test will print SKIP" >&2
fi
if [ -n "$(nvrtc_dir)" ]; then
  export LD_LIBRARY_PATH="$(nvrtc_dir)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
cargo test --workspace --release "$@"
# The Python bindings: built and installed with maturin (as `pip install ./regime-py` on a
# fresh machine; the Rust build reuses the target directory above), then the pytest suite.
echo "== pip install ./regime-py[test] and pytest"
python3 -m pip install -q --disable-pip-version-check "./regime-py[test]" 2>&1 | grep -v "Running pip as the 'root' user" || true
python3 -c "import regime" || { echo "pip install ./regime-py failed" >&2; exit 1; }
python3 -m pytest -q regime-py/tests
