// Package secrets serves secret file contents to the injector and re-reads a file
// when it changes on disk (Kubernetes swaps the ..data symlink of a Secret volume),
// so rotated keys apply without a restart.
package secrets

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"time"
)

type entry struct {
	value   string
	modTime time.Time
	size    int64
	err     error
}

// Store caches secret files and refreshes them by polling their metadata.
type Store struct {
	mu      sync.RWMutex
	entries map[string]*entry
}

// NewStore loads every path once (missing files are recorded, not fatal: the
// Secret may appear later).
func NewStore(paths []string) *Store {
	s := &Store{entries: map[string]*entry{}}
	for _, p := range paths {
		s.entries[p] = load(p)
	}
	return s
}

func load(path string) *entry {
	st, err := os.Stat(path)
	if err != nil {
		return &entry{err: err}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return &entry{err: err}
	}
	return &entry{value: string(bytes.TrimRight(raw, "\r\n")), modTime: st.ModTime(), size: st.Size()}
}

// Get returns the current value of a secret file. Errors never contain the value.
func (s *Store) Get(path string) (string, error) {
	s.mu.RLock()
	e, ok := s.entries[path]
	s.mu.RUnlock()
	if !ok {
		e = load(path)
		s.mu.Lock()
		s.entries[path] = e
		s.mu.Unlock()
	}
	if e.err != nil {
		return "", fmt.Errorf("secret file %s unavailable: %w", path, e.err)
	}
	return e.value, nil
}

// Refresh re-reads files whose mtime or size changed (or that were missing).
func (s *Store) Refresh() {
	s.mu.RLock()
	paths := make([]string, 0, len(s.entries))
	for p := range s.entries {
		paths = append(paths, p)
	}
	s.mu.RUnlock()
	for _, p := range paths {
		st, err := os.Stat(p)
		s.mu.RLock()
		old := s.entries[p]
		s.mu.RUnlock()
		if err == nil && old.err == nil && st.ModTime().Equal(old.modTime) && st.Size() == old.size {
			continue
		}
		e := load(p)
		s.mu.Lock()
		s.entries[p] = e
		s.mu.Unlock()
	}
}

// Watch calls Refresh every interval until ctx ends.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Refresh()
		}
	}
}
