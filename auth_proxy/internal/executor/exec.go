package executor

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
)

const (
	defaultTimeout = 120 * time.Second
	maxTimeout     = time.Hour
	maxJSONOutput  = 1 << 20
	timeoutExit    = 124
)

type execRequest struct {
	Command        string            `json:"command"`
	Cwd            string            `json:"cwd"`
	Env            map[string]string `json:"env"`
	TimeoutSeconds float64           `json:"timeoutSeconds"`
}

// sink receives output chunks in arrival order.
type sink struct {
	mu        sync.Mutex
	stream    bool
	enc       *json.Encoder
	flush     func()
	buf       bytes.Buffer
	truncated bool
}

func (s *sink) emit(stream string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream {
		_ = s.enc.Encode(map[string]string{"stream": stream, "data": string(data)})
		s.flush()
		return
	}
	room := maxJSONOutput - s.buf.Len()
	if len(data) > room {
		data, s.truncated = data[:max(room, 0)], true
	}
	s.buf.Write(data)
}

// streamWriter keeps incomplete UTF-8 sequences until the next write so a
// multi-byte character split across reads is not mangled.
type streamWriter struct {
	name  string
	sink  *sink
	carry []byte
}

func (w *streamWriter) Write(p []byte) (int, error) {
	data := append(w.carry, p...)
	cut := len(data)
	for i := len(data) - 1; i >= 0 && i >= len(data)-utf8.UTFMax; i-- {
		if utf8.RuneStart(data[i]) {
			if !utf8.FullRune(data[i:]) {
				cut = i
			}
			break
		}
	}
	w.carry = append([]byte(nil), data[cut:]...)
	if cut > 0 {
		w.sink.emit(w.name, data[:cut])
	}
	return len(p), nil
}

func (w *streamWriter) close() {
	if len(w.carry) > 0 {
		w.sink.emit(w.name, w.carry)
		w.carry = nil
	}
}

func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	var req execRequest
	if !decode(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Command) == "" {
		writeErr(w, http.StatusBadRequest, "command must not be empty")
		return
	}
	if req.TimeoutSeconds < 0 {
		writeErr(w, http.StatusBadRequest, "timeoutSeconds must not be negative")
		return
	}
	timeout := time.Duration(req.TimeoutSeconds * float64(time.Second))
	if timeout == 0 {
		timeout = defaultTimeout
	}
	if timeout > maxTimeout {
		writeErr(w, http.StatusBadRequest, "timeoutSeconds must be at most 3600")
		return
	}
	cmd := exec.Command("/bin/sh", "-c", req.Command)
	if req.Cwd != "" {
		if !filepath.IsAbs(req.Cwd) {
			writeErr(w, http.StatusBadRequest, "cwd must be an absolute path")
			return
		}
		if st, err := os.Stat(req.Cwd); err != nil || !st.IsDir() {
			writeErr(w, http.StatusBadRequest, "cwd is not a directory: "+req.Cwd)
			return
		}
		cmd.Dir = req.Cwd
	}
	cmd.Env = os.Environ()
	for k, v := range req.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			writeErr(w, http.StatusBadRequest, "invalid env name: "+k)
			return
		}
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second // background children holding the pipes do not hang us

	streaming := !strings.Contains(r.Header.Get("Accept"), "application/json")
	out := &sink{stream: streaming}
	if streaming {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		rc := http.NewResponseController(w)
		out.enc = json.NewEncoder(w)
		out.flush = func() { _ = rc.Flush() }
	}
	stdout, stderr := &streamWriter{name: "stdout", sink: out}, &streamWriter{name: "stderr", sink: out}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		writeErr(w, http.StatusBadRequest, "cannot start command: "+err.Error())
		return
	}
	if streaming {
		out.mu.Lock() // output goroutines may already be writing
		w.WriteHeader(http.StatusOK)
		out.flush()
		out.mu.Unlock()
	}
	done := make(chan struct{})
	var timedOut atomic.Bool
	var killOnce sync.Once
	kill := func() { killOnce.Do(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }) }
	go func() {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-t.C:
			timedOut.Store(true)
			kill()
		case <-r.Context().Done(): // the client went away
			kill()
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	kill() // reap leftovers in the process group once the shell is gone
	stdout.close()
	stderr.close()
	code := cmd.ProcessState.ExitCode()
	var ee *exec.ExitError
	if code == -1 && errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	}
	if timedOut.Load() {
		code = timeoutExit
	}
	if streaming {
		out.mu.Lock()
		_ = out.enc.Encode(map[string]any{"exitCode": code, "timedOut": timedOut.Load()})
		out.mu.Unlock()
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"output": out.buf.String(), "exitCode": code, "truncated": out.truncated, "timedOut": timedOut.Load(),
	})
}
