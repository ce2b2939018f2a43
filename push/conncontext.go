package push

import (
	"context"
	"net"
	"net/http"
)

type connKey struct{}

// ConnContext is an http.Server ConnContext hook: it keeps each connection in its requests'
// contexts, so that an SSE stream, whose ResponseWriter hides the socket, can hold its
// notifications while the socket has not drained (see drainGate). Without it SSE streams
// write without waiting and only the per-write deadline bounds a stalled reader.
func ConnContext(ctx context.Context, conn net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, conn)
}

// connOf returns the connection r arrived on, kept by ConnContext; nil without the hook, or
// for HTTP/2, where one connection carries many streams and its send queue says nothing of one.
func connOf(r *http.Request) net.Conn {
	if r.ProtoMajor != 1 {
		return nil
	}
	conn, _ := r.Context().Value(connKey{}).(net.Conn)
	return conn
}
