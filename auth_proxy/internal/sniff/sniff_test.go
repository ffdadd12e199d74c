package sniff

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// clientHello captures the bytes a real crypto/tls client sends.
func clientHello(t *testing.T, serverName string) []byte {
	t.Helper()
	c1, c2 := net.Pipe()
	go func() {
		_ = tls.Client(c1, &tls.Config{ServerName: serverName, InsecureSkipVerify: true}).Handshake()
	}()
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16384)
	n, err := c2.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	c1.Close()
	return buf[:n]
}

func TestPeekSNI(t *testing.T) {
	hello := clientHello(t, "api.openai.com")
	br := bufio.NewReaderSize(bytes.NewReader(hello), 20000)
	sni, err := PeekSNI(br)
	if err != nil || sni != "api.openai.com" {
		t.Fatalf("sni=%q err=%v", sni, err)
	}
	if br.Buffered() != len(hello) {
		t.Error("peek must not consume")
	}
	none := clientHello(t, "")
	if sni, err := PeekSNI(bufio.NewReader(bytes.NewReader(none))); err != nil || sni != "" {
		t.Errorf("no SNI: %q %v", sni, err)
	}
	if _, err := PeekSNI(bufio.NewReader(bytes.NewReader([]byte("GET / HTTP/1.1\r\n\r\n")))); err != ErrNotTLS {
		t.Errorf("plain HTTP: %v", err)
	}
}
