//go:build tools

// Package kuberouter pins the NetworkPolicy engine of Berth's real test node.
package kuberouter

import (
	_ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
)
