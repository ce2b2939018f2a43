package cluster_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/pulsesync/pulsesync/cluster"
	"github.com/pulsesync/pulsesync/push"
	"github.com/pulsesync/pulsesync/sequencer"
)

// TestNATS_MutualTLSAndNKeyFromFiles runs the fan-out through a broker that admits only
// clients presenting a certificate of its authority over TLS and signing in with a listed
// NKey: nodes given those files by NATSSecurity connect, and an advance crosses between them.
func TestNATS_MutualTLSAndNKeyFromFiles(t *testing.T) {
	t.Parallel()
	files := writeSecurityFiles(t)
	user, err := nkeys.FromSeed(files.seed)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := user.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: files.serverCert, KeyFile: files.serverKey,
		CaFile: files.ca, Verify: true})
	if err != nil {
		t.Fatalf("server TLS config: %v", err)
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		TLS: true, TLSVerify: true, TLSConfig: tlsCfg, TLSTimeout: 5, Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	if err != nil {
		t.Fatalf("new NATS server: %v", err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready within 10s")
	}

	r := newRig(t, false)
	security := cluster.NATSSecurity{NKeyFile: files.seedFile, CAFile: files.ca, CertFile: files.clientCert, KeyFile: files.clientKey}
	url := "tls://" + srv.Addr().String()
	a := r.node("a", cluster.Config{NATSURL: url, NATSSecurity: security, ReconcileEvery: quietReconcile})
	b := r.node("b", cluster.Config{NATSURL: url, NATSSecurity: security, ReconcileEvery: quietReconcile})
	a.waitHealthy(t, true)
	b.waitHealthy(t, true)
	d := b.connectDevice(t, "alice", "laptop")
	r.upload(a, "alice", "phone", 1)
	d.waitSeq(t, 1, deliverWithin)
	if got := b.metric(t, "pulsesync_cluster_advances_received_total", "nats"); got != 1 {
		t.Errorf("node b received %v advances over NATS, want 1", got)
	}
}

// TestNATS_SecurityFilesRefusedAtStart checks that a start fails, naming the cause, when a file
// of NATSSecurity is missing or a certificate comes without its key, rather than leaving the
// node retrying a connection that cannot succeed.
func TestNATS_SecurityFilesRefusedAtStart(t *testing.T) {
	t.Parallel()
	files := writeSecurityFiles(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	r := newRig(t, false)
	for _, tc := range []struct {
		name     string
		security cluster.NATSSecurity
		want     string
	}{
		{"missing NKey seed", cluster.NATSSecurity{NKeyFile: missing}, "NKey seed"},
		{"missing CA", cluster.NATSSecurity{CAFile: missing}, "missing.pem"},
		{"certificate without key", cluster.NATSSecurity{CertFile: files.clientCert}, "both"},
		{"missing key", cluster.NATSSecurity{CertFile: files.clientCert, KeyFile: missing}, "missing.pem"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			n, err := cluster.Start(t.Context(), cluster.Config{Pool: connect(t, r.url), NATSURL: "nats://127.0.0.1:4222",
				NATSSecurity: tc.security, NodeID: "n", Hub: push.NewHub(), Watermarks: sequencer.NewWatermarks(sequencer.WatermarksConfig{})})
			if err == nil {
				n.Close()
				t.Fatalf("started, want an error naming %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want one naming %q", err, tc.want)
			}
		})
	}
}

// securityFiles are the PEM and seed files of one test's authority, broker and client.
type securityFiles struct {
	ca, serverCert, serverKey, clientCert, clientKey, seedFile string
	seed                                                       []byte
}

// writeSecurityFiles creates a throwaway certificate authority, a server certificate for
// 127.0.0.1 and a client certificate signed by it, and a user NKey seed, as files.
func writeSecurityFiles(t *testing.T) securityFiles {
	t.Helper()
	dir := t.TempDir()
	f := securityFiles{ca: filepath.Join(dir, "ca.pem"), serverCert: filepath.Join(dir, "server.pem"),
		serverKey: filepath.Join(dir, "server-key.pem"), clientCert: filepath.Join(dir, "client.pem"),
		clientKey: filepath.Join(dir, "client-key.pem"), seedFile: filepath.Join(dir, "user.nk")}
	caKey := newKey(t)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, f.ca, "CERTIFICATE", caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, certFile, keyFile string) {
		key := newKey(t)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, certFile, "CERTIFICATE", der)
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	}
	leaf(2, x509.ExtKeyUsageServerAuth, f.serverCert, f.serverKey)
	leaf(3, x509.ExtKeyUsageClientAuth, f.clientCert, f.clientKey)
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	if f.seed, err = user.Seed(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.seedFile, f.seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
