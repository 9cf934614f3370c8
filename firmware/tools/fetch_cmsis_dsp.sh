#!/bin/sh
# fetch_cmsis_dsp.sh - fetch the CMSIS-DSP subset the firmware needs.
#
# Source: PyPI's `cmsisdsp` 1.10.3 source archive (Apache-2.0), which carries
# the C library. Only the real-FFT path is extracted: arm_rfft_fast_f32,
# the size-specific arm_rfft_fast_init_512_f32 and what they call (complex
# FFT, radix-8 butterfly, bit reversal, common tables), plus the public
# headers. The archive is checked against a pinned SHA-256 before use.
#
# Usage: fetch_cmsis_dsp.sh OUTDIR
#   OUTDIR receives Include/, PrivateInclude/, Source/, LICENSE and a stamp.
# Environment:
#   PIP                  pip to download with (default: ../../.venv/bin/pip,
#                        else pip3). It needs numpy, setuptools and wheel
#                        installed because of --no-build-isolation.
#   CMSIS_DSP_ARCHIVE    path to an already downloaded cmsisdsp-1.10.3.tar.gz
#                        (offline builds); still hash-checked.
set -eu

VERSION=1.10.3
SHA256=307d32298faa7c58db912851027fce35f886fec7eb1a27c4b309ce1a97f47519
NAME=cmsisdsp-$VERSION

# Files taken from the archive (paths relative to $NAME/).
SOURCES="
Source/TransformFunctions/arm_rfft_fast_f32.c
Source/TransformFunctions/arm_rfft_fast_init_f32.c
Source/TransformFunctions/arm_cfft_f32.c
Source/TransformFunctions/arm_cfft_init_f32.c
Source/TransformFunctions/arm_cfft_radix8_f32.c
Source/TransformFunctions/arm_bitreversal2.c
Source/CommonTables/arm_common_tables.c
Source/CommonTables/arm_const_structs.c
"

die() { echo "fetch_cmsis_dsp.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
OUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)

if [ -f "$OUT/.stamp-$VERSION" ]; then
    exit 0
fi

mkdir -p "$OUT"
ARCHIVE=$OUT/$NAME.tar.gz

if [ -n "${CMSIS_DSP_ARCHIVE:-}" ]; then
    cp "$CMSIS_DSP_ARCHIVE" "$ARCHIVE"
elif [ ! -f "$ARCHIVE" ]; then
    PROJECT_PIP=$HERE/../../.venv/bin/pip
    if [ -z "${PIP:-}" ]; then
        if [ -x "$PROJECT_PIP" ]; then
            PIP=$PROJECT_PIP
        else
            PIP=pip3
        fi
    fi
    command -v "$PIP" >/dev/null 2>&1 || die "pip not found (set PIP=... or CMSIS_DSP_ARCHIVE=...)"
    # pip prepares the sdist's metadata with --no-build-isolation: its
    # setup.py needs numpy, setuptools and wheel in pip's own Python.
    PY=$(dirname "$(command -v "$PIP")")/python
    [ -x "$PY" ] || PY=python3
    if ! "$PY" -c "import numpy, setuptools, wheel" >/dev/null 2>&1; then
        if [ "$PIP" = "$PROJECT_PIP" ]; then
            # the project's own venv: add the two small build tools
            echo "installing setuptools and wheel into the project venv" >&2
            "$PIP" install --quiet setuptools wheel || die "could not install setuptools and wheel"
        fi
        "$PY" -c "import numpy, setuptools, wheel" >/dev/null 2>&1 \
            || die "$PY needs numpy, setuptools and wheel: $PIP install numpy setuptools wheel (or set CMSIS_DSP_ARCHIVE=...)"
    fi
    echo "fetching $NAME from PyPI with $PIP" >&2
    DL=$OUT/download
    rm -rf "$DL"
    mkdir -p "$DL"
    "$PIP" download "cmsisdsp==$VERSION" --no-deps --no-binary :all: \
        --no-build-isolation --quiet -d "$DL" \
        || die "pip download failed (needs network, and numpy, setuptools, wheel installed in that Python)"
    mv "$DL/$NAME.tar.gz" "$ARCHIVE" || die "pip did not produce $NAME.tar.gz"
    rm -rf "$DL"
fi

GOT=$(sha256sum "$ARCHIVE" | cut -d' ' -f1)
if [ "$GOT" != "$SHA256" ]; then
    rm -f "$ARCHIVE"
    die "SHA-256 mismatch for $NAME.tar.gz: got $GOT, expected $SHA256"
fi

TMP=$OUT/extract
rm -rf "$TMP" "$OUT/Include" "$OUT/PrivateInclude" "$OUT/Source"
mkdir -p "$TMP"
# shellcheck disable=SC2086
tar -xzf "$ARCHIVE" -C "$TMP" \
    "$NAME/LICENSE" "$NAME/Include" \
    "$NAME/PrivateInclude/arm_compiler_specific.h" \
    $(for f in $SOURCES; do printf '%s/%s ' "$NAME" "$f"; done)
mv "$TMP/$NAME/Include" "$TMP/$NAME/PrivateInclude" "$TMP/$NAME/Source" \
   "$TMP/$NAME/LICENSE" "$OUT/"
rm -rf "$TMP"
echo "$SHA256  $NAME.tar.gz" > "$OUT/.stamp-$VERSION"
echo "CMSIS-DSP $VERSION subset ready in $OUT" >&2
