package controlplane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certValidity is long enough for a local cluster that lives for months.
const certValidity = 5 * 365 * 24 * time.Hour

// authority is a certificate authority that signs the serving certificate
// of an API server and the client certificates of its users. The standard
// library does all the work; no Kubernetes helper signs leaf certificates.
type authority struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

func newAuthority(commonName string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, certPEM: pemBlock("CERTIFICATE", der)}, nil
}

// loadAuthority reads a CA written by write, so a restarted control plane
// keeps trusting the kubeconfigs handed out before.
func loadAuthority(certFile, keyFile string) (*authority, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s or %s holds no PEM block", certFile, keyFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	return &authority{cert: cert, key: key, certPEM: certPEM}, nil
}

// keyPair is a signed certificate and its private key, PEM-encoded.
type keyPair struct {
	certPEM, keyPEM []byte
}

// issue signs a certificate: a serving one when hosts are given, otherwise a
// client one whose common name and organizations become the Kubernetes user
// and groups.
func (a *authority) issue(commonName string, organizations []string, hosts []string) (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: commonName, Organization: organizations},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if len(hosts) > 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return keyPair{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{certPEM: pemBlock("CERTIFICATE", der), keyPEM: pemBlock("EC PRIVATE KEY", keyDER)}, nil
}

func (a *authority) write(certFile, keyFile string) error {
	keyDER, err := x509.MarshalECPrivateKey(a.key.(*ecdsa.PrivateKey))
	if err != nil {
		return err
	}
	return writeKeyPair(keyPair{certPEM: a.certPEM, keyPEM: pemBlock("EC PRIVATE KEY", keyDER)}, certFile, keyFile)
}

func writeKeyPair(kp keyPair, certFile, keyFile string) error {
	if err := os.WriteFile(certFile, kp.certPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, kp.keyPEM, 0o600)
}

// writeServiceAccountKey writes the key pair that signs service account
// tokens: the private key for the API server and controller manager, the
// public key for verification.
func writeServiceAccountKey(dir string) (privateFile, publicFile string, err error) {
	privateFile, publicFile = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if _, err := os.Stat(privateFile); err == nil {
		return privateFile, publicFile, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	priv, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(publicFile, pemBlock("PUBLIC KEY", pub), 0o644); err != nil {
		return "", "", err
	}
	return privateFile, publicFile, os.WriteFile(privateFile, pemBlock("EC PRIVATE KEY", priv), 0o600)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		// crypto/rand never fails on Linux; a fixed serial is still valid.
		return big.NewInt(1)
	}
	return n
}

// WriteServingCertificate makes a new certificate authority and a serving
// certificate for hosts signed by it, writes them as tls.crt and tls.key in
// dir (the names controller-runtime's webhook server reads) and returns the
// authority's PEM, which the API server is given as the caBundle.
func WriteServingCertificate(dir, commonName string, hosts []string) (caPEM []byte, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := newAuthority(commonName + "-ca")
	if err != nil {
		return nil, err
	}
	kp, err := ca.issue(commonName, nil, hosts)
	if err != nil {
		return nil, err
	}
	if err := writeKeyPair(kp, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")); err != nil {
		return nil, err
	}
	return ca.certPEM, nil
}
