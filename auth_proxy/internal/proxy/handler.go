package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"time"

	"github.com/berth-dev/berth/auth_proxy/internal/audit"
	"github.com/berth-dev/berth/auth_proxy/internal/inject"
)

// serveHTTP handles every request on an intercepted, plain or explicit connection.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	m := metaFrom(r.Context())
	if m == nil {
		writeJSON(w, http.StatusInternalServerError, "berth-auth-proxy: connection without metadata")
		return
	}
	cw := &countingWriter{ResponseWriter: w}
	e := audit.Entry{Mode: m.mode, Method: r.Method, Path: r.URL.Path}
	defer func() {
		e.Status, e.Bytes = cw.status, cw.n
		if e.Decision == "" {
			e.Decision = "allow"
		}
		p.audit(e, start)
	}()

	scheme, host, port := "http", "", m.port
	switch {
	case m.mode == "explicit" && !m.tunnelled:
		if isConnect(r) {
			e.Host, e.Port = splitHostPort(r.Host, 443)
			p.serveConnect(cw, r, &e)
			return
		}
		if !r.URL.IsAbs() || r.URL.Scheme != "http" {
			e.Decision = "deny"
			writeJSON(cw, http.StatusBadRequest, "berth-auth-proxy: not a proxy request: use CONNECT or an absolute http:// URI")
			return
		}
		host, port = splitHostPort(r.URL.Host, 80)
	case m.tls:
		scheme, host = "https", m.host
		if rh := hostOnly(r.Host); rh != "" && rh != host {
			e.Host, e.Port, e.Decision = host, port, "deny"
			e.Reason = "Host header does not match the TLS server name"
			writeJSON(cw, http.StatusMisdirectedRequest, "berth-auth-proxy: Host "+rh+" does not match TLS server name "+host)
			return
		}
	case m.host != "": // plain HTTP inside a CONNECT tunnel
		host = m.host
	default:
		host = hostOnly(r.Host)
	}
	e.Host, e.Port = host, port

	ip, err := p.pickAddr(r.Context(), m, host, m.tls)
	if err != nil {
		e.Decision, e.Reason = "error", err.Error()
		writeJSON(cw, http.StatusBadGateway, "berth-auth-proxy: "+err.Error())
		return
	}
	d := p.policy.Decide(host, port, ip)
	if !d.Allowed {
		e.Decision, e.Reason = "deny", d.Reason
		writeJSON(cw, http.StatusForbidden, "berth-auth-proxy: denied: "+d.Reason)
		return
	}
	e.Rule = d.By
	if d.Passthrough {
		// A passthrough host reached over plain HTTP or an intercepted CONNECT:
		// forward without injection.
		e.Rule = "passthrough"
	} else if rule := p.policy.RuleFor(host, r.URL.Path); rule != nil {
		e.Rule = "rule " + rule.Name
		if scheme != "https" {
			// Never put a credential on the wire in clear text.
			e.Decision, e.Reason = "deny", "rule "+rule.Name+" injects credentials over HTTPS only"
			writeJSON(cw, http.StatusForbidden, "berth-auth-proxy: denied: "+e.Reason+"; use https://")
			return
		}
		if err := inject.Apply(r.Header, rule, p.o.Secrets); err != nil {
			var ie *inject.Error
			status := http.StatusBadGateway
			if errors.As(err, &ie) {
				status = ie.Status
			}
			e.Decision, e.Reason = "deny", err.Error()
			writeJSON(cw, status, "berth-auth-proxy: "+err.Error())
			return
		}
	}
	target := netip.AddrPortFrom(ip, uint16(port)).String()
	ctx := context.WithValue(r.Context(), dialKey{}, target)
	rp := *p.rp
	rp.Rewrite = func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Scheme = scheme
		pr.Out.URL.Host = joinHostPort(host, port, scheme)
		pr.Out.Host = pr.Out.URL.Host
		if r.Host != "" && m.mode == "transparent" {
			pr.Out.Host = r.Host
		}
	}
	rp.ServeHTTP(cw, r.WithContext(ctx))
}

// joinHostPort omits the scheme's default port, as a client would in Host.
func joinHostPort(host string, port int, scheme string) string {
	if (scheme == "https" && port == 443) || (scheme == "http" && port == 80) {
		if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// serveConnect answers an explicit CONNECT: 403 naming the missing rule, or 200
// and then the tunnel is handled like a redirected connection to host:port.
func (p *Proxy) serveConnect(w *countingWriter, r *http.Request, e *audit.Entry) {
	host, port := e.Host, e.Port
	d := p.policy.Decide(host, port, netip.Addr{})
	if !d.Allowed && !isUnresolvedNameDenial(host, d.Reason) {
		e.Decision, e.Reason = "deny", d.Reason
		writeJSON(w, http.StatusForbidden, "berth-auth-proxy: denied: "+d.Reason)
		return
	}
	if !d.Allowed { // a name outside the lists may still resolve into allow.cidrs
		ip, err := p.pickAddr(r.Context(), &connMeta{}, host, false)
		if err == nil {
			d = p.policy.Decide(host, port, ip)
		}
		if !d.Allowed {
			e.Decision, e.Reason = "deny", d.Reason
			writeJSON(w, http.StatusForbidden, "berth-auth-proxy: denied: "+d.Reason)
			return
		}
	}
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		e.Decision, e.Reason = "error", err.Error()
		writeJSON(w, http.StatusInternalServerError, "berth-auth-proxy: cannot hijack: "+err.Error())
		return
	}
	w.status = http.StatusOK
	e.Rule = d.By
	_, _ = brw.WriteString("HTTP/1.1 200 Connection Established\r\n\r\n")
	if err := brw.Flush(); err != nil {
		_ = conn.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	m := &connMeta{mode: "explicit", tunnelled: true, host: host, port: port}
	go p.classify(&prefixConn{Conn: conn, r: brw.Reader}, m)
}

func isUnresolvedNameDenial(host, reason string) bool {
	_, err := netip.ParseAddr(host)
	return err != nil && host != "" && len(reason) > 5 && reason[:5] == "host "
}
