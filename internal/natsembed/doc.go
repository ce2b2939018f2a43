// Package natsembed runs a NATS server inside the process: the broker of `pulsesync dev`, and
// the broker that tests start through internal/natstest.
//
// The server listens on the loopback interface only, has no authentication, no clustering and
// no JetStream: it is a development and test broker, never a production one. It can be stopped
// and started again on the same port, which is how tests simulate a broker outage.
//
// The package knows nothing about pulsesync.
package natsembed
