//go:build tools

// Package crane pins github.com/google/go-containerregistry, whose crane command serves the
// local OCI registry the e2e tests push Berth's images to (`crane registry serve`).
package crane

import _ "github.com/google/go-containerregistry/cmd/crane"
