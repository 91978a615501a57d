#!/usr/bin/env bash
# Start or stop a private Docker engine (Debian docker.io) with its own data root, exec root
# and socket, for hosts where nothing runs dockerd (CI, this project's dev machines).
#
#   scripts/docker/dockerd.sh start [DIR]   prints `export DOCKER_HOST=unix://DIR/docker.sock`
#   scripts/docker/dockerd.sh stop  [DIR]   stops it and removes the docker0 link and the
#                                           nftables tables it created (not ones that were there)
#
# DIR defaults to $SENTIMENT_DOCKER_ROOT or ~/.cache/sentiment-service/docker and is kept
# between runs on purpose: the base image and the layer cache live there, so rebuilds are fast.
set -euo pipefail

cmd=${1:?usage: dockerd.sh start|stop [DIR]}
root=${2:-${SENTIMENT_DOCKER_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/sentiment-service/docker}}
pidfile=$root/dockerd.pid
sock=$root/docker.sock

running() { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

nft_tables() {
	if command -v nft >/dev/null; then nft list tables 2>/dev/null | sort || true; fi
}

start() {
	mkdir -p "$root"
	if running; then
		echo "export DOCKER_HOST=unix://$sock"
		return
	fi
	# Remember what existed before this engine so `stop` removes only what it created.
	nft_tables >"$root/nft-before.txt"
	if ip link show docker0 >/dev/null 2>&1; then echo 1 >"$root/docker0-before"; else echo 0 >"$root/docker0-before"; fi
	rm -f "$sock" "$pidfile"
	# setsid: the engine must outlive the shell that started it (pytest fixtures, CI steps).
	setsid dockerd --data-root "$root/data" --exec-root "$root/exec" --pidfile "$pidfile" \
		-H "unix://$sock" >>"$root/dockerd.log" 2>&1 </dev/null &
	for _ in $(seq 1 150); do
		if DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1; then
			echo "export DOCKER_HOST=unix://$sock"
			return
		fi
		sleep 0.2
	done
	echo "dockerd did not become ready in 30 s; last log lines:" >&2
	tail -n 20 "$root/dockerd.log" >&2
	exit 1
}

stop() {
	if running; then
		pid=$(cat "$pidfile")
		kill -TERM "$pid"
		# dockerd stops its containers (10 s each by default) and its containerd before exiting.
		for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		if kill -0 "$pid" 2>/dev/null; then
			echo "dockerd $pid ignored SIGTERM for 60 s; killing its process group" >&2
			# setsid made dockerd a group leader: this takes its containerd along.
			kill -KILL -- "-$pid"
		fi
	fi
	rm -f "$sock" "$pidfile"
	if [ "$(cat "$root/docker0-before" 2>/dev/null || echo 0)" = 0 ] && ip link show docker0 >/dev/null 2>&1; then
		ip link del docker0
	fi
	if command -v nft >/dev/null && [ -f "$root/nft-before.txt" ]; then
		comm -13 "$root/nft-before.txt" <(nft_tables) | while read -r _ family name; do
			nft delete table "$family" "$name"
		done
	fi
}

case $cmd in
start) start ;;
stop) stop ;;
*)
	echo "usage: dockerd.sh start|stop [DIR]" >&2
	exit 2
	;;
esac
