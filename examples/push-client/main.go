// Command push-client is the Go push client of docs/clients.md: it keeps a v0 device's cursor
// current by downloading whenever pulsesync's WebSocket (/sync/ws, docs/push.md §1) says the
// user's data moved. An app built on oversqlite calls its own sync where this one calls
// download.
//
//	PULSESYNC_TOKEN=<JWT with sub, did, exp> go run ./examples/push-client -url http://localhost:8080
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

func main() {
	base := flag.String("url", "http://localhost:8080", "pulsesync base URL")
	schema := flag.String("schema", "business", "schema to sync")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	d := &device{base: strings.TrimSuffix(*base, "/"), schema: *schema, token: os.Getenv("PULSESYNC_TOKEN")}
	if err := d.run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}

// device is one app installation: its token and its download cursor, which only a completed
// download moves.
type device struct {
	base, schema, token string
	cursor              int64
}

// run keeps a push connection open, reconnecting with jittered exponential backoff, and
// downloads once after each (re)connect and on every changes frame.
func (d *device) run(ctx context.Context) error {
	backoff := 500 * time.Millisecond
	for {
		err := d.listen(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch websocket.CloseStatus(err) {
		case 4001:
			return errors.New("token expired: get a fresh one, then reconnect") // an app refreshes here
		case 4003:
			return errors.New("token refused: do not retry blindly")
		}
		wait := backoff + rand.N(backoff) // up to 100 % jitter
		log.Printf("push connection lost (%v); reconnecting in %s", err, wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// frame is what the server sends on /sync/ws: {"type":"ready","seq":N,"heartbeat_s":25} once,
// then {"type":"changes","seq":N}. Other types are ignored.
type frame struct {
	Type string `json:"type"`
	Seq  int64  `json:"seq"`
}

// listen opens /sync/ws with the current cursor as after and serves it until it fails.
func (d *device) listen(ctx context.Context) error {
	ws := "ws" + strings.TrimPrefix(d.base, "http") + "/sync/ws?" + url.Values{
		"after": {strconv.FormatInt(d.cursor, 10)}, "schema": {d.schema}}.Encode()
	conn, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + d.token}}})
	if err != nil {
		return fmt.Errorf("open push: %w", err)
	}
	defer conn.CloseNow()
	// Anything committed while the device was away: the server also says so with a changes
	// frame right after ready, but a download is cheap when nothing changed.
	if err := d.download(ctx); err != nil {
		return err
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		var f frame
		if json.Unmarshal(data, &f) != nil || f.Type != "changes" || f.Seq <= d.cursor {
			continue
		}
		if err := d.download(ctx); err != nil {
			return err
		}
		if d.cursor == 0 {
			continue // nothing of this schema yet; an ack needs a seq above 0
		}
		// Tell the session where the device now stands, so later advances are judged against it.
		ack, _ := json.Marshal(map[string]any{"type": "ack", "seq": d.cursor})
		if err := conn.Write(ctx, websocket.MessageText, ack); err != nil {
			return err
		}
	}
}

// page is the part of a GET /sync/download answer (docs/protocol-v0.md §4.3) the cursor needs.
type page struct {
	Changes   []json.RawMessage `json:"changes"`
	HasMore   bool              `json:"has_more"`
	NextAfter int64             `json:"next_after"`
}

// download pages from the cursor until the server has nothing more, moving the cursor to each
// page's next_after once the page is applied (docs/protocol-v0.md §4.5).
func (d *device) download(ctx context.Context) error {
	for {
		u := d.base + "/sync/download?" + url.Values{"after": {strconv.FormatInt(d.cursor, 10)},
			"limit": {"1000"}, "schema": {d.schema}}.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+d.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("download: %w", err)
		}
		var p page
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			return fmt.Errorf("download: status %d: %v", resp.StatusCode, err) // keep the cursor, retry later
		}
		for _, c := range p.Changes {
			log.Printf("change: %s", c) // an app applies it to its SQLite database here
		}
		d.cursor = max(d.cursor, p.NextAfter)
		if !p.HasMore {
			return nil
		}
	}
}
