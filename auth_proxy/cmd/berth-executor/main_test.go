package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestInstallCopiesItselfAndIsIdempotent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "berth-bin")
	for i := 0; i < 2; i++ {
		if err := install([]string{"--to", dir}); err != nil {
			t.Fatal(err)
		}
	}
	self, _ := os.Executable()
	want, _ := os.ReadFile(self)
	got, err := os.ReadFile(filepath.Join(dir, "berth-executor"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("installed copy differs from the running binary: %v", err)
	}
	st, _ := os.Stat(filepath.Join(dir, "berth-executor"))
	if st.Mode().Perm() != 0o755 {
		t.Errorf("mode %v", st.Mode())
	}
	if err := install(nil); err == nil {
		t.Error("install without --to must fail")
	}
}
