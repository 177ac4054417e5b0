#!/bin/sh
# Install the system packages the onemon test tiers need (Debian 12 / Ubuntu, as root).
#
# Idempotent and fast when everything is present: packages are checked with dpkg-query first,
# and `apt-get update` runs only when something is missing. Never starts a daemon: during the
# install a policy-rc.d that denies service starts is put in place (and removed afterwards if
# this script created it), because without systemd as PID 1 the postinst scripts of
# postgresql and openssh-server would otherwise start them through /etc/init.d.
#
# Options:
#   --venv DIR   also build libvirt-python into that virtualenv if `import libvirt` fails
#                (default: the repository's .venv when it exists; --venv '' to skip)
#   --warm-cache also build the cached guest kernel/initramfs (/var/cache/onemon-test)
set -eu

PACKAGES="python3 python3-venv python3-dev gcc libvirt-dev pkg-config
libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu libvirt-daemon-driver-lxc
qemu-system-x86 lxc busybox-static cpio
prometheus nftables iptables socat iproute2
openssh-server openssh-client rsync postgresql
rpm rpmlint lintian systemd systemd-container"

repo=$(cd "$(dirname "$0")/.." && pwd)
venv="$repo/.venv"
warm=0
while [ $# -gt 0 ]; do
    case "$1" in
        --venv) venv="$2"; shift 2 ;;
        --warm-cache) warm=1; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "setup-system.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-system.sh: must run as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT="apt-get -o DPkg::Lock::Timeout=600 -y -q"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing="$missing $p"
done

if [ -n "$missing" ]; then
    echo "setup-system.sh: installing:$missing"
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# installed by onemon scripts/setup-system.sh: start no daemons\nexit 101\n' \
            > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    if ! $APT update || ! $APT install --no-install-recommends $missing; then
        [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
        echo "setup-system.sh: apt-get failed" >&2
        exit 1
    fi
    [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
else
    echo "setup-system.sh: all system packages present"
fi

# /dev/kvm: without udev it is root:root 0600, and libvirt then re-probes QEMU on every call.
if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
    chgrp kvm /dev/kvm && chmod 660 /dev/kvm
fi

if [ -n "$venv" ] && [ -x "$venv/bin/python" ]; then
    if ! "$venv/bin/python" -c 'import libvirt' 2>/dev/null; then
        echo "setup-system.sh: building libvirt-python into $venv"
        "$venv/bin/pip" install -q --no-cache-dir libvirt-python
    fi
fi

if [ "$warm" = 1 ]; then
    py="$venv/bin/python"
    [ -x "$py" ] || py=python3
    (cd "$repo" && "$py" -m tests.e2e.infra.guest_image)
fi
echo "setup-system.sh: done"
