//go:build tools

// Package coredns pins the cluster DNS server of Berth's real test node.
package coredns

import (
	_ "github.com/coredns/coredns"
)
