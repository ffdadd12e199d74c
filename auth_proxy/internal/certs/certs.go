// Package certs mints TLS leaf certificates per host from the pool CA so the
// proxy can terminate TLS for intercepted hosts; leaves are cached per host.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"sync"
	"time"
)

const (
	leafValidity = 7 * 24 * time.Hour
	renewBefore  = 24 * time.Hour
	maxCached    = 4096
)

// Authority signs leaves with one CA and one shared leaf key (cheap per host).
type Authority struct {
	caCert  *x509.Certificate
	caKey   crypto.Signer
	leafKey *ecdsa.PrivateKey
	now     func() time.Time

	mu    sync.Mutex
	cache map[string]*tls.Certificate
}

// Load reads a PEM CA certificate and key (PKCS#8, SEC1 EC or PKCS#1 RSA).
func Load(certFile, keyFile string) (*Authority, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("pool CA: %w", err)
	}
	return New(pair)
}

// New builds an Authority from a parsed CA key pair.
func New(pair tls.Certificate) (*Authority, error) {
	ca, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if !ca.IsCA {
		return nil, errors.New("pool CA: certificate is not a CA (basicConstraints CA:TRUE missing)")
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("pool CA: key cannot sign")
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Authority{caCert: ca, caKey: signer, leafKey: leafKey, now: time.Now, cache: map[string]*tls.Certificate{}}, nil
}

// CACert is the pool CA certificate.
func (a *Authority) CACert() *x509.Certificate { return a.caCert }

// Leaf returns a cached leaf for host, minting one when absent or near expiry.
func (a *Authority) Leaf(host string) (*tls.Certificate, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.cache[host]; ok && a.now().Add(renewBefore).Before(c.Leaf.NotAfter) {
		return c, nil
	}
	c, err := a.mint(host)
	if err != nil {
		return nil, err
	}
	if len(a.cache) >= maxCached {
		clear(a.cache)
	}
	a.cache[host] = c
	return c, nil
}

func (a *Authority) mint(host string) (*tls.Certificate, error) {
	if host == "" {
		return nil, errors.New("mint: empty host")
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := a.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host, Organization: []string{"Berth auth proxy"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(leafValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if tmpl.NotAfter.After(a.caCert.NotAfter) {
		tmpl.NotAfter = a.caCert.NotAfter
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.caCert, &a.leafKey.PublicKey, a.caKey)
	if err != nil {
		return nil, fmt.Errorf("mint %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, a.caCert.Raw}, PrivateKey: a.leafKey, Leaf: leaf}, nil
}

// ReadPool loads a PEM bundle into a new pool based on the system roots.
func ReadPool(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if file == "" {
		return pool, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("%s: no PEM certificates", file)
	}
	return pool, nil
}
