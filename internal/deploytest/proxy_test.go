package deploytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/pushtest"
)

// nginxMain is the test's nginx.conf: everything an installed nginx.conf sets about the process
// (here: in the test's directory, in the foreground, one worker) and, in its http block, the
// shipped deploy/nginx/pulsesync.conf untouched. That file includes pulsesync/nodes.conf and
// pulsesync/listen.conf relative to this file's directory, where the test writes them.
const nginxMain = `daemon off;
master_process on;
worker_processes 1;
%[1]s
pid "%[2]s/nginx.pid";
error_log "%[2]s/error.log" warn;
events {
    worker_connections 1024;
}
http {
    client_body_temp_path "%[2]s/client_body";
    proxy_temp_path "%[2]s/proxy";
    fastcgi_temp_path "%[2]s/fastcgi";
    uwsgi_temp_path "%[2]s/uwsgi";
    scgi_temp_path "%[2]s/scgi";
    access_log "%[2]s/access.log";
    include "%[3]s";
}
`

// The site files pulsesync.conf includes, as an operator writes them for two nodes.
const (
	nodeLine   = "server %s max_fails=1 fail_timeout=5s;\n"
	listenLine = "listen %s;\n"
)

// startAttempts bounds the retries when another process takes the free port nginx was given
// before nginx binds it.
const startAttempts = 3

// proxy is a running nginx in front of pulsesync nodes.
type proxy struct {
	// URL is nginx's base URL, http://127.0.0.1:<port>.
	URL string
	// Client talks to nginx; its idle connections close with the test.
	Client *http.Client
	dir    string
}

// startNginx runs nginx with deploy/nginx/pulsesync.conf in front of the nodes (base URLs
// http://host:port) until the test ends, and returns once it proxies GET /health.
func startNginx(t *testing.T, nodes ...string) *proxy {
	t.Helper()
	bin := tool(t, "nginx", "nginx")
	dir := t.TempDir()
	var upstream strings.Builder
	for _, n := range nodes {
		u, err := url.Parse(n)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&upstream, nodeLine, u.Host)
	}
	// nginx started by root runs its workers as the user this directive names (else nobody,
	// who cannot write the temporary directories under the test's own); ignored otherwise.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	writeFile(t, filepath.Join(dir, "pulsesync", "nodes.conf"), upstream.String())
	conf := filepath.Join(dir, "nginx.conf")
	writeFile(t, conf, fmt.Sprintf(nginxMain, user, dir, deployFile(t, "nginx/pulsesync.conf")))

	for attempt := 1; ; attempt++ {
		addr := freeAddr(t)
		writeFile(t, filepath.Join(dir, "pulsesync", "listen.conf"), fmt.Sprintf(listenLine, addr))
		p := &proxy{URL: "http://" + addr, dir: dir}
		err := p.run(t, bin, conf)
		if err == nil {
			return p
		}
		if attempt == startAttempts || !strings.Contains(err.Error(), "Address already in use") {
			t.Fatalf("nginx with deploy/nginx/pulsesync.conf: %v", err)
		}
	}
}

// run starts nginx and waits until it proxies /health; it stops nginx at the test's end. An
// nginx that exits first is an error carrying its error log.
func (p *proxy) run(t *testing.T, bin, conf string) error {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-p", p.dir+"/", "-c", conf, "-e", filepath.Join(p.dir, "error.log"))
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	// If the test binary dies, nginx goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	transport := &http.Transport{ExpectContinueTimeout: pushtest.Wait}
	p.Client = &http.Client{Transport: transport} // no timeout: streams and long-polls outlive any
	deadline := time.Now().Add(pushtest.Wait)
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(p.dir, "error.log"))
			return fmt.Errorf("nginx exited (%v): %s%s", err, stderr.Bytes(), log)
		default:
		}
		if p.healthy() {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("nginx did not proxy GET /health in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		_ = cmd.Process.Signal(syscall.SIGTERM) // fast shutdown: open streams are cut
		select {
		case <-exited:
		case <-time.After(pushtest.Wait):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("nginx did not stop within %v of SIGTERM", pushtest.Wait)
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(p.dir, "error.log"))
			t.Logf("nginx error log:\n%s", log)
		}
	})
	return nil
}

// healthy reports whether GET /health through nginx answers 200 within a second.
func (p *proxy) healthy() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/health", nil)
	if err != nil {
		return false
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// freeAddr returns a loopback address with a port nobody listens on at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeFile writes content to path, creating its directory.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
