#!/usr/bin/env bash
# The test command: installs what is missing, builds with AddressSanitizer + UBSan and
# -Werror in build-test/, and runs the whole suite (unit, integration, interop, smoke bench).
# Usage: scripts/test.sh [meson test args...]   e.g. scripts/test.sh --suite unit
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

if [ ! -f build-test/build.ninja ]; then
  meson setup build-test -Db_sanitize=address,undefined -Dbuildtype=debugoptimized \
    -Dwerror=true -Dtests=enabled
fi
ninja -C build-test
meson test -C build-test --print-errorlogs --num-processes 2 "$@"
