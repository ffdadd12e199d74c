// Package executor is the in-sandbox HTTP API that runs commands and touches
// files for the runtime's sandbox backend. Every request except /healthz needs
// a bearer token whose sha256 matches the hash file the operator fills on claim.
package executor

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Server holds the token hash file path; everything else is per request.
type Server struct {
	TokenHashFile string
	// MaxBody bounds JSON request bodies and uploads.
	MaxBody int64
}

// Handler returns the routed API.
func (s *Server) Handler() http.Handler {
	if s.MaxBody == 0 {
		s.MaxBody = 256 << 20
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.Handle("POST /v1/exec", s.auth(s.exec))
	mux.Handle("PUT /v1/files", s.auth(s.putFile))
	mux.Handle("GET /v1/files", s.auth(s.getFile))
	mux.Handle("DELETE /v1/files", s.auth(s.deleteFile))
	mux.Handle("GET /v1/ls", s.auth(s.ls))
	mux.Handle("POST /v1/read", s.auth(s.read))
	mux.Handle("POST /v1/write", s.auth(s.write))
	mux.Handle("POST /v1/edit", s.auth(s.edit))
	mux.Handle("POST /v1/glob", s.auth(s.glob))
	mux.Handle("POST /v1/grep", s.auth(s.grep))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// auth re-reads the hash file on every request: kubelet refreshes the
// downwardAPI file when the claim binds or changes, and an empty file means
// the Pod is warm and unclaimed, so every request is refused.
func (s *Server) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := os.ReadFile(s.TokenHashFile)
		want := strings.ToLower(strings.TrimSpace(string(raw)))
		if err != nil || want == "" {
			writeErr(w, http.StatusUnauthorized, "executor is not claimed: the token hash file is empty or missing")
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			writeErr(w, http.StatusUnauthorized, "missing bearer token")
			return
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		got := hex.EncodeToString(sum[:])
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			writeErr(w, http.StatusUnauthorized, "invalid token")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.MaxBody)
		next(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]string{"detail": detail})
}

// decode reads a JSON body strictly (unknown fields are a 400).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

// absPath requires an absolute path and cleans it.
func absPath(w http.ResponseWriter, p, field string) (string, bool) {
	if p == "" || !filepath.IsAbs(p) {
		writeErr(w, http.StatusBadRequest, fmt.Sprintf("%s must be an absolute path, got %q", field, p))
		return "", false
	}
	return filepath.Clean(p), true
}

// fsErr maps filesystem errors to 404/403/400.
func fsErr(w http.ResponseWriter, err error, path string) {
	switch {
	case errors.Is(err, os.ErrNotExist):
		writeErr(w, http.StatusNotFound, "not found: "+path)
	case errors.Is(err, os.ErrPermission):
		writeErr(w, http.StatusForbidden, "permission denied: "+path)
	default:
		writeErr(w, http.StatusBadRequest, err.Error())
	}
}
