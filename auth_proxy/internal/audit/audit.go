// Package audit writes one JSON line per proxied request or tunnel. Lines carry
// host, method, path (no query string), rule, status, bytes and duration, never
// header values, so no secret can reach the log.
package audit

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Entry is one audit line.
type Entry struct {
	Time       time.Time `json:"ts"`
	Mode       string    `json:"mode"` // transparent | explicit
	Host       string    `json:"host"`
	Port       int       `json:"port"`
	Method     string    `json:"method"` // HTTP method, or TUNNEL for passthrough/raw
	Path       string    `json:"path,omitempty"`
	Rule       string    `json:"rule,omitempty"`
	Decision   string    `json:"decision"` // allow | deny | error
	Reason     string    `json:"reason,omitempty"`
	Status     int       `json:"status"`
	Bytes      int64     `json:"bytes"`
	DurationMS float64   `json:"duration_ms"`
}

// Logger serialises entries to one writer.
type Logger struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// New logs to w (stdout in the sidecar).
func New(w io.Writer) *Logger { return &Logger{enc: json.NewEncoder(w)} }

// Log writes one line; errors are ignored (the log must not stop traffic).
func (l *Logger) Log(e Entry) {
	if l == nil {
		return
	}
	e.DurationMS = float64(int64(e.DurationMS*1000)) / 1000
	l.mu.Lock()
	_ = l.enc.Encode(e)
	l.mu.Unlock()
}
