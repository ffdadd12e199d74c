// Package proxy is the auth proxy: it accepts redirected (transparent) and
// explicit (CONNECT / absolute-URI) connections on one port, recovers where each
// was going, applies the allow list, intercepts TLS with minted leaves (or
// tunnels passthrough hosts untouched), injects rule headers and forwards.
package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/auth_proxy/internal/audit"
	"github.com/berth-dev/berth/auth_proxy/internal/certs"
	"github.com/berth-dev/berth/auth_proxy/internal/config"
	"github.com/berth-dev/berth/auth_proxy/internal/inject"
	"github.com/berth-dev/berth/auth_proxy/internal/origdst"
	"github.com/berth-dev/berth/auth_proxy/internal/policy"
	"github.com/berth-dev/berth/auth_proxy/internal/sniff"
)

const (
	peekTimeout      = 10 * time.Second
	handshakeTimeout = 15 * time.Second
	dialTimeout      = 10 * time.Second
)

// Options wire a Proxy. OrigDst and Resolve default to SO_ORIGINAL_DST and DNS.
type Options struct {
	Config        *config.Config
	CA            *certs.Authority
	Secrets       inject.Secrets
	Audit         *audit.Logger
	UpstreamRoots *x509.CertPool
	Log           *slog.Logger
	OrigDst       func(net.Conn) (netip.AddrPort, error)
	Resolve       func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Proxy serves one listening port.
type Proxy struct {
	o         Options
	policy    *policy.Policy
	transport *http.Transport
	rp        *httputil.ReverseProxy
	srv       *http.Server
	conns     *chanListener
	wg        sync.WaitGroup
}

type dialKey struct{}

// New builds a Proxy from validated options.
func New(o Options) *Proxy {
	if o.OrigDst == nil {
		o.OrigDst = origdst.Get
	}
	if o.Resolve == nil {
		o.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	p := &Proxy{o: o, policy: policy.New(o.Config)}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	p.transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if target, ok := ctx.Value(dialKey{}).(string); ok {
				addr = target
			}
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig:       &tls.Config{RootCAs: o.UpstreamRoots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   handshakeTimeout,
		ExpectContinueTimeout: time.Second,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:   func(*httputil.ProxyRequest) {}, // set per request in serveForward
		Transport: p.transport,
		ErrorLog:  slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeJSON(w, http.StatusBadGateway, "berth-auth-proxy: upstream error: "+err.Error())
		},
	}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serveHTTP),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if mc, ok := c.(*metaConn); ok {
				return context.WithValue(ctx, metaKey{}, mc.meta)
			}
			return ctx
		},
	}
	return p
}

// Serve accepts on ln until it is closed.
func (p *Proxy) Serve(ln net.Listener) error {
	p.conns = newChanListener(ln.Addr())
	go func() { _ = p.srv.Serve(p.conns) }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

// Close stops the HTTP side and idle upstream connections.
func (p *Proxy) Close() {
	if p.conns != nil {
		_ = p.conns.Close()
	}
	_ = p.srv.Close()
	p.transport.CloseIdleConnections()
}

func addrPort(a net.Addr) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// handle sorts a new connection: redirected ones are transparent; direct ones
// are explicit proxy requests, served only to clients on this host.
func (p *Proxy) handle(c net.Conn) {
	local, remote := addrPort(c.LocalAddr()), addrPort(c.RemoteAddr())
	dst, err := p.o.OrigDst(c)
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if err != nil || !dst.IsValid() || dst == local {
		if !remote.Addr().IsLoopback() && remote.Addr() != local.Addr() {
			// Another host (or kubelet's tcpSocket probe every few seconds): refuse without
			// an audit line per probe.
			p.o.Log.Debug("refused explicit proxy connection from another host", "remote", remote.String())
			_, _ = io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 68\r\n\r\n"+
				`{"detail":"berth-auth-proxy: explicit mode is served to this host."}`)
			_ = c.Close()
			return
		}
		p.conns.push(&metaConn{Conn: c, meta: &connMeta{mode: "explicit"}})
		return
	}
	p.classify(c, &connMeta{mode: "transparent", origDst: dst, port: int(dst.Port())})
}

