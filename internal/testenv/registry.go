package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
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
	CAPEM  []byte
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	opts   RegistryOptions
	t      testing.TB
}

// StartRegistry starts a registry that stops when the test ends.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	r := &Registry{dir: t.TempDir(), opts: opts, t: t}
	var tlsConfig string
	if opts.TLS {
		certFile, keyFile := filepath.Join(r.dir, "tls.crt"), filepath.Join(r.dir, "tls.key")
		ca, err := writeServingCert(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		r.CAPEM = ca
		tlsConfig = fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", certFile, keyFile)
	}
	var authConfig string
	if opts.Username != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(r.dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(opts.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		authConfig = fmt.Sprintf("auth:\n  htpasswd:\n    realm: strata-test\n    path: %s\n", htpasswd)
	}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		r.Host = fmt.Sprintf("127.0.0.1:%d", port)
		config := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n%s%s",
			filepath.Join(r.dir, "data"), r.Host, tlsConfig, authConfig)
		if err := os.WriteFile(filepath.Join(r.dir, "config.yml"), []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		err = r.Start()
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("registry: %v", err)
		}
	}
	t.Cleanup(r.Stop)
	return r
}

// Start runs the registry (again, on the same data and port) and waits
// until it answers.
func (r *Registry) Start() error {
	log, err := os.OpenFile(filepath.Join(r.dir, "registry.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(Tool(r.t, "registry"), "serve", filepath.Join(r.dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	exited := make(chan struct{})
	r.cmd, r.exited = cmd, exited
	go func() { _ = cmd.Wait(); log.Close(); close(exited) }()
	scheme := "http"
	client := &http.Client{Timeout: time.Second}
	if r.opts.TLS {
		scheme = "https"
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(r.CAPEM)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			data, _ := os.ReadFile(filepath.Join(r.dir, "registry.log"))
			return fmt.Errorf("registry exited: %s", tail(string(data)))
		default:
		}
		if res, err := client.Get(scheme + "://" + r.Host + "/v2/"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.Stop()
	return fmt.Errorf("registry on %s did not answer within 30 s", r.Host)
}

// Stop stops the registry; its data stays for Start.
func (r *Registry) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
	}
	r.cmd = nil
}

// Endpoint is oci://HOST/BASE.
func (r *Registry) Endpoint(base string) string { return "oci://" + r.Host + "/" + base }

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

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

// DataDir is the registry's storage folder.
func (r *Registry) DataDir() string { return filepath.Join(r.dir, "data") }
