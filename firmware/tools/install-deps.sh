#!/bin/sh
# install-deps.sh - install the Debian/Ubuntu packages the firmware needs,
# only when something is missing:
#   gcc-arm-none-eabi, libnewlib-arm-none-eabi  (Cortex-M cross compiler, libc)
#   qemu-system-arm                             (emulated boards)
#   clang, cppcheck                             (second compiler, static checks)
# About 1 GB installed. Runs apt-get through sudo when not root.
# Flashing a real board additionally needs openocd or stlink-tools.
set -eu

missing=""
for tool in arm-none-eabi-gcc qemu-system-arm clang cppcheck; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
# newlib-nano comes with libnewlib-arm-none-eabi; check for its spec file.
if command -v arm-none-eabi-gcc >/dev/null 2>&1 &&
   [ "$(arm-none-eabi-gcc -print-file-name=nano.specs)" = "nano.specs" ]; then
    missing="$missing newlib-nano"
fi

if [ -z "$missing" ]; then
    echo "firmware dependencies present: arm-none-eabi-gcc qemu-system-arm clang cppcheck"
    exit 0
fi
echo "missing:$missing" >&2

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "not root and no sudo: as root run" >&2
    echo "  apt-get update && apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang cppcheck" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get: install an arm-none-eabi GCC with newlib, qemu-system-arm, clang and cppcheck with your package manager" >&2
    exit 1
fi

$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
    gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang cppcheck
