package scenarios

import (
	"encoding/json"

	"github.com/pulsesync/pulsesync/loadtest"
)

// Registry returns the protocol scenarios by exec name. Every field set in
// overrides (non-zero) replaces the corresponding param of every scenario
// that takes it, the way command-line flags override a config file.
//
//	upload         batches of INSERTs; changes_uploaded
//	download       whole-stream paging; changes_downloaded
//	poll           empty polls at the user's head
//	push_listener  WebSocket/SSE listeners measuring push_latency
//	push_uploader  single-change uploads published to the listeners' board
//	idle_ws        many idle WebSockets; server memory per connection
//	mixed          a day of devices with push, pollers and a reconnect storm; missed_or_late_seq
//	compare_poller compare-polling: devices downloading every poll_interval
//	compare_pusher compare-polling: devices downloading when push tells them
//	compare_writer compare-polling: single-change uploads for random users
//	compare_meter  compare-polling: a phase's server and PostgreSQL CPU, transactions
//	storm          devices connecting at once, all behind: catch-up, database reads
//
// and the v1 bundle protocol's (docs/protocol-v1.md):
//
//	v1_push            bundles of INSERTs, read back and hash-checked; rows_committed
//	v1_pull            whole-history pulls; rows_pulled
//	v1_snapshot        whole snapshots; rows_snapshotted
//	v1_watch           watch streams measuring watch_latency
//	v1_watch_uploader  bundles for random users published to the watchers' board
func Registry(overrides Params) loadtest.Registry {
	bind := func(f func(*loadtest.Env, json.RawMessage, Params) (loadtest.Exec, error)) loadtest.ExecFactory {
		return func(env *loadtest.Env, raw json.RawMessage) (loadtest.Exec, error) {
			o := overrides
			o.scenario = env.Scenario // the default user pool
			return f(env, raw, o)
		}
	}
	return loadtest.Registry{
		"upload":         bind(newUploadExec),
		"download":       bind(newDownloadExec),
		"poll":           bind(newPollExec),
		"push_listener":  bind(newListenerExec),
		"push_uploader":  bind(newPushUploaderExec),
		"idle_ws":        bind(newIdleWSExec),
		"mixed":          bind(newMixedExec),
		"compare_poller": bind(newComparePollerExec),
		"compare_pusher": bind(newComparePusherExec),
		"compare_writer": bind(newCompareWriterExec),
		"compare_meter":  bind(newCompareMeterExec),
		"storm":          bind(newStormExec),

		"v1_push":           bind(newV1PushExec),
		"v1_pull":           bind(newV1PullExec),
		"v1_snapshot":       bind(newV1SnapshotExec),
		"v1_watch":          bind(newV1WatchExec),
		"v1_watch_uploader": bind(newV1WatchUploaderExec),
	}
}