// classify peeks the first bytes: a TLS ClientHello (SNI) is intercepted or
// tunnelled, HTTP goes to the HTTP server, anything else is a raw tunnel.
func (p *Proxy) classify(c net.Conn, m *connMeta) {
	start := time.Now()
	br := bufio.NewReaderSize(c, 17*1024)
	_ = c.SetReadDeadline(time.Now().Add(peekTimeout))
	first, err := br.Peek(1)
	pc := &prefixConn{Conn: c, r: br}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			_ = c.SetReadDeadline(time.Time{})
			p.tunnel(pc, m, m.host, start) // server-speaks-first protocol
			return
		}
		_ = c.Close()
		return
	}
	if sniff.IsTLS(first[0]) {
		sni, err := sniff.PeekSNI(br)
		_ = c.SetReadDeadline(time.Time{})
		if err != nil {
			p.audit(audit.Entry{Mode: m.mode, Host: m.host, Port: m.port, Method: "TLS", Decision: "error", Reason: "bad ClientHello: " + err.Error()}, start)
			_ = c.Close()
			return
		}
		if sni != "" {
			m.host = policy.NormalizeHost(sni)
		}
		if m.host == "" && m.origDst.IsValid() {
			m.host = m.origDst.Addr().String()
		}
		if p.policy.IsPassthrough(m.host) {
			p.tunnel(pc, m, m.host, start)
			return
		}
		// Intercept, also for denied hosts, so the client sees a readable 403.
		name := m.host
		tc := tls.Server(pc, &tls.Config{
			NextProtos: []string{"http/1.1"},
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return p.o.CA.Leaf(name)
			},
		})
		_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
		if err := tc.Handshake(); err != nil {
			p.audit(audit.Entry{Mode: m.mode, Host: m.host, Port: m.port, Method: "TLS", Decision: "error", Reason: "client TLS handshake: " + err.Error()}, start)
			_ = c.Close()
			return
		}
		_ = tc.SetDeadline(time.Time{})
		m.tls = true
		p.conns.push(&metaConn{Conn: tc, meta: m})
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if looksLikeHTTP(br) {
		p.conns.push(&metaConn{Conn: pc, meta: m})
		return
	}
	p.tunnel(pc, m, m.host, start)
}

func looksLikeHTTP(br *bufio.Reader) bool {
	b, _ := br.Peek(8)
	i := 0
	for i < len(b) && b[i] >= 'A' && b[i] <= 'Z' {
		i++
	}
	return i >= 3 && i < len(b) && b[i] == ' '
}

// pickAddr chooses the address to dial for host. Intercepted TLS in transparent
// mode keeps the client's destination (the upstream certificate is verified
// against the host name); otherwise the proxy resolves the name itself and only
// keeps the client's destination when it is one of the host's addresses, so a
// forged SNI or Host cannot steer a tunnel or plain request elsewhere.
func (p *Proxy) pickAddr(ctx context.Context, m *connMeta, host string, verifiedTLS bool) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap(), nil
	}
	if host == "" {
		if m.origDst.IsValid() {
			return m.origDst.Addr(), nil
		}
		return netip.Addr{}, errors.New("no destination host")
	}
	if verifiedTLS && m.origDst.IsValid() {
		return m.origDst.Addr(), nil
	}
	rctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	addrs, err := p.o.Resolve(rctx, host)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("resolve %s: %v", host, err)
	}
	for _, a := range addrs {
		if m.origDst.IsValid() && a.Unmap() == m.origDst.Addr() {
			return a.Unmap(), nil
		}
	}
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	return addrs[0], nil
}

// tunnel copies bytes both ways to the allowed destination (passthrough TLS,
// CONNECT to a non-TLS/HTTP protocol, raw TCP to allow.cidrs); denied tunnels are closed.
func (p *Proxy) tunnel(c net.Conn, m *connMeta, host string, start time.Time) {
	defer c.Close()
	if host == "" && m.origDst.IsValid() {
		host = m.origDst.Addr().String() // no SNI/Host: the address is all there is
	}
	e := audit.Entry{Mode: m.mode, Host: host, Port: m.port, Method: "TUNNEL"}
	ip, err := p.pickAddr(context.Background(), m, host, false)
	if err != nil {
		e.Decision, e.Reason = "error", err.Error()
		p.audit(e, start)
		return
	}
	d := p.policy.Decide(host, m.port, ip)
	e.Rule = d.By
	if !d.Allowed {
		e.Decision, e.Reason = "deny", d.Reason
		p.audit(e, start)
		return
	}
	up, err := net.DialTimeout("tcp", netip.AddrPortFrom(ip, uint16(m.port)).String(), dialTimeout)
	if err != nil {
		e.Decision, e.Reason = "error", err.Error()
		p.audit(e, start)
		return
	}
	defer up.Close()
	var wg sync.WaitGroup
	var sent int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		sent, _ = io.Copy(up, c)
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	recv, _ := io.Copy(c, up)
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = c.Close()
	}
	wg.Wait()
	e.Decision, e.Bytes = "allow", sent+recv
	p.audit(e, start)
}

func (p *Proxy) audit(e audit.Entry, start time.Time) {
	e.Time = start.UTC()
	e.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	p.o.Audit.Log(e)
}

func writeJSON(w http.ResponseWriter, status int, detail string) {
	body, _ := json.Marshal(map[string]string{"detail": detail})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func splitHostPort(hostport string, defPort int) (string, int) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return policy.NormalizeHost(hostport), defPort
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		port = defPort
	}
	return policy.NormalizeHost(host), port
}

func isConnect(r *http.Request) bool { return r.Method == http.MethodConnect }

func hostOnly(h string) string {
	host, _ := splitHostPort(h, 0)
	return strings.TrimSpace(host)
}
