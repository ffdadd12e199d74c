package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// NewTestCA returns a fresh self-signed CA key pair.
func newTestCA(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test pool CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour * 365),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestLeafChainsToCAWithSAN(t *testing.T) {
	a, err := New(newTestCA(t))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(a.CACert())
	for _, host := range []string{"api.openai.com", "198.18.0.7"} {
		c, err := a.Leaf(host)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("%s: leaf does not verify: %v", host, err)
		}
		if err := c.Leaf.VerifyHostname("other.example"); err == nil {
			t.Errorf("%s: leaf must not be valid for another host", host)
		}
	}
	c, _ := a.Leaf("api.openai.com")
	if len(c.Leaf.DNSNames) != 1 || c.Leaf.DNSNames[0] != "api.openai.com" {
		t.Errorf("SAN = %v", c.Leaf.DNSNames)
	}
}

func TestLeafCachedAndRenewed(t *testing.T) {
	a, err := New(newTestCA(t))
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := a.Leaf("h.example")
	c2, _ := a.Leaf("h.example")
	if c1 != c2 {
		t.Error("second call must hit the cache")
	}
	a.now = func() time.Time { return time.Now().Add(leafValidity) }
	c3, _ := a.Leaf("h.example")
	if c3 == c1 {
		t.Error("a leaf near expiry must be re-minted")
	}
}

func TestRejectsNonCA(t *testing.T) {
	ca := newTestCA(t)
	a, _ := New(ca)
	leaf, _ := a.Leaf("x.example")
	if _, err := New(tls.Certificate{Certificate: [][]byte{leaf.Certificate[0]}, PrivateKey: leaf.PrivateKey}); err == nil {
		t.Error("a leaf certificate must be rejected as CA")
	}
}
