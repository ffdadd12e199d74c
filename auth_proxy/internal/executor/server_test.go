package executor

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const token = "0123456789abcdef-claim-token"

func newServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	hashFile := filepath.Join(t.TempDir(), "executor-token-sha256")
	sum := sha256.Sum256([]byte(token))
	if err := os.WriteFile(hashFile, []byte(hex.EncodeToString(sum[:])+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&Server{TokenHashFile: hashFile}).Handler())
	t.Cleanup(srv.Close)
	return srv, hashFile
}

func call(t *testing.T, srv *httptest.Server, method, path string, body any, hdr map[string]string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func TestTokenChecks(t *testing.T) {
	srv, hashFile := newServer(t)
	body := map[string]any{"path": "/"}
	if code, _ := call(t, srv, "POST", "/v1/glob", map[string]any{"pattern": "nothing-here-*", "path": t.TempDir()}, nil); code != 200 {
		t.Fatalf("good token: %d", code)
	}
	for name, hdr := range map[string]map[string]string{
		"missing": {"Authorization": ""}, "wrong": {"Authorization": "Bearer nope"}, "not bearer": {"Authorization": token},
	} {
		code, out := call(t, srv, "POST", "/v1/read", body, hdr)
		if code != 401 || !strings.Contains(string(out), "detail") {
			t.Errorf("%s: %d %s", name, code, out)
		}
	}
	// Empty hash file (warm, unclaimed Pod): every request is refused, re-read per request.
	if err := os.WriteFile(hashFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := call(t, srv, "POST", "/v1/read", body, nil); code != 401 || !strings.Contains(string(out), "not claimed") {
		t.Errorf("empty hash: %d %s", code, out)
	}
	if resp, err := http.Get(srv.URL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz needs no token: %v %v", resp, err)
	}
}

func TestExecStreamsAndReportsExit(t *testing.T) {
	srv, _ := newServer(t)
	dir := t.TempDir()
	code, out := call(t, srv, "POST", "/v1/exec", map[string]any{
		"command": `echo out-$FOO; pwd; echo err >&2; printf 'caf\303\251'; exit 3`, "cwd": dir, "env": map[string]string{"FOO": "bar"},
	}, nil)
	if code != 200 {
		t.Fatalf("%d %s", code, out)
	}
	var stdout, stderr strings.Builder
	var final map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not NDJSON: %q", sc.Text())
		}
		switch line["stream"] {
		case "stdout":
			stdout.WriteString(line["data"].(string))
		case "stderr":
			stderr.WriteString(line["data"].(string))
		default:
			final = line
		}
	}
	if stdout.String() != "out-bar\n"+dir+"\ncafé" || stderr.String() != "err\n" {
		t.Errorf("stdout=%q stderr=%q", stdout.String(), stderr.String())
	}
	if final["exitCode"] != float64(3) || final["timedOut"] != false {
		t.Errorf("final line %v", final)
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	srv, _ := newServer(t)
	marker := filepath.Join(t.TempDir(), "survived")
	start := time.Now()
	code, out := call(t, srv, "POST", "/v1/exec", map[string]any{
		"command": fmt.Sprintf("echo started; (sleep 3; touch %s) & sleep 30", marker), "timeoutSeconds": 0.5,
	}, map[string]string{"Accept": "application/json"})
	if code != 200 {
		t.Fatalf("%d %s", code, out)
	}
	var res struct {
		Output   string `json:"output"`
		ExitCode int    `json:"exitCode"`
		TimedOut bool   `json:"timedOut"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.ExitCode != 124 || res.Output != "started\n" {
		t.Errorf("got %+v", res)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("timeout took %s", el)
	}
	time.Sleep(3500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Error("a background child outlived the timeout")
	}
}

func TestExecBadInput(t *testing.T) {
	srv, _ := newServer(t)
	for _, body := range []map[string]any{
		{"command": ""}, {"command": "true", "cwd": "relative"}, {"command": "true", "cwd": "/does/not/exist"},
		{"command": "true", "timeoutSeconds": 99999}, {"command": "true", "bogus": 1},
	} {
		if code, out := call(t, srv, "POST", "/v1/exec", body, nil); code != 400 || !strings.Contains(string(out), "detail") {
			t.Errorf("%v: %d %s", body, code, out)
		}
	}
}

func TestFilesReadWriteEdit(t *testing.T) {
	srv, _ := newServer(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "a.txt")
	if code, out := call(t, srv, "PUT", "/v1/files?path="+p, []byte("one\ntwo\nthree\n"), nil); code != 200 {
		t.Fatalf("put: %d %s", code, out)
	}
	if code, out := call(t, srv, "GET", "/v1/files?path="+p, nil, nil); code != 200 || string(out) != "one\ntwo\nthree\n" {
		t.Errorf("get: %d %q", code, out)
	}
	if code, _ := call(t, srv, "GET", "/v1/files?path="+dir+"/missing", nil, nil); code != 404 {
		t.Errorf("missing file: %d", code)
	}
	if code, _ := call(t, srv, "GET", "/v1/files?path=rel", nil, nil); code != 400 {
		t.Errorf("relative path: %d", code)
	}
	code, out := call(t, srv, "POST", "/v1/read", map[string]any{"path": p, "offset": 1, "limit": 1}, nil)
	var rd map[string]any
	_ = json.Unmarshal(out, &rd)
	if code != 200 || rd["content"] != "two" || rd["startLine"] != float64(2) || rd["nextOffset"] != float64(2) || rd["totalLines"] != float64(3) {
		t.Errorf("read window: %d %s", code, out)
	}
	if code, out := call(t, srv, "POST", "/v1/read", map[string]any{"path": p, "offset": 9}, nil); code != 400 || !strings.Contains(string(out), "exceeds") {
		t.Errorf("offset past end: %d %s", code, out)
	}

	// Edit semantics: unique match, replaceAll, not found, ambiguous, empty.
	call(t, srv, "POST", "/v1/write", map[string]any{"path": p, "content": "x = 1\ny = 1\n"}, nil)
	if code, out := call(t, srv, "POST", "/v1/edit", map[string]any{"path": p, "old": "= 1", "new": "= 2"}, nil); code != 400 || !strings.Contains(string(out), "appears 2 times") {
		t.Errorf("ambiguous: %d %s", code, out)
	}
	if code, out := call(t, srv, "POST", "/v1/edit", map[string]any{"path": p, "old": "zzz", "new": "q"}, nil); code != 400 || !strings.Contains(string(out), "String not found") {
		t.Errorf("not found: %d %s", code, out)
	}
	if code, _ := call(t, srv, "POST", "/v1/edit", map[string]any{"path": p, "old": "", "new": "q"}, nil); code != 400 {
		t.Errorf("empty old: %d", code)
	}
	if code, out := call(t, srv, "POST", "/v1/edit", map[string]any{"path": p, "old": "x = 1", "new": "x = 5"}, nil); code != 200 || !strings.Contains(string(out), `"occurrences":1`) {
		t.Errorf("unique: %d %s", code, out)
	}
	if code, out := call(t, srv, "POST", "/v1/edit", map[string]any{"path": p, "old": "1", "new": "9", "replaceAll": true}, nil); code != 200 || !strings.Contains(string(out), `"occurrences":1`) {
		t.Errorf("replaceAll: %d %s", code, out)
	}
	if raw, _ := os.ReadFile(p); string(raw) != "x = 5\ny = 9\n" {
		t.Errorf("after edits: %q", raw)
	}
	if code, _ := call(t, srv, "POST", "/v1/edit", map[string]any{"path": dir + "/nope", "old": "a", "new": "b"}, nil); code != 404 {
		t.Errorf("edit missing: %d", code)
	}
	if code, _ := call(t, srv, "DELETE", "/v1/files?path="+p, nil, nil); code != 200 {
		t.Errorf("delete: %d", code)
	}
}

func TestLsGlobGrep(t *testing.T) {
	srv, _ := newServer(t)
	dir := t.TempDir()
	for name, content := range map[string]string{
		"a.py": "print('TODO one')\n", "src/b.py": "x = 1\n# TODO two\n", "src/c.txt": "TODO three\n",
		".hidden/d.py": "TODO hidden\n", "bin.dat": "TODO\x00binary",
	} {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		_ = os.WriteFile(p, []byte(content), 0o644)
	}
	code, out := call(t, srv, "GET", "/v1/ls?path="+dir, nil, nil)
	var ls []fileInfo
	_ = json.Unmarshal(out, &ls)
	if code != 200 || len(ls) != 4 {
		t.Errorf("ls: %d %s", code, out)
	}
	globPaths := func(pattern string) []string {
		_, out := call(t, srv, "POST", "/v1/glob", map[string]any{"pattern": pattern, "path": dir}, nil)
		var fis []fileInfo
		_ = json.Unmarshal(out, &fis)
		var rel []string
		for _, f := range fis {
			r, _ := filepath.Rel(dir, f.Path)
			rel = append(rel, r)
		}
		return rel
	}
	for pattern, want := range map[string]string{
		"*.py": ".hidden/d.py a.py src/b.py", "**/*.py": "a.py src/b.py", "/*.py": "a.py",
		"src/*.{py,txt}": "src/b.py src/c.txt", "*": ".hidden/d.py a.py bin.dat src/b.py src/c.txt", "**/*": "a.py bin.dat src/b.py src/c.txt",
	} {
		if got := strings.Join(globPaths(pattern), " "); got != want {
			t.Errorf("glob %q = %q, want %q", pattern, got, want)
		}
	}
	code, out = call(t, srv, "POST", "/v1/grep", map[string]any{"pattern": "TODO t", "path": dir, "glob": "*.py"}, nil)
	var matches []grepMatch
	_ = json.Unmarshal(out, &matches)
	if code != 200 || len(matches) != 1 || matches[0].Line != 2 || matches[0].Text != "# TODO two" {
		t.Errorf("grep: %d %s", code, out)
	}
	_, out = call(t, srv, "POST", "/v1/grep", map[string]any{"pattern": "(", "path": dir}, nil)
	if err := json.Unmarshal(out, &matches); err != nil || len(matches) != 1 {
		t.Errorf("grep is literal, not regex: %s", out)
	}
	_, out = call(t, srv, "POST", "/v1/grep", map[string]any{"pattern": "TODO", "path": dir}, nil)
	_ = json.Unmarshal(out, &matches)
	if len(matches) != 4 {
		t.Errorf("grep skips binary files: %s", out)
	}
}
