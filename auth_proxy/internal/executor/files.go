package executor

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	defaultReadLimit = 2000
	maxGrepFileSize  = 16 << 20
	maxWalkEntries   = 200000
)

type fileInfo struct {
	Path       string `json:"path"`
	IsDir      bool   `json:"isDir"`
	Size       int64  `json:"size"`
	ModifiedAt string `json:"modifiedAt"`
}

func infoOf(path string, fi fs.FileInfo) fileInfo {
	return fileInfo{Path: path, IsDir: fi.IsDir(), Size: fi.Size(), ModifiedAt: fi.ModTime().UTC().Format(time.RFC3339)}
}

// writeFileAtomic writes via a temp file in the same directory, keeping the mode
// of an existing file, so a reader never sees half a file.
func writeFileAtomic(path string, r io.Reader) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	mode := fs.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		if st.IsDir() {
			return 0, fmt.Errorf("%s is a directory", path)
		}
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".berth-write-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), mode)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return 0, err
	}
	return n, nil
}

func (s *Server) putFile(w http.ResponseWriter, r *http.Request) {
	path, ok := absPath(w, r.URL.Query().Get("path"), "path")
	if !ok {
		return
	}
	n, err := writeFileAtomic(path, r.Body)
	if err != nil {
		fsErr(w, err, path)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"path": path, "size": n})
}

func (s *Server) getFile(w http.ResponseWriter, r *http.Request) {
	path, ok := absPath(w, r.URL.Query().Get("path"), "path")
	if !ok {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		fsErr(w, err, path)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fsErr(w, err, path)
		return
	}
	if st.IsDir() {
		writeErr(w, http.StatusBadRequest, path+" is a directory")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request) {
	path, ok := absPath(w, r.URL.Query().Get("path"), "path")
	if !ok {
		return
	}
	if err := os.Remove(path); err != nil {
		fsErr(w, err, path)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"path": path})
}

func (s *Server) ls(w http.ResponseWriter, r *http.Request) {
	path, ok := absPath(w, r.URL.Query().Get("path"), "path")
	if !ok {
		return
	}
	st, err := os.Stat(path)
	if err != nil {
		fsErr(w, err, path)
		return
	}
	if !st.IsDir() {
		writeErr(w, http.StatusBadRequest, path+" is not a directory")
		return
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		fsErr(w, err, path)
		return
	}
	out := make([]fileInfo, 0, len(entries))
	for _, e := range entries {
		fi, err := os.Stat(filepath.Join(path, e.Name())) // follow symlinks
		if err != nil {
			if fi, err = e.Info(); err != nil {
				continue
			}
		}
		out = append(out, infoOf(filepath.Join(path, e.Name()), fi))
	}
	writeJSON(w, http.StatusOK, out)
}

type readRequest struct {
	Path   string `json:"path"`
	Offset *int   `json:"offset"`
	Limit  *int   `json:"limit"`
}

func splitLines(text string) []string {
	if text == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(text, "\n"), "\n")
}

func (s *Server) read(w http.ResponseWriter, r *http.Request) {
	var req readRequest
	if !decode(w, r, &req) {
		return
	}
	path, ok := absPath(w, req.Path, "path")
	if !ok {
		return
	}
	offset, limit := 0, defaultReadLimit
	if req.Offset != nil && *req.Offset > 0 {
		offset = *req.Offset
	}
	if req.Limit != nil {
		limit = *req.Limit
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		fsErr(w, err, path)
		return
	}
	if limit <= 0 {
		writeJSON(w, http.StatusOK, map[string]any{"content": "", "encoding": "utf-8", "totalLines": nil, "startLine": nil, "endLine": nil, "nextOffset": nil})
		return
	}
	if !utf8.Valid(raw) {
		writeJSON(w, http.StatusOK, map[string]any{"content": base64.StdEncoding.EncodeToString(raw), "encoding": "base64", "totalLines": nil, "startLine": nil, "endLine": nil, "nextOffset": nil})
		return
	}
	lines := splitLines(string(raw))
	if len(lines) == 0 {
		writeJSON(w, http.StatusOK, map[string]any{"content": "", "encoding": "utf-8", "totalLines": 0, "startLine": nil, "endLine": nil, "nextOffset": nil})
		return
	}
	if offset >= len(lines) {
		writeErr(w, http.StatusBadRequest, fmt.Sprintf("Line offset %d exceeds file length (%d lines)", offset, len(lines)))
		return
	}
	end := min(offset+limit, len(lines))
	var next any
	if end < len(lines) {
		next = end
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"content": strings.Join(lines[offset:end], "\n"), "encoding": "utf-8",
		"totalLines": len(lines), "startLine": offset + 1, "endLine": end, "nextOffset": next,
	})
}

type writeRequest struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

