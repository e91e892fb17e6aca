package testenv

import (
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
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"strata.dev/strata/internal/ociserver"
)

// ToolsDirEnv names a folder holding the registry and oras binaries;
// otherwise bin/tools of the source tree (built by `make tools`).
const ToolsDirEnv = "STRATA_TOOLS_BIN_DIR"

// Tool returns the path of a binary of the tools folder, failing the test
// with the command that builds it when it is missing.
func Tool(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv(ToolsDirEnv)
	if dir == "" {
		root, err := sourceRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "bin", "tools")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not built: run `make tools` (or set %s): %v", p, ToolsDirEnv, err)
	}
	return p
}

func sourceRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(data), "module strata.dev/strata\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no Strata source tree above the working directory")
		}
		dir = parent
	}
}

// RegistryOptions say how a test registry is served.
type RegistryOptions struct {
	// TLS serves HTTPS with a certificate of a CA made for the test (CAPEM).
	TLS bool
	// Username and Password, when set, are required (htpasswd basic auth).
	Username, Password string
}

// Registry is a CNCF Distribution registry on loopback, storing in a
// folder of the test.
type Registry struct {
	// Host is 127.0.0.1:PORT.
	Host string
	// CAPEM is the CA that signed its certificate (TLS only).
	CAPEM []byte
	*ociserver.Server
}

// StartRegistry starts a registry that stops when the test ends.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	dir := t.TempDir()
	r := &Registry{}
	serve := ociserver.Options{Binary: Tool(t, "registry"), Dir: dir}
	if opts.TLS {
		serve.CertFile, serve.KeyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
		ca, err := writeServingCert(serve.CertFile, serve.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		r.CAPEM, serve.CAPEM = ca, ca
	}
	if opts.Username != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		serve.Htpasswd = filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(serve.Htpasswd, []byte(opts.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A port free a moment ago may be taken meanwhile: try another.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		serve.Host = fmt.Sprintf("127.0.0.1:%d", port)
		srv, err := ociserver.Start(serve)
		if err == nil {
			r.Host, r.Server = serve.Host, srv
			break
		}
		if attempt == 3 {
			t.Fatalf("registry: %v", err)
		}
	}
	t.Cleanup(r.Stop)
	return r
}

// Endpoint is oci://HOST/BASE.
func (r *Registry) Endpoint(base string) string { return "oci://" + r.Host + "/" + base }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeServingCert makes a CA and a certificate for 127.0.0.1 signed by it,
// and returns the CA's PEM.
func writeServingCert(certFile, keyFile string) ([]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "strata test registry CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}
