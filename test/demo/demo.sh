#!/usr/bin/env bash
# make demo: three agents on this machine's loopback (redis 6381-6383,
# sentinels 26381-26383), each with its own state directory. Shows the group
# forming, kills the master's redis with SIGKILL, measures the time until the
# sentinels name a new master, and shows the old master rejoining as a replica.
# KEEP=1 leaves the group running (stop it with: pkill -f 'redis-ha-agent run').
set -euo pipefail

BIN=$(realpath "${1:-bin/redis-ha-agent}")
ROOT=${DEMO_DIR:-/tmp/redis-ha-demo}
PORTS=(6381 6382 6383)
export REDISCLI_AUTH=demo-pass # redis-cli reads the password from here, not argv

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now() { echo $(( $(date +%s%N) / 1000000 )); } # milliseconds

stop_all() {
	for i in 1 2 3; do
		[ -f "$ROOT/node$i/agent.pid" ] && kill -TERM "$(cat "$ROOT/node$i/agent.pid")" 2>/dev/null || true
	done
	for i in 1 2 3; do
		pid=$(cat "$ROOT/node$i/agent.pid" 2>/dev/null || true)
		[ -n "$pid" ] && while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	done
}
cleanup() {
	if [ "${KEEP:-}" = 1 ]; then
		say "KEEP=1: the group keeps running; configs in $ROOT/node*/redis-ha.conf"
		return
	fi
	say "stopping the three agents (each stops its sentinel, then its redis)"
	stop_all
	rm -rf "$ROOT"
}

if [ -d "$ROOT" ]; then stop_all; rm -rf "$ROOT"; fi
mkdir -p "$ROOT" && chmod 755 "$ROOT"
trap cleanup EXIT
printf '%s\n' "$REDISCLI_AUTH" > "$ROOT/password" && chmod 640 "$ROOT/password"

peers="\"127.0.0.1:6381\", \"127.0.0.1:6382\", \"127.0.0.1:6383\""
for i in 1 2 3; do
	port=${PORTS[$((i - 1))]}
	d="$ROOT/node$i"
	mkdir -p "$d/conf.d"
	cat > "$d/redis-ha.conf" <<CONF
[cluster]
peers = [$peers]
bootstrap_primary = "127.0.0.1:6381"

[node]
announce = "127.0.0.1:$port"
data_dir = "$d/data"
run_dir = "$d/run"

[redis]
port = $port

[auth]
password_file = "$ROOT/password"

[http]
listen = ""
CONF
	"$BIN" run --config "$d/redis-ha.conf" >"$d/agent.log" 2>&1 &
	echo $! > "$d/agent.pid"
done

say "three agents started (logs: $ROOT/node*/agent.log); waiting for the group to form"
for _ in $(seq 1 120); do
	"$BIN" status --config "$ROOT/node1/redis-ha.conf" >/dev/null 2>&1 && break
	sleep 0.5
done
"$BIN" status --config "$ROOT/node1/redis-ha.conf"

master_port() {
	for p in "${PORTS[@]}"; do
		[ "$(redis-cli -p "$p" --no-auth-warning ROLE 2>/dev/null | head -1)" = master ] && { echo "$p"; return; }
	done
}
old=$(master_port)
say "writing 1000 keys through the master on port $old"
for i in $(seq 1 1000); do echo "SET demo:$i $i"; done | redis-cli -p "$old" --no-auth-warning >/dev/null
redis-cli -p "$old" --no-auth-warning WAIT 2 2000 >/dev/null
echo "replicas acknowledged: $(redis-cli -p "$old" --no-auth-warning INFO replication | grep -c '^slave[0-9]')"

say "kill -9 the master's redis (port $old)"
node=$((old - 6380))
t0=$(now)
kill -9 "$(cat "$ROOT/node$node/run/redis.pid")"
new=""
while [ -z "$new" ]; do
	a=$(redis-cli -p $((old == 6381 ? 26382 : 26381)) --no-auth-warning SENTINEL get-master-addr-by-name main 2>/dev/null | sed -n 2p)
	[ -n "$a" ] && [ "$a" != "$old" ] && new=$a
	sleep 0.05
	if (( $(now) - t0 > 120000 )); then echo "no failover after 120 s"; exit 1; fi
done
t1=$(now)
ms=$((t1 - t0))
printf 'new master: port %s, named by the sentinels %d.%03d s after the kill\n' "$new" $((ms / 1000)) $((ms % 1000))

say "waiting for the old master to rejoin as a replica"
for _ in $(seq 1 120); do
	"$BIN" status --config "$ROOT/node1/redis-ha.conf" >/dev/null 2>&1 && break
	sleep 0.5
done
"$BIN" status --config "$ROOT/node1/redis-ha.conf"
echo "port $old is now: $(redis-cli -p "$old" --no-auth-warning ROLE | head -1)"
echo "keys on the new master: $(redis-cli -p "$new" --no-auth-warning DBSIZE) (1000 written before the kill)"
grep -h "restart gate" "$ROOT/node$node/agent.log" | head -2 || true
