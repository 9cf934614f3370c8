#!/bin/sh
# install-deps.sh - install the Debian/Ubuntu packages the firmware needs,
# only when something is missing:
#   gcc-arm-none-eabi, libnewlib-arm-none-eabi  (Cortex-M cross compiler, libc)
#   qemu-system-arm                             (emulated boards)
#   clang, cppcheck                             (second compiler, static checks)
#   libclang-rt-14-dev                          (libFuzzer + sanitizer runtimes for
#                                                clang 14: make fuzz, make SAN=1)
#   llvm                                        (llvm-symbolizer, llvm-cov: fuzzer
#                                                reports, make fuzz-cov)
#   flite                                       (synthetic voices for train --synth
#                                                and its tests; ~15 MB)
#   libportaudio2                               (PortAudio, for host.listen --mic;
#                                                the Python side is sounddevice)
# About 1 GB installed. Runs apt-get through sudo when not root.
# Flashing a real board additionally needs openocd or stlink-tools.
set -eu

missing=""
for tool in arm-none-eabi-gcc qemu-system-arm clang cppcheck llvm-symbolizer llvm-cov llvm-profdata flite; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
# libFuzzer comes with libclang-rt-<clang major>-dev; clang prints the bare
# file name when its runtime library is missing.
if command -v clang >/dev/null 2>&1 &&
   [ "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a)" = "libclang_rt.fuzzer-x86_64.a" ]; then
    missing="$missing libfuzzer"
fi
# PortAudio is a library, not a command: ask the dynamic linker's cache.
if ! { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep -q 'libportaudio\.so\.2'; then
    missing="$missing libportaudio2"
fi
# newlib-nano comes with libnewlib-arm-none-eabi; check for its spec file.
if command -v arm-none-eabi-gcc >/dev/null 2>&1 &&
   [ "$(arm-none-eabi-gcc -print-file-name=nano.specs)" = "nano.specs" ]; then
    missing="$missing newlib-nano"
fi

if [ -z "$missing" ]; then
    echo "firmware dependencies present: arm-none-eabi-gcc qemu-system-arm clang cppcheck libfuzzer llvm flite libportaudio2"
    exit 0
fi
echo "missing:$missing" >&2

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "not root and no sudo: as root run" >&2
    echo "  apt-get update && apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang cppcheck llvm flite libportaudio2 libclang-rt-14-dev" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get: install an arm-none-eabi GCC with newlib, qemu-system-arm, clang (with its libFuzzer runtime), cppcheck and PortAudio (portaudio) with your package manager" >&2
    exit 1
fi

$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
    gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang cppcheck llvm flite libportaudio2
# libFuzzer for the installed clang: libclang-rt-<major>-dev (Debian 12: clang 14).
CLANG_MAJOR=$(clang -dumpversion | cut -d. -f1)
if [ "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a)" = "libclang_rt.fuzzer-x86_64.a" ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "libclang-rt-$CLANG_MAJOR-dev"
fi
