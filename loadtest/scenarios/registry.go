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
func Registry(overrides Params) loadtest.Registry {
	bind := func(f func(*loadtest.Env, json.RawMessage, Params) (loadtest.Exec, error)) loadtest.ExecFactory {
		return func(env *loadtest.Env, raw json.RawMessage) (loadtest.Exec, error) { return f(env, raw, overrides) }
	}
	return loadtest.Registry{
		"upload":        bind(newUploadExec),
		"download":      bind(newDownloadExec),
		"poll":          bind(newPollExec),
		"push_listener": bind(newListenerExec),
		"push_uploader": bind(newPushUploaderExec),
		"idle_ws":       bind(newIdleWSExec),
	}
}
