#!/usr/bin/env bash
# The main job on this machine, as root: one-collector (SQLite store), one-agent monitoring this
# host (its libvirt domains and LXC containers, if any), and a Prometheus server scraping the
# collector. Prints where to look; Ctrl-C stops everything cleanly.
#
# Environment: ONEMON_VAR (state directory, default ./var), ONEMON_PORT (4124),
# ONEMON_HTTP_PORT (9925), ONEMON_PROM_PORT (9090), ONEMON_RPC_PORT (2633, the XML-RPC API),
# ONEMON_RUN_SECONDS (stop after N seconds:
# for unattended checks).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
var=${ONEMON_VAR:-$repo/var}
port=${ONEMON_PORT:-4124}
http_port=${ONEMON_HTTP_PORT:-9925}
prom_port=${ONEMON_PROM_PORT:-9090}
rpc_port=${ONEMON_RPC_PORT:-2633}

bash scripts/setup-system.sh
bash scripts/venv.sh
py=$repo/.venv/bin/python

mkdir -p "$var"/{collector,agent,prometheus,front}
chmod 755 "$var"
# The collector needs no privilege: it runs as its own system user.
id onemon >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin onemon
key=$var/cluster.key
[ -f "$key" ] || "$py" -m onemon.collector.cli --generate-key "$key" >/dev/null
collector_key=$var/collector/cluster.key
install -m 600 -o onemon "$key" "$collector_key"
chown -R onemon "$var/collector"

cat > "$var/collector/one-collector.toml" <<EOF
[listen]
address = "::"
port = $port
[keys]
cluster_key_file = "$collector_key"
[store]
url = "sqlite:///$var/collector/onemon.db"
[http]
address = "::"
port = $http_port
admin_token_file = "$var/collector/admin.token"
[hosts]
[[hosts.register]]
id = 0
name = "$(hostname)"
EOF

