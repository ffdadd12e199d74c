// Package sniff reads the TLS SNI from a peeked ClientHello without consuming it,
// so the connection can then be intercepted or tunnelled byte for byte.
package sniff

import (
	"bufio"
	"encoding/binary"
	"errors"
)

// ErrNotTLS means the first record is not a TLS handshake.
var ErrNotTLS = errors.New("not a TLS ClientHello")

// IsTLS reports whether the first byte is a TLS handshake record.
func IsTLS(b byte) bool { return b == 0x16 }

// PeekSNI returns the server_name of the ClientHello at the head of br ("" when
// the client sent none). The bytes stay in the buffer.
func PeekSNI(br *bufio.Reader) (string, error) {
	hdr, err := br.Peek(5)
	if err != nil {
		return "", err
	}
	if hdr[0] != 0x16 || hdr[1] != 3 {
		return "", ErrNotTLS
	}
	n := int(binary.BigEndian.Uint16(hdr[3:5]))
	rec, err := br.Peek(5 + n)
	if err != nil {
		return "", err
	}
	return ParseClientHelloSNI(rec[5:])
}

// ParseClientHelloSNI parses a handshake message (ClientHello) and returns its SNI.
func ParseClientHelloSNI(b []byte) (string, error) {
	bad := errors.New("malformed ClientHello")
	if len(b) < 4 || b[0] != 1 {
		return "", ErrNotTLS
	}
	b = b[4:]
	if len(b) < 34 {
		return "", bad
	}
	b = b[34:] // version + random
	skip := func(lenBytes int) bool {
		if len(b) < lenBytes {
			return false
		}
		n := 0
		for i := 0; i < lenBytes; i++ {
			n = n<<8 | int(b[i])
		}
		if len(b) < lenBytes+n {
			return false
		}
		b = b[lenBytes+n:]
		return true
	}
	if !skip(1) || !skip(2) || !skip(1) { // session id, cipher suites, compression
		return "", bad
	}
	if len(b) == 0 {
		return "", nil
	}
	if len(b) < 2 {
		return "", bad
	}
	exts := b[2:]
	if int(binary.BigEndian.Uint16(b)) < len(exts) {
		exts = exts[:binary.BigEndian.Uint16(b)]
	}
	for len(exts) >= 4 {
		typ, n := binary.BigEndian.Uint16(exts), int(binary.BigEndian.Uint16(exts[2:]))
		if len(exts) < 4+n {
			return "", bad
		}
		data := exts[4 : 4+n]
		exts = exts[4+n:]
		if typ != 0 {
			continue
		}
		if len(data) < 2 {
			return "", bad
		}
		list := data[2:]
		for len(list) >= 3 {
			nameType, l := list[0], int(binary.BigEndian.Uint16(list[1:]))
			if len(list) < 3+l {
				return "", bad
			}
			if nameType == 0 {
				return string(list[3 : 3+l]), nil
			}
			list = list[3+l:]
		}
	}
	return "", nil
}
