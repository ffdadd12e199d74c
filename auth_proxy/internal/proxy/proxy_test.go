package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth_proxy/internal/audit"
	"github.com/berth-dev/berth/auth_proxy/internal/certs"
	"github.com/berth-dev/berth/auth_proxy/internal/config"
	"github.com/berth-dev/berth/auth_proxy/internal/secrets"
)

const secretValue = "sk-secret-123"

func newAuthority(t testing.TB, cn string) *certs.Authority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := certs.New(tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	upstreamCA, poolCA *certs.Authority
	upstreamPort       int
	seen               chan http.Header
	secretFile         string
	store              *secrets.Store
	auditLog           *syncBuffer
	cfg                *config.Config
}

func newHarness(t testing.TB) *harness {
	h := &harness{upstreamCA: newAuthority(t, "upstream CA"), poolCA: newAuthority(t, "pool CA"), seen: make(chan http.Header, 16), auditLog: &syncBuffer{}}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.seen <- r.Header.Clone()
		fmt.Fprintf(w, "upstream %s %s", r.Host, r.URL.Path)
	}))
	up.TLS = &tls.Config{GetCertificate: func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
		return h.upstreamCA.Leaf(hi.ServerName)
	}}
	up.StartTLS()
	t.Cleanup(up.Close)
	h.upstreamPort = up.Listener.Addr().(*net.TCPAddr).Port
	h.secretFile = filepath.Join(t.TempDir(), "api-key")
	if err := os.WriteFile(h.secretFile, []byte(secretValue+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw := fmt.Sprintf(`{
	  "caCertFile": "unused", "caKeyFile": "unused",
	  "rules": [
	    {"name": "api", "hosts": ["api.test"], "pathPrefix": "/v1/",
	     "headers": [{"name": "Authorization", "value": "Bearer {secret}", "secretFile": %q}]},
	    {"name": "ph", "hosts": ["ph.test"], "placeholder": "berth-ph",
	     "headers": [{"name": "X-Api-Key", "value": "{secret}", "secretFile": %q}]}
	  ],
	  "allow": {"hosts": ["open.test"], "ports": [%d, 80]},
	  "passthrough": ["pass.test"],
	  "denyCidrs": ["169.254.0.0/16"]
	}`, h.secretFile, h.secretFile, h.upstreamPort)
	cfg, err := config.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = cfg
	h.store = secrets.NewStore(SecretFiles(cfg))
	return h
}

// start runs a proxy; origDst simulates an iptables REDIRECT when set.
func (h *harness) start(t testing.TB, origDst func(net.Conn) (netip.AddrPort, error)) string {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(h.upstreamCA.CACert())
	if origDst == nil {
		origDst = func(net.Conn) (netip.AddrPort, error) { return netip.AddrPort{}, errors.New("not redirected") }
	}
	p := New(Options{
		Config: h.cfg, CA: h.poolCA, Secrets: h.store, Audit: audit.New(h.auditLog), UpstreamRoots: roots,
		OrigDst: origDst,
		Resolve: func(_ context.Context, host string) ([]netip.Addr, error) {
			if strings.HasSuffix(host, ".test") {
				return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
			}
			return nil, errors.New("no such host")
		},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.Serve(ln) }()
	t.Cleanup(func() { _ = ln.Close(); p.Close() })
	return ln.Addr().String()
}

func (h *harness) client(proxyAddr string, roots *certs.Authority) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(roots.CACert())
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: proxyAddr}),
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
}

