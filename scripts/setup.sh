#!/usr/bin/env bash
# alexc setup: installs what alexc needs to compile and to run WGSL on a real WebGPU adapter.
# Safe to run twice: every step checks before it changes anything.
#
#   1. npm dependencies (exact versions from package-lock.json), including the pinned Node
#      (the `node` devDependency) that every npm script runs under;
#   2. a Vulkan driver for Dawn where the machine has none: Mesa's lavapipe (runs WGSL on the CPU).
#      Debian 12 ships Mesa 22, which Dawn rejects, so there we take Mesa 25 from bookworm-backports.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi

# --- 1. Vulkan driver (lavapipe) -----------------------------------------------------------------
have_vulkan_icd() {
  # A Vulkan ICD manifest is what Dawn's Vulkan backend loads; lavapipe installs lvp_icd.*.json.
  local manifest
  for manifest in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json; do
    [ -e "$manifest" ] && ldconfig -p | grep libvulkan.so.1 >/dev/null && return 0
  done
  return 1
}
mesa_version() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | sed -E 's/^[0-9]+://; s/^([0-9]+).*/\1/'; }

if [ "${ALEXC_SKIP_APT:-}" = 1 ]; then
  say "ALEXC_SKIP_APT=1: not touching system packages"
elif ! command -v apt-get >/dev/null 2>&1; then
  if have_vulkan_icd; then say "Vulkan driver present (no apt here; leaving the system alone)"
  else say "warning: no apt-get and no Vulkan ICD found; install Mesa's lavapipe (mesa-vulkan-drivers) >= 24 yourself"; fi
else
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  current=$(mesa_version || true)
  if have_vulkan_icd && [ -n "$current" ] && [ "$current" -ge 24 ]; then
    say "Mesa Vulkan drivers $current already installed (lavapipe), nothing to do"
  elif [ "$codename" = bookworm ]; then
    say "Debian 12 detected: Dawn needs Mesa >= 24, Debian 12 has 22; adding bookworm-backports for Mesa 25"
    if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      # Same mirror as the machine's existing Debian source, component main.
      # Read the active (uncommented) deb822 "URIs:" or one-line "deb URL" entries, not comments.
      mirror=$( { grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources || true; } \
        | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ')
      mirror=${mirror:-http://deb.debian.org/debian}
      say "writing /etc/apt/sources.list.d/bookworm-backports.sources (mirror $mirror)"
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" \
        | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
    fi
    $SUDO apt-get update -qq
    say "installing mesa-vulkan-drivers and libvulkan1 from bookworm-backports"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
  else
    say "installing mesa-vulkan-drivers and libvulkan1 (lavapipe)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
fi

# --- 2. Fashion-MNIST, the training runner's default data ------------------------------------------
# Debian ships it as `dataset-fashion-mnist` (IDX files under /usr/share/datasets/fashion-mnist/);
# nothing is downloaded at training time. Elsewhere, pass the runner `--data DIR`.
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  say "Fashion-MNIST already installed (/usr/share/datasets/fashion-mnist)"
elif [ "${ALEXC_SKIP_APT:-}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
  apt-cache show dataset-fashion-mnist >/dev/null 2>&1 || $SUDO apt-get update -qq
  if apt-cache show dataset-fashion-mnist >/dev/null 2>&1; then
    say "installing Fashion-MNIST (Debian package dataset-fashion-mnist), the training runner's default data"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    say "note: no dataset-fashion-mnist package in apt's lists; give the training runner --data DIR"
  fi
else
  say "note: Fashion-MNIST not installed (no apt package here); give the training runner --data DIR"
fi

# --- 3. npm dependencies -------------------------------------------------------------------------
if [ -f node_modules/.package-lock.json ] && cmp -s package-lock.json node_modules/.alexc-lock 2>/dev/null; then
  say "node_modules matches package-lock.json, nothing to install"
else
  say "installing npm dependencies from package-lock.json (npm ci)"
  # onnxruntime-node's install script would fetch CUDA files; package.json's allowScripts already
  # denies it on npm >= 11, and this setting makes older npm skip it too (its CPU binaries ship in
  # the package). Given here, not in .npmrc, so that everyday npm commands do not warn about it.
  npm_config_onnxruntime_node_install=skip npm ci --no-audit --no-fund
  cp package-lock.json node_modules/.alexc-lock
fi

say "done: Node $(npx --no-install node --version) (pinned), run 'npm test' or 'npm run alexc -- --help'"
