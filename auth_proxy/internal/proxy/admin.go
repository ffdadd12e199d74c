package proxy

import (
	"net/http"
	"strings"

	"github.com/berth-dev/berth/auth_proxy/internal/config"
	"github.com/berth-dev/berth/auth_proxy/internal/inject"
)

// AdminHandler serves /healthz (process alive) and /readyz (every secret file
// readable; the body names missing files, never values). Bind it to loopback only.
func AdminHandler(cfg *config.Config, store inject.Secrets) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		var missing []string
		for _, f := range SecretFiles(cfg) {
			if _, err := store.Get(f); err != nil {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, "secret files unavailable: "+strings.Join(missing, ", "))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// SecretFiles lists every secretFile the rules reference.
func SecretFiles(cfg *config.Config) []string {
	var out []string
	for _, r := range cfg.Rules {
		for _, h := range r.Headers {
			if h.SecretFile != "" {
				out = append(out, h.SecretFile)
			}
		}
	}
	return out
}
