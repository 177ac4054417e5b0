#!/bin/bash
# Drop-in for OpenNebula's im/<hv>.d/monitord-client_control.sh: starts one-agent instead of the
# Ruby monitord-client.rb. Install on the front-end as
#   /var/lib/one/remotes/im/kvm.d/monitord-client_control.sh (and lxc.d/), then `onehost sync -f`.
# Nodes need the one-agent package. Arguments and stdin are exactly what run_monitord_client
# passes: `start|stop <hv> <host_id> <host_name>` with the MONITOR_CONFIGURATION XML on stdin.
set -u
action=${1:-}; shift || true
hv=${1:-kvm}; host_id=${2:-}; host_name=${3:-}
pid_file=/var/tmp/one_db/.monitor_client.pid
agent=$(command -v one-agent || echo /usr/bin/one-agent)

stop_agent() {
    if [ -f "$pid_file" ]; then
        kill -TERM "$(cat "$pid_file")" 2>/dev/null || true
        rm -f "$pid_file"
    fi
    pkill -TERM -f -- "one-agent --opennebula $hv $host_id " 2>/dev/null || true
}

case "$action" in
    start)
        stop_agent
        # one-agent prints <MONITOR_MESSAGES> (the START_MONITOR reply), then detaches.
        exec "$agent" --opennebula "$hv" "$host_id" "$host_name" 2>"/tmp/one-monitord-$host_id.error"
        ;;
    stop)
        stop_agent
        ;;
    *)
        echo "usage: $0 start|stop <hv> <host_id> <host_name>" >&2
        exit 1
        ;;
esac
