//go:build tools

// Package kwok pins kwok, the fake-node controller that makes Pods Running and
// Ready in Berth's local test control plane.
package kwok

import _ "sigs.k8s.io/kwok/cmd/kwok"