func (s *Server) write(w http.ResponseWriter, r *http.Request) {
	var req writeRequest
	if !decode(w, r, &req) {
		return
	}
	path, ok := absPath(w, req.Path, "path")
	if !ok {
		return
	}
	if _, err := writeFileAtomic(path, strings.NewReader(req.Content)); err != nil {
		fsErr(w, err, path)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"path": path})
}

type editRequest struct {
	Path       string `json:"path"`
	Old        string `json:"old"`
	New        string `json:"new"`
	ReplaceAll bool   `json:"replaceAll"`
}

// Edit applies deepagents' edit semantics to content: old must occur, and
// exactly once unless replaceAll.
func Edit(content, old, repl string, replaceAll bool) (string, int, error) {
	if old == "" {
		return "", 0, fmt.Errorf("old must not be empty")
	}
	if old == repl {
		return "", 0, fmt.Errorf("old and new must differ")
	}
	n := strings.Count(content, old)
	if n == 0 {
		return "", 0, fmt.Errorf("String not found in file: %q", old)
	}
	if n > 1 && !replaceAll {
		return "", 0, fmt.Errorf("String %q appears %d times in file. Use replaceAll=true to replace all instances, or provide a more specific string with surrounding context.", old, n)
	}
	if replaceAll {
		return strings.ReplaceAll(content, old, repl), n, nil
	}
	return strings.Replace(content, old, repl, 1), 1, nil
}

func (s *Server) edit(w http.ResponseWriter, r *http.Request) {
	var req editRequest
	if !decode(w, r, &req) {
		return
	}
	path, ok := absPath(w, req.Path, "path")
	if !ok {
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		fsErr(w, err, path)
		return
	}
	updated, n, err := Edit(string(raw), req.Old, req.New, req.ReplaceAll)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, err := writeFileAtomic(path, strings.NewReader(updated)); err != nil {
		fsErr(w, err, path)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"path": path, "occurrences": n})
}

type globRequest struct {
	Pattern string `json:"pattern"`
	Path    string `json:"path"`
}

// walkFiles calls fn for every regular file under root with its slash path
// relative to root; it stops after maxWalkEntries entries.
func walkFiles(root string, fn func(rel string, path string, fi fs.FileInfo) bool) error {
	count := 0
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil // unreadable subtree: skip
		}
		count++
		if count > maxWalkEntries {
			return filepath.SkipAll
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if !fn(filepath.ToSlash(rel), p, fi) {
			return filepath.SkipAll
		}
		return nil
	})
}

func (s *Server) glob(w http.ResponseWriter, r *http.Request) {
	var req globRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Path == "" {
		req.Path = "/"
	}
	root, ok := absPath(w, req.Path, "path")
	if !ok {
		return
	}
	m, err := NewGlob(req.Pattern)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	out := []fileInfo{}
	if err := walkFiles(root, func(rel, p string, fi fs.FileInfo) bool {
		if m.Match(rel) {
			out = append(out, infoOf(p, fi))
		}
		return true
	}); err != nil {
		fsErr(w, err, root)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type grepRequest struct {
	Pattern  string `json:"pattern"`
	Path     string `json:"path"`
	Glob     string `json:"glob"`
	MaxCount int    `json:"maxCount"`
}

type grepMatch struct {
	Path string `json:"path"`
	Line int    `json:"line"`
	Text string `json:"text"`
}

func (s *Server) grep(w http.ResponseWriter, r *http.Request) {
	var req grepRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Pattern == "" {
		writeErr(w, http.StatusBadRequest, "pattern must not be empty")
		return
	}
	if req.Path == "" {
		req.Path = "/"
	}
	root, ok := absPath(w, req.Path, "path")
	if !ok {
		return
	}
	var m *Glob
	if req.Glob != "" {
		var err error
		if m, err = NewGlob(req.Glob); err != nil {
			writeErr(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	out := []grepMatch{}
	needle := []byte(req.Pattern)
	st, err := os.Stat(root)
	if err != nil {
		fsErr(w, err, root)
		return
	}
	scan := func(p string) bool {
		f, err := os.Open(p)
		if err != nil {
			return true
		}
		defer f.Close()
		br := bufio.NewReaderSize(f, 64<<10)
		if head, _ := br.Peek(8000); bytes.IndexByte(head, 0) >= 0 {
			return true // binary
		}
		sc := bufio.NewScanner(br)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for n := 1; sc.Scan(); n++ {
			if bytes.Contains(sc.Bytes(), needle) {
				out = append(out, grepMatch{Path: p, Line: n, Text: sc.Text()})
				if req.MaxCount > 0 && len(out) >= req.MaxCount {
					return false
				}
			}
		}
		return true
	}
	if !st.IsDir() {
		scan(root)
	} else if err := walkFiles(root, func(rel, p string, fi fs.FileInfo) bool {
		if fi.Size() > maxGrepFileSize || (m != nil && !m.Match(rel)) {
			return true
		}
		return scan(p)
	}); err != nil {
		fsErr(w, err, root)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
