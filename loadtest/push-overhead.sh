#!/usr/bin/env bash
# push-overhead.sh measures what connected devices cost a node's upload throughput.
#
# The batch-100 upload test runs without a break while 10,000 idle WebSockets (5 devices for each
# of 2,000 users, so every uploading user's other devices are told of each upload) connect, stay
# for HOLD seconds and go, every HOLD+GAP seconds. The node's own counters, sampled every second
# from /metrics, say how many changes committed in each second and how many sockets were open.
# Seconds with all sockets open are "on", seconds with none are "off"; seconds in between are
# left out. Each "on" window is compared with the mean of the "off" windows on either side, so
# the database's growth during the run (uploads slow as tables grow) cancels out.
#
# Usage: loadtest/push-overhead.sh [cycles]   (needs a running server; env: URL, METRICS, PSLOAD,
# HOLD, GAP, LISTENERS, LISTENER_VUS, LISTENER_NICE). Prints one line per second to $OUT and the comparison at
# the end. On one machine the listeners' process competes with the server and the database for
# CPU; LISTENER_NICE=19 lowers its priority, which comes closer to devices on other machines.
# LISTENER_VUS (100) connect in parallel: with the machine saturated by the uploads, a handshake
# takes tens of milliseconds, and 10 connecting one after another took most of a 40 s window.
set -euo pipefail

cycles=${1:-6}
url=${URL:-http://127.0.0.1:8080}
metrics=${METRICS:-$url/metrics}
hold=${HOLD:-40}
gap=${GAP:-40}
listeners=${LISTENERS:-10000}
out=${OUT:-$(mktemp -t push-overhead.XXXXXX)}
psload=${PSLOAD:-}
if [[ -z $psload ]]; then
	psload=$(mktemp -t pulsesync-load.XXXXXX)
	go build -o "$psload" ./cmd/pulsesync-load
fi

total=$((gap + cycles * (hold + gap) + 10))
"$psload" --scenario upload --vus 16 --duration "${total}s" --batch 100 --url "$url" >"$out.upload" 2>&1 &
uploader=$!

sample() {
	curl -fsS "$metrics" | awk -v t="$(date +%s)" '
		/^pulsesync_upload_changes_total\{status="applied"\}/ { applied = $2 }
		/^pulsesync_push_connections\{transport="ws"\}/ { ws = $2 }
		END { printf "%d %.0f %d\n", t, applied, ws }'
}
(while kill -0 "$uploader" 2>/dev/null; do sample; sleep 1; done) >"$out" &
sampler=$!

for _ in $(seq "$cycles"); do
	sleep "$gap"
	nice -n "${LISTENER_NICE:-0}" "$psload" --scenario idle_ws --vus "${LISTENER_VUS:-100}" --connections "$listeners" --users 2000 --devices-per-user 5 \
		--source-ips 2 --duration "${hold}s" --url "$url" >>"$out.listeners" 2>&1
done
wait "$uploader" || true
wait "$sampler" || true

# The first seconds of each window are left out too: the connect storm's and the disconnect's
# after-effects (handshakes finishing, memory freed) belong to neither state.
awk -v full="$listeners" -v settle="${SETTLE:-3}" '
	NR > 1 && $2 > prev {
		rate = $2 - prev
		state = ($3 == full && prevws == full) ? "on" : ($3 == 0 && prevws == 0) ? "off" : ""
		if (state != "") {
			if (state != cur) { n++; kind[n] = state; cur = state; age = 0 }
			if (++age > settle) { sum[n] += rate; cnt[n]++ }
		} else { cur = "" }
	}
	{ prev = $2; prevws = $3 }
	END {
		for (i = 1; i <= n; i++) mean[i] = cnt[i] ? sum[i] / cnt[i] : 0
		for (i = 2; i < n; i++) {
			if (kind[i] != "on" || kind[i-1] != "off" || kind[i+1] != "off" || !cnt[i] || !cnt[i-1] || !cnt[i+1]) continue
			off = (mean[i-1] + mean[i+1]) / 2
			r[++m] = mean[i] / off
			printf "on %6.0f changes/s (%d s) vs off %6.0f: %.1f%%\n", mean[i], cnt[i], off, 100 * mean[i] / off
		}
		if (m == 0) { print "no on window with off windows on both sides"; exit 1 }
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
		med = (m % 2) ? r[(m + 1) / 2] : (r[m / 2] + r[m / 2 + 1]) / 2
		printf "median of %d windows: %.1f%%\n", m, 100 * med
	}' "$out"
echo "samples: $out"
