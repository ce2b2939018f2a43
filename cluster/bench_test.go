package cluster

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pulsesync/pulsesync/internal/natstest"
	"github.com/pulsesync/pulsesync/push"
	"github.com/pulsesync/pulsesync/sequencer"
)

// The benchmarks below compare the two subject layouts docs/architecture.md leaves open: one subject per
// user, which the broker filters exactly, and 256 shards, which a busy node subscribes to
// whole and filters itself. Broker, publisher and subscriber all run in this process, so
// ns/op is the whole cluster's CPU per advance on this machine.

const (
	benchUsers     = 10_000 // users of the whole deployment
	benchFlowBatch = 5_000  // publishes between waits for the subscriber, to stay clear of slow-consumer limits
)

type subjectLayout struct {
	name    string
	subject func(user string) string
	// interest lists the subjects a node serving users subscribes to.
	interest func(users []string) []string
}

var layouts = []subjectLayout{
	{
		name:    "sharded",
		subject: func(user string) string { return subjectPrefix + strconv.Itoa(shardOf(user)) },
		// A busy node serves users in every shard.
		interest: func([]string) []string {
			s := make([]string, shardCount)
			for i := range s {
				s[i] = subjectPrefix + strconv.Itoa(i)
			}
			return s
		},
	},
	{
		name:    "per-user",
		subject: func(user string) string { return "pulsesync.user." + user },
		interest: func(users []string) []string {
			s := make([]string, len(users))
			for i, u := range users {
				s[i] = "pulsesync.user." + u
			}
			return s
		},
	},
}

// BenchmarkFanout publishes advances of random users to a node that serves a share of them,
// and reports per published advance: ns/op and cpu-ns/op for everything (publisher, broker,
// and the node decoding and looking up its hub) and msgs/op for what the broker delivered.
func BenchmarkFanout(b *testing.B) {
	users := make([]string, benchUsers)
	for i := range users {
		users[i] = fmt.Sprintf("user-%05d", i)
	}
	for _, share := range []int{1, 10} { // percent of users the node serves
		for _, layout := range layouts {
			b.Run(fmt.Sprintf("%s/serves-%d%%", layout.name, share), func(b *testing.B) {
				benchFanout(b, layout, users, users[:benchUsers*share/100])
			})
		}
	}
}

func benchFanout(b *testing.B, layout subjectLayout, users, served []string) {
	srv := natstest.Start(b)
	pub, err := nats.Connect(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	sub, err := nats.Connect(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()

	hub := push.NewHub()
	for _, u := range served {
		s := hub.Subscribe(push.SubscribeOptions{User: u, Wake: func() {}})
		defer s.Close()
	}
	var received atomic.Int64
	handle := func(m *nats.Msg) {
		if _, advances, err := decodeBatch(m.Data); err == nil {
			for _, a := range advances {
				hub.Advance(a)
			}
		}
		received.Add(1)
	}
	for _, subject := range layout.interest(served) {
		if _, err := sub.Subscribe(subject, handle); err != nil {
			b.Fatal(err)
		}
	}
	if err := sub.Flush(); err != nil {
		b.Fatal(err)
	}
	isServed := make(map[string]bool, len(served))
	for _, u := range served {
		isServed[u] = true
	}
	wantReceived := func(user string) bool { return layout.name == "sharded" || isServed[user] }

	w := newBatchWriter("bench", 0)
	rng := rand.New(rand.NewPCG(1, 2))
	var expected int64
	wait := func() {
		if err := pub.Flush(); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for received.Load() < expected {
			if time.Now().After(deadline) {
				b.Fatalf("subscriber got %d of %d messages", received.Load(), expected)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime(b)
	for i := range b.N {
		user := users[rng.IntN(len(users))]
		if err := pub.Publish(layout.subject(user), w.one(sequencer.Advance{User: user, Seq: int64(i + 1), From: int64(i + 1), Source: "phone"})); err != nil {
			b.Fatal(err)
		}
		if wantReceived(user) {
			expected++
		}
		if (i+1)%benchFlowBatch == 0 {
			wait()
		}
	}
	wait()
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(received.Load())/float64(b.N), "msgs/op")
}

// cpuTime is the CPU time the process has used, user and system, in nanoseconds. On a shared
// two-core machine it says more than wall time about what a layout costs.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkConnectChurn is the cost a device connect-and-disconnect adds on the broker path.
// Per-user subjects need a SUB confirmed by a round trip before the session may read the
// user's seq, and an UNSUB after; shards are subscribed once and stay, so a connect is a
// lookup once every shard a node needs is in place.
func BenchmarkConnectChurn(b *testing.B) {
	srv := natstest.Start(b)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	noop := func(*nats.Msg) {}

	b.Run("per-user", func(b *testing.B) {
		for i := range b.N {
			s, err := nc.Subscribe("pulsesync.user.u"+strconv.Itoa(i), noop)
			if err != nil {
				b.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				b.Fatal(err)
			}
			if err := s.Unsubscribe(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sharded", func(b *testing.B) {
		var subs [shardCount]*nats.Subscription
		for i := range b.N {
			shard := shardOf("u" + strconv.Itoa(i))
			if subs[shard] != nil {
				continue
			}
			s, err := nc.Subscribe(subjectPrefix+strconv.Itoa(shard), noop)
			if err != nil {
				b.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				b.Fatal(err)
			}
			subs[shard] = s
		}
	})
}
