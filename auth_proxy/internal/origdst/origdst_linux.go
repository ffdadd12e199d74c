// Package origdst recovers the destination a connection had before an iptables
// REDIRECT (SO_ORIGINAL_DST), which is how the transparent proxy knows where a
// sandbox process meant to go.
package origdst

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

const soOriginalDst = 80 // SO_ORIGINAL_DST and IP6T_SO_ORIGINAL_DST

// Get returns the pre-NAT destination of c. For a connection that was not
// NATed it returns the local address (or an error when conntrack has no entry).
func Get(c net.Conn) (netip.AddrPort, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return netip.AddrPort{}, errors.New("not a TCP connection")
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	local, _ := netip.ParseAddrPort(c.LocalAddr().String())
	v6 := local.Addr().Is6() && !local.Addr().Is4In6()
	var out netip.AddrPort
	var serr error
	err = raw.Control(func(fd uintptr) {
		var buf [28]byte // sockaddr_in6 is the larger one
		size := uint32(len(buf))
		level := syscall.SOL_IP
		if v6 {
			level = syscall.SOL_IPV6
		}
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, uintptr(level), soOriginalDst,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		if errno != 0 {
			serr = errno
			return
		}
		port := binary.BigEndian.Uint16(buf[2:4])
		if v6 {
			out = netip.AddrPortFrom(netip.AddrFrom16([16]byte(buf[8:24])), port)
		} else {
			out = netip.AddrPortFrom(netip.AddrFrom4([4]byte(buf[4:8])), port)
		}
	})
	if err != nil {
		return netip.AddrPort{}, err
	}
	return out, serr
}
