//go:build tools

// Package containerd pins the container runtime of Berth's real test node:
// containerd, its runc shim and ctr, built from the official Go module.
package containerd

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
