//go:build tools

// Package controlplane pins the Kubernetes commands that Berth's tests run as
// a real local control plane; `go build` of each path below produces a binary.
package controlplane

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