cat > "$var/agent/one-agent.toml" <<EOF
host_id = 0
host_name = "$(hostname)"
state_dir = "$var/agent/state"
[periods]
monitor_host = 30
monitor_vm = 15
[send]
collectors = ["127.0.0.1:$port"]
key_file = "$key"
EOF
if ls /sys/fs/cgroup/*/lxc.payload.* >/dev/null 2>&1 || ls -d /sys/fs/cgroup/lxc.payload.* >/dev/null 2>&1; then
    lxc_agent=1
    sed -e 's/^host_id = 0/host_id = 1/' -e "s|state_dir = .*|state_dir = \"$var/agent/state-lxc\"|" \
        "$var/agent/one-agent.toml" > "$var/agent/one-agent-lxc.toml"
    printf 'hypervisor = "lxc"\n' | cat - "$var/agent/one-agent-lxc.toml" > "$var/agent/tmp" \
        && mv "$var/agent/tmp" "$var/agent/one-agent-lxc.toml"
    printf '[[hosts.register]]\nid = 1\nname = "%s-lxc"\n' "$(hostname)" >> "$var/collector/one-collector.toml"
else
    lxc_agent=0
fi

cat > "$var/front/one-front.toml" <<EOF
[listen]
address = "127.0.0.1"
port = $rpc_port
[store]
url = "sqlite:///$var/collector/onemon.db"
[collector]
endpoint = "http://127.0.0.1:$http_port"
admin_token_file = "$var/collector/admin.token"
[users]
url = "sqlite:///$var/front/front.db"
one_auth = "$var/front/one_auth"
service_user = "root"
EOF

cat > "$var/prometheus/prometheus.yml" <<EOF
global:
  scrape_interval: 15s
  evaluation_interval: 15s
scrape_configs:
  - job_name: onemon
    static_configs:
      - targets: ["127.0.0.1:$http_port"]
EOF
chown -R prometheus "$var/prometheus" 2>/dev/null || true

pids=()
started_libvirtd=""
cleanup() {
    trap - INT TERM EXIT
    echo
    echo "stopping…"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "$started_libvirtd" ]; then kill -TERM "$started_libvirtd" 2>/dev/null || true; fi
    echo "stopped. State and history are kept in $var"
}
trap cleanup INT TERM EXIT

# libvirt: monitor its domains if libvirtd is installed (started here when not running).
if [ -x /usr/sbin/libvirtd ] && ! virsh -c qemu:///system -q version >/dev/null 2>&1; then
    pgrep -x virtlogd >/dev/null || /usr/sbin/virtlogd -d
    /usr/sbin/libvirtd -d --pid-file "$var/libvirtd.pid"
    for _ in $(seq 50); do virsh -c qemu:///system -q version >/dev/null 2>&1 && break; sleep 0.2; done
    started_libvirtd=$(cat "$var/libvirtd.pid" 2>/dev/null || true)
fi

as_collector=(runuser -u onemon --)
if ! "${as_collector[@]}" "$py" -c 'import onemon' >/dev/null 2>&1; then
    # e.g. a checkout or a pyenv interpreter under /root that other users cannot read
    echo "note: user onemon cannot run $py here; the collector runs as root this time"
    as_collector=()
fi
"${as_collector[@]}" "$py" -m onemon.collector.cli -c "$var/collector/one-collector.toml" \
    >> "$var/collector/one-collector.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    "$py" -m onemon.front.cli --endpoint "http://127.0.0.1:$http_port" health >/dev/null 2>&1 && break
    sleep 0.2
done
"$py" -m onemon.front.main -c "$var/front/one-front.toml" >> "$var/front/one-front.log" 2>&1 &
pids+=($!)
# The agent runs as root: it reads libvirt's socket and every container's cgroups.
"$py" -m onemon.agent.cli -c "$var/agent/one-agent.toml" >> "$var/agent/one-agent.log" 2>&1 &
pids+=($!)
if [ "$lxc_agent" = 1 ]; then
    "$py" -m onemon.agent.cli -c "$var/agent/one-agent-lxc.toml" >> "$var/agent/one-agent-lxc.log" 2>&1 &
    pids+=($!)
fi
runuser -u prometheus -- prometheus --config.file="$var/prometheus/prometheus.yml" \
    --storage.tsdb.path="$var/prometheus/data" --web.listen-address="127.0.0.1:$prom_port" \
    >> "$var/prometheus/prometheus.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
    state=$("$py" -m onemon.front.cli --endpoint "http://127.0.0.1:$http_port" --json host show 0 2>/dev/null \
            | "$py" -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null || true)
    [ "$state" = MONITORED ] && break
    sleep 0.2
done

cat <<EOF

onemon is running.
  metrics:     http://127.0.0.1:$http_port/metrics
  JSON API:    http://127.0.0.1:$http_port/api/v1/hosts
  Prometheus:  http://127.0.0.1:$prom_port/graph?g0.expr=opennebula_host_state
  XML-RPC:     http://127.0.0.1:$rpc_port/RPC2  (oneadmin's password in $var/front/one_auth)
  CLI:         ONE_AUTH=$var/front/one_auth ONE_XMLRPC=http://127.0.0.1:$rpc_port/RPC2 $py -m onemon.front.cli host list
  logs:        $var/{collector,agent,front,prometheus}/*.log

\$ onemon host list
EOF
for _ in $(seq 50); do [ -s "$var/front/one_auth" ] && break; sleep 0.2; done
export ONE_AUTH=$var/front/one_auth ONE_XMLRPC=http://127.0.0.1:$rpc_port/RPC2
"$py" -m onemon.front.cli host list || "$py" -m onemon.front.cli --endpoint "http://127.0.0.1:$http_port" host list
echo
echo "\$ onemon vm list"
"$py" -m onemon.front.cli vm list || "$py" -m onemon.front.cli --endpoint "http://127.0.0.1:$http_port" vm list
echo
echo "Press Ctrl-C to stop."
if [ -n "${ONEMON_RUN_SECONDS:-}" ]; then
    sleep "$ONEMON_RUN_SECONDS"
else
    wait -n "${pids[@]}" || true
fi
