#!/usr/bin/env bash
# The README's two commands in a bare Debian bookworm root that has only python3 and git:
# debootstrap a minimal root, clone this repository into it, run `./sweetspot.sh demo` and
# `./sweetspot.sh test` there (they install everything else themselves).
#
#   sudo [MODE=demo|test|both] .ci/fresh-debian.sh [ROOTDIR] [-- pytest args for the test command]
#
# Needs root and debootstrap (apt-get install debootstrap). ../shared is bind-mounted read-only
# beside the clone when it exists, as in CI. Nothing is left mounted on exit.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="${1:-/tmp/sweetspot-fresh-root}"
shift || true
[ "${1:-}" = "--" ] && shift
[ "$(id -u)" -eq 0 ] || { echo "fresh-debian.sh: run as root" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "fresh-debian.sh: apt-get install debootstrap" >&2; exit 2; }

if [ ! -x "$root/usr/bin/python3" ]; then
    debootstrap --variant=minbase --include=python3,git,ca-certificates bookworm "$root" \
        http://deb.debian.org/debian
fi
# this machine's CA bundle (a TLS-inspecting proxy may sign the registries' certificates)
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
cleanup() {
    for m in work/shared dev/pts dev proc sys; do
        mountpoint -q "$root/$m" && umount -l "$root/$m" || true
    done
}
trap cleanup EXIT
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$root/etc/pip.conf"
[ -d /etc/xdg/pip ] && mkdir -p "$root/etc/xdg" && cp -a /etc/xdg/pip "$root/etc/xdg/"
rm -rf "$root/work/main"
mkdir -p "$root/work/shared"
git clone -q "$here" "$root/work/main"
if [ -d "$here/../shared" ]; then
    mount --bind "$here/../shared" "$root/work/shared"
    mount -o remount,bind,ro "$root/work/shared"
fi
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CI="${CI:-true}" MODE="${MODE:-both}" bash -c '
        cd /work/main || exit 2
        if [ "$MODE" != test ]; then ./sweetspot.sh demo || exit $?; fi
        if [ "$MODE" != demo ]; then ./sweetspot.sh test "$@" || exit $?; fi' _ "$@"
