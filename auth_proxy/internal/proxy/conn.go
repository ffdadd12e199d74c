package proxy

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync"
)

// connMeta travels with a connection into the shared http.Server.
type connMeta struct {
	mode      string // "transparent" or "explicit"
	tls       bool
	host      string // SNI or CONNECT host; "" for plain transparent HTTP (use Host)
	port      int
	origDst   netip.AddrPort // transparent only
	tunnelled bool           // inside a CONNECT tunnel
}

type metaConn struct {
	net.Conn
	meta *connMeta
}

type metaKey struct{}

func metaFrom(ctx context.Context) *connMeta {
	m, _ := ctx.Value(metaKey{}).(*connMeta)
	return m
}

// prefixConn reads through a bufio.Reader that holds peeked bytes.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *prefixConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// chanListener feeds connections prepared by the proxy to one http.Server.
type chanListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{}), addr: addr}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		_ = c.Close()
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// countingWriter counts body bytes and the status for the audit line.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
