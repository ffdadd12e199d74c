//go:build tools

// Package controlplane pins the Kubernetes commands that Berth's tests run: the
// local control plane, and the kubelet and kube-proxy of the real e2e node, all
// from one Kubernetes release; `go build` of each path below produces a binary.
package controlplane

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
