package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pulsesync/pulsesync/cluster"
)

// TestNodeConfig_CarriesNATSSecurity checks that the NATS credential and TLS settings reach the
// node's fan-out configuration, each into its own field.
func TestNodeConfig_CarriesNATSSecurity(t *testing.T) {
	dir := t.TempDir()
	file := func(name string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	want := cluster.NATSSecurity{CredsFile: file("user.creds"), NKeyFile: file("user.nk"), CAFile: file("ca.pem"),
		CertFile: file("client.pem"), KeyFile: file("client-key.pem")}
	s, err := serverFlags{MaxBody: 1, DBMaxConns: 1, V1RetainBundles: 1, SchemaVersion: 1, V1SchemaVersion: 1, WatermarkCache: 1, ConnectRate: -1, NodeID: "n",
		NATSCreds: want.CredsFile, NATSNKey: want.NKeyFile, NATSTLSCA: want.CAFile,
		NATSTLSCert: want.CertFile, NATSTLSKey: want.KeyFile}.parse()
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if got := s.nodeConfig(nil, nil, nodeExtras{}, nil, nil).NATSSecurity; got != want {
		t.Errorf("node config NATSSecurity = %+v, want %+v", got, want)
	}
}
