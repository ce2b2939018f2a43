package cluster

import (
	"hash/fnv"
	"testing"
)

func TestShardOf_IsFNV1aModShardCount(t *testing.T) {
	for _, user := range []string{"", "alice", "bob", "zoë", "6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"} {
		h := fnv.New32a()
		h.Write([]byte(user))
		if got, want := shardOf(user), int(h.Sum32()%shardCount); got != want {
			t.Errorf("shardOf(%q) = %d, want %d", user, got, want)
		}
	}
	// Pinned: every node of every version must agree, so these may never change.
	for user, want := range map[string]int{"poller": 15, "connected-user": 52} {
		if got := shardOf(user); got != want {
			t.Errorf("shardOf(%q) = %d, want %d", user, got, want)
		}
	}
}
