#!/usr/bin/env bash
# Runs `npm run bench` (or `alexc bench`) on a Linux machine with an NVIDIA GPU through Dawn's Vulkan
# backend. Needs only Node (≥ 18 to start; npm ci installs the pinned Node 24 that runs alexc) and the
# Vulkan loader (libvulkan.so.1) with the NVIDIA driver's Vulkan ICD; no X server, no CUDA, no Mesa.
# Dawn itself ships inside the `webgpu` npm package as a prebuilt .node binary.
#
#   bash bench/gpu-machine.sh                     # the whole comparison (bench/run.ts)
#   bash bench/gpu-machine.sh --only alexnet-67   # some rows (any bench/run.ts options)
#   BENCH=alexc bash bench/gpu-machine.sh models/alexnet.net --batch 8 --mode train   # alexc bench
#
# In a container the driver's Vulkan parts are mounted only with the graphics capability:
#   docker run --gpus all -e NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics …
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1mgpu-machine:\033[0m %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

command -v node >/dev/null || die "no node on PATH: install Node.js (any version ≥ 18 starts this; npm ci fetches Node 24)"

# 1. The Vulkan loader and an NVIDIA ICD (the JSON manifest that points the loader at the driver).
ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' ||
  die "no libvulkan.so.1: install the Vulkan loader (Debian/Ubuntu: apt-get install libvulkan1)"
icd=""
for f in /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json; do
  [ -e "$f" ] && icd=$f && break
done
if [ -z "$icd" ]; then
  say "warning: no nvidia_icd.json found; the NVIDIA driver's Vulkan part may be missing"
  say "  (Ubuntu: the libnvidia-gl-<version> package; containers: NVIDIA_DRIVER_CAPABILITIES=…,graphics)"
  say "  continuing: Dawn will take whatever Vulkan adapter there is (alexc devices lists them)"
elif [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ]; then
  # Only the NVIDIA driver: every peer (each its own process) then opens the same adapter, never lavapipe.
  export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
  say "Vulkan ICD: $icd"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu-machine: GPU: /' >&2 || true

# 2. npm packages from the lock file (the pinned Node, Dawn, TF.js, onnxruntime), once.
if [ ! -x node_modules/.bin/node ] || [ ! -d node_modules/webgpu ]; then
  say "installing npm packages (npm ci; onnxruntime-node's CUDA download skipped)"
  npm_config_onnxruntime_node_install=skip npm ci --no-audit --no-fund
fi
NODE=node_modules/.bin/node

# 3. What Dawn sees, then the benchmark.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/alexc-xdg-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
"$NODE" compiler/cli.ts devices 2>&1 | grep -v '^Warning: maxDynamic' >&2 || die "Dawn found no adapter (see above)"
if [ "${BENCH:-}" = alexc ]; then
  exec "$NODE" compiler/cli.ts bench "$@"
fi
exec "$NODE" bench/run.ts "$@"
