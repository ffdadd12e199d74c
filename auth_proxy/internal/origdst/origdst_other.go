//go:build !linux

// Package origdst: transparent redirection needs Linux netfilter.
package origdst

import (
	"errors"
	"net"
	"net/netip"
)

// Get is unsupported off Linux; every connection is treated as explicit.
func Get(net.Conn) (netip.AddrPort, error) {
	return netip.AddrPort{}, errors.New("SO_ORIGINAL_DST needs Linux")
}
