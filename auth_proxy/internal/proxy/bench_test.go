package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// BenchmarkKeepAlive compares one HTTPS request on a kept-alive connection made
// directly to the upstream with the same request through the proxy (TLS
// intercepted, header injected). go test -bench KeepAlive -run ^$ ./internal/proxy/
func BenchmarkKeepAlive(b *testing.B) {
	h := newHarness(b)
	addr := h.start(b, nil)
	upstreamPool := x509.NewCertPool()
	upstreamPool.AddCert(h.upstreamCA.CACert())
	poolCA := x509.NewCertPool()
	poolCA.AddCert(h.poolCA.CACert())
	go func() {
		for range h.seen { // drain the upstream's header log
		}
	}()
	target := fmt.Sprintf("https://api.test:%d/v1/bench", h.upstreamPort)
	clients := map[string]*http.Client{
		"direct": {Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: upstreamPool, ServerName: "api.test"},
		}},
		"proxy": {Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: addr}),
			TLSClientConfig: &tls.Config{RootCAs: poolCA},
		}},
	}
	for _, name := range []string{"direct", "proxy"} {
		c := clients[name]
		u := target
		if name == "direct" {
			u = fmt.Sprintf("https://127.0.0.1:%d/v1/bench", h.upstreamPort)
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				req, _ := http.NewRequest(http.MethodGet, u, nil)
				req.Host = "api.test"
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
