// Package ociserver runs a CNCF Distribution registry process on loopback,
// storing in a folder: the pack registry of `strata up` and of the tests.
package ociserver

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Options say how the registry is served.
type Options struct {
	// Binary is the registry executable (make tools builds it).
	Binary string
	// Dir holds its configuration, data and log.
	Dir string
	// Host is the 127.0.0.1:PORT it listens on.
	Host string
	// CertFile and KeyFile serve HTTPS; CAPEM is the CA that signed the
	// certificate, to check that it answers.
	CertFile, KeyFile string
	CAPEM             []byte
	// Htpasswd, when set, is the htpasswd file of users it requires.
	Htpasswd string
}

// Server is a running registry.
type Server struct {
	opts   Options
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start writes the configuration and runs the registry until it answers.
func Start(opts Options) (*Server, error) {
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	var tlsConfig, authConfig string
	if opts.CertFile != "" {
		tlsConfig = fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", opts.CertFile, opts.KeyFile)
	}
	if opts.Htpasswd != "" {
		authConfig = fmt.Sprintf("auth:\n  htpasswd:\n    realm: strata\n    path: %s\n", opts.Htpasswd)
	}
	config := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n%s%s",
		filepath.Join(opts.Dir, "data"), opts.Host, tlsConfig, authConfig)
	if err := os.WriteFile(filepath.Join(opts.Dir, "config.yml"), []byte(config), 0o600); err != nil {
		return nil, err
	}
	s := &Server{opts: opts}
	return s, s.Start()
}

// DataDir is the registry's storage folder.
func (s *Server) DataDir() string { return filepath.Join(s.opts.Dir, "data") }

// Start runs the registry (again, on the same data and port) and waits
// until it answers.
func (s *Server) Start() error {
	logFile := filepath.Join(s.opts.Dir, "registry.log")
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.opts.Binary, "serve", filepath.Join(s.opts.Dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = log, log
	// It goes with the process that started it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("registry: %w", err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	go func() { _ = cmd.Wait(); log.Close(); close(exited) }()
	scheme, client := "http", &http.Client{Timeout: time.Second}
	if s.opts.CertFile != "" {
		scheme = "https"
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(s.opts.CAPEM)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("registry on %s exited: see %s", s.opts.Host, logFile)
		default:
		}
		if res, err := client.Get(scheme + "://" + s.opts.Host + "/v2/"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("registry on %s did not answer within 30 s", s.opts.Host)
}

// Stop ends the registry; its data stays for Start.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}
