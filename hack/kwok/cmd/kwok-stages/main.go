// Command kwok-stages prints the Stage configuration that kwok ships with
// (fast node initialisation, node heartbeat with leases, fast pod ready,
// complete and delete) as one multi-document YAML, so the local control plane
// runs kwok with exactly the stages of the pinned kwok release.
package main

import (
	"fmt"
	"strings"

	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodelease "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
)

func main() {
	docs := []string{
		nodefast.DefaultNodeInit,
		nodelease.DefaultNodeHeartbeatWithLease,
		podfast.DefaultPodReady,
		podfast.DefaultPodComplete,
		podfast.DefaultPodDelete,
	}
	for i, d := range docs {
		d = strings.TrimSpace(d)
		if !strings.HasPrefix(d, "---") && i > 0 {
			fmt.Println("---")
		}
		fmt.Println(d)
	}
}
