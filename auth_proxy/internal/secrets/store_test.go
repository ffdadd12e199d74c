package secrets

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReloadOnChangeAndSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	// Lay the file out like a Kubernetes Secret volume: key -> ..data/key, ..data -> ..v1.
	mustWrite(t, filepath.Join(dir, "..v1", "api-key"), "first-key\n")
	mustSymlink(t, "..v1", filepath.Join(dir, "..data"))
	mustSymlink(t, "..data/api-key", filepath.Join(dir, "api-key"))
	path := filepath.Join(dir, "api-key")
	s := NewStore([]string{path})
	if v, err := s.Get(path); err != nil || v != "first-key" {
		t.Fatalf("got %q %v", v, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Watch(ctx, 20*time.Millisecond)

	mustWrite(t, filepath.Join(dir, "..v2", "api-key"), "second-key-longer\n")
	mustSymlink(t, "..v2", filepath.Join(dir, "..data.tmp"))
	if err := os.Rename(filepath.Join(dir, "..data.tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, path, "second-key-longer")
}

func TestMissingThenCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	s := NewStore([]string{path})
	if _, err := s.Get(path); err == nil {
		t.Fatal("missing file must error")
	}
	mustWrite(t, path, "late")
	s.Refresh()
	if v, err := s.Get(path); err != nil || v != "late" {
		t.Fatalf("got %q %v", v, err)
	}
	mustWrite(t, path, "")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	s.Refresh()
	_, err := s.Get(path)
	if err == nil || strings.Contains(err.Error(), "late") {
		t.Fatalf("removed file must error without the value: %v", err)
	}
}

func waitFor(t *testing.T, s *Store, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if v, _ := s.Get(path); v == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	v, err := s.Get(path)
	t.Fatalf("never reloaded: %q %v", v, err)
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
