//go:build tools

// Package tools pins kube-apiserver and kube-controller-manager v1.30.14 for tools/build-controlplane.sh.
// (The `tool` directive of go.mod needs a go line of 1.24 or newer; this module keeps Kubernetes 1.30's
// own go line, 1.22.0, so the binaries get the GODEBUG defaults that Kubernetes 1.30 was released with.)
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
