#!/bin/sh
# KVM_CPU_FEATURES: the host CPU's features as libvirt names them, comma-separated.
#
# As OpenNebula's cpu_features.sh, from libvirt; the host CPU of `virsh capabilities` is
# expanded by `virsh cpu-baseline --features` (every feature, including those its model
# implies); when that fails, the features listed in the capabilities are used.
# Prints nothing when virsh or libvirt is unavailable. LIBVIRT_URI overrides qemu:///system.

LC_ALL=C
export LC_ALL
uri=${LIBVIRT_URI:-qemu:///system}

command -v virsh >/dev/null 2>&1 || exit 0
caps=$(virsh -r -c "$uri" capabilities 2>/dev/null) || exit 0
[ -n "$caps" ] || exit 0

# One tag per line ('>' ends a tag) whatever virsh's layout; attributes in libvirt's order.
features=$(printf '%s\n' "$caps" \
    | virsh -r -c "$uri" cpu-baseline --features /dev/stdin 2>/dev/null \
    | tr '>' '\n' \
    | sed -n "s/.*<feature policy=['\"]require['\"] name=['\"]\([^'\"]*\)['\"].*/\1/p")

if [ -z "$features" ]; then
    features=$(printf '%s\n' "$caps" | tr '>' '\n' | sed -n '/<cpu$/,/<\/cpu$/{
p
/<\/cpu$/q
}' | sed -n "s/.*<feature name=['\"]\([^'\"]*\)['\"].*/\1/p")
fi

list=$(printf '%s\n' "$features" | sed '/^$/d' | paste -s -d ',' - | tr -cd 'A-Za-z0-9_.,-')
printf 'KVM_CPU_FEATURES="%s"\n' "$list"
exit 0