func get(t *testing.T, c *http.Client, u string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestExplicitModeInjectsDeniesAndAudits(t *testing.T) {
	h := newHarness(t)
	addr := h.start(t, nil)
	c := h.client(addr, h.poolCA)
	base := fmt.Sprintf("https://api.test:%d", h.upstreamPort)

	resp, body := get(t, c, base+"/v1/chat", map[string]string{"Authorization": "Bearer fake"})
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "upstream api.test") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if got := (<-h.seen).Get("Authorization"); got != "Bearer "+secretValue {
		t.Errorf("upstream saw Authorization %q", got)
	}
	if issuer := resp.TLS.PeerCertificates[0].Issuer.CommonName; issuer != "pool CA" {
		t.Errorf("intercepted leaf issued by %q", issuer)
	}
	// Outside the path prefix: forwarded, nothing injected.
	get(t, c, base+"/other", map[string]string{"Authorization": "Bearer mine"})
	if got := (<-h.seen).Get("Authorization"); got != "Bearer mine" {
		t.Errorf("outside pathPrefix got %q", got)
	}

	// Rotation: the next request uses the new value.
	if err := os.WriteFile(h.secretFile, []byte("sk-rotated-4567"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.store.Refresh()
	get(t, c, base+"/v1/x", nil)
	if got := (<-h.seen).Get("Authorization"); got != "Bearer sk-rotated-4567" {
		t.Errorf("after rotation got %q", got)
	}

	// Placeholder: refused without it (403 from the proxy), injected with it.
	ph := fmt.Sprintf("https://ph.test:%d/x", h.upstreamPort)
	resp, body = get(t, c, ph, nil)
	if resp.StatusCode != 403 || !strings.Contains(body, "placeholder") || strings.Contains(body, "sk-") {
		t.Errorf("no placeholder: %d %q", resp.StatusCode, body)
	}
	resp, _ = get(t, c, ph, map[string]string{"X-Api-Key": "berth-ph"})
	if resp.StatusCode != 200 {
		t.Fatalf("placeholder request: %d", resp.StatusCode)
	}
	if got := (<-h.seen).Get("X-Api-Key"); got != "sk-rotated-4567" {
		t.Errorf("placeholder replaced by %q", got)
	}

	// Denied host: CONNECT answered 403 naming the host and the missing rule.
	status, body := rawConnect(t, addr, fmt.Sprintf("evil.test:%d", h.upstreamPort))
	if status != 403 || !strings.Contains(body, `evil.test`) || !strings.Contains(body, "allow.hosts") {
		t.Errorf("evil CONNECT: %d %q", status, body)
	}
	// Denied port.
	status, body = rawConnect(t, addr, "open.test:8444")
	if status != 403 || !strings.Contains(body, "allow.ports") {
		t.Errorf("port: %d %q", status, body)
	}
	// Metadata address over plain HTTP (absolute URI): 403 naming denyCidrs.
	resp, body = get(t, c, "http://169.254.169.254/latest/meta-data/", nil)
	if resp.StatusCode != 403 || !strings.Contains(body, "denyCidrs 169.254.0.0/16") {
		t.Errorf("metadata: %d %q", resp.StatusCode, body)
	}
	// A rule host over plain HTTP: refused, the credential never goes out in clear text.
	resp, body = get(t, c, "http://api.test/v1/plain", nil)
	if resp.StatusCode != 403 || !strings.Contains(body, "HTTPS only") {
		t.Errorf("plain HTTP to a rule host: %d %q", resp.StatusCode, body)
	}
	// Not a proxy request.
	plain, _ := http.Get("http://" + addr + "/")
	if plain.StatusCode != 400 {
		t.Errorf("origin-form request to the proxy: %d", plain.StatusCode)
	}
	plain.Body.Close()

	// Passthrough: the client sees the upstream's own certificate.
	pc := h.client(addr, h.upstreamCA)
	resp, body = get(t, pc, fmt.Sprintf("https://pass.test:%d/p", h.upstreamPort), map[string]string{"Authorization": "Bearer own"})
	if resp.StatusCode != 200 || resp.TLS.PeerCertificates[0].Issuer.CommonName != "upstream CA" {
		t.Errorf("passthrough: %d %q", resp.StatusCode, body)
	}
	if got := (<-h.seen).Get("Authorization"); got != "Bearer own" {
		t.Errorf("passthrough modified headers: %q", got)
	}

	pc.CloseIdleConnections()
	logText := waitAudit(t, h.auditLog, `"method":"TUNNEL"`)
	if strings.Contains(logText, "sk-") {
		t.Fatalf("audit log contains a secret:\n%s", logText)
	}
	var sawRule bool
	for _, line := range strings.Split(strings.TrimSpace(logText), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line is not JSON: %q", line)
		}
		for _, k := range []string{"host", "method", "status", "bytes", "duration_ms", "decision"} {
			if _, ok := e[k]; !ok {
				t.Errorf("audit line lacks %s: %s", k, line)
			}
		}
		if e["rule"] == "rule api" && e["path"] == "/v1/chat" && e["status"] == float64(200) {
			sawRule = true
		}
	}
	if !sawRule {
		t.Errorf("no audit line for the injected request:\n%s", logText)
	}
}

func TestTransparentModeUsesOriginalDestination(t *testing.T) {
	h := newHarness(t)
	upstream := netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", h.upstreamPort))
	addr := h.start(t, func(net.Conn) (netip.AddrPort, error) { return upstream, nil })
	pool := x509.NewCertPool()
	pool.AddCert(h.poolCA.CACert())

	do := func(sni, path string) (int, string) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, RootCAs: pool})
		if err != nil {
			t.Fatalf("TLS to %s through the redirect: %v", sni, err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, sni)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, body := do("api.test", "/v1/t"); status != 200 {
		t.Fatalf("transparent: %d %q", status, body)
	}
	if got := (<-h.seen).Get("Authorization"); got != "Bearer "+secretValue {
		t.Errorf("transparent injection got %q", got)
	}
	if status, body := do("evil.test", "/"); status != 403 || !strings.Contains(body, "evil.test") {
		t.Errorf("transparent deny: %d %q", status, body)
	}
	// A forged Host inside an allowed TLS session is refused.
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "api.test", RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /v1/x HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("forged Host: %v %v", resp, err)
	}
}

func rawConnect(t *testing.T, proxyAddr, target string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func waitAudit(t *testing.T, b *syncBuffer, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s := b.String(); strings.Contains(s, want) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("audit log never contained %s:\n%s", want, b.String())
	return ""
}

func TestAdminReadiness(t *testing.T) {
	h := newHarness(t)
	srv := httptest.NewServer(AdminHandler(h.cfg, h.store))
	defer srv.Close()
	resp, _ := http.Get(srv.URL + "/readyz")
	if resp.StatusCode != 200 {
		t.Errorf("readyz with secrets present: %d", resp.StatusCode)
	}
	resp.Body.Close()
	if err := os.Remove(h.secretFile); err != nil {
		t.Fatal(err)
	}
	h.store.Refresh()
	resp, _ = http.Get(srv.URL + "/readyz")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), h.secretFile) || strings.Contains(string(body), secretValue) {
		t.Errorf("readyz without the secret: %d %s", resp.StatusCode, body)
	}
}
