#!/usr/bin/env bash
# Set-up and entry point: installs what is missing, then runs the demo or the test suite.
#   ./sweetspot.sh demo   generate, build and run the demo on the default board's emulated twin
#   ./sweetspot.sh test   run the whole test suite (what CI runs)
# Idempotent: a second run installs nothing and starts at once.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(gcc libc6-dev make gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-dev qemu-system-arm)
VENV=.venv

log() { printf 'sweetspot.sh: %s\n' "$*" >&2; }

missing_apt=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_apt+=("$p")
done
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
    missing_apt+=(python3-venv)
fi
if [ ${#missing_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo); else
        log "missing Debian packages: ${missing_apt[*]}; install them as root:"
        log "  apt-get install -y --no-install-recommends ${missing_apt[*]}"
        exit 2
    fi
    log "installing ${missing_apt[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null
fi

stamp="$VENV/.sweetspot-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "creating the project venv in $VENV and installing the package"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev,tflm]'
    echo "$want" > "$stamp"
fi
export PATH="$PWD/$VENV/bin:$PATH"

case "${1:-}" in
    demo)
        shift
        exec sweetspot demo "$@"
        ;;
    test)
        shift
        # The TFLM backend's tests use ../shared/tflite-micro unless a checkout is named.
        if [ -z "${SWEETSPOT_TFLM_ROOT:-}" ] && [ -d ../shared/tflite-micro ]; then
            SWEETSPOT_TFLM_ROOT="$(cd ../shared/tflite-micro && pwd)"
            export SWEETSPOT_TFLM_ROOT
        fi
        set +e
        python -m pytest "$@"
        rc=$?
        # pytest exits 5 when no test was collected: that is a failure here, not a pass.
        exit $rc
        ;;
    *)
        echo "usage: $0 demo|test [args...]" >&2
        exit 2
        ;;
esac
