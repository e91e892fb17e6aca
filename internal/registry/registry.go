// Package registry keeps packs in OCI registries the way Palette does: a
// pack is the repository <endpoint>/<base>/spectro-packs/archive/<name>,
// tagged <version>, whose single layer is the gzipped tar of the pack
// folder — what `oras push …/spectro-packs/archive/NAME:VERSION
// NAME-VERSION.tar.gz` writes. It pushes, lists and pulls such packs with
// oras-go, and keeps what it pulled in a content-addressed cache on disk.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"strata.dev/strata/internal/chartsource"
	"strata.dev/strata/internal/signature"
)

// archivePath is where Palette keeps packs below a registry's base path.
const archivePath = "spectro-packs/archive"

// Endpoint is a registry and the base content path its packs live under.
type Endpoint struct {
	// Host is host[:port].
	Host string
	// Base is the base content path, without leading or trailing slash;
	// empty when packs sit at the registry's root.
	Base string
}

// ParseEndpoint reads oci://HOST[:PORT][/BASE].
func ParseEndpoint(s string) (Endpoint, error) {
	rest, ok := strings.CutPrefix(s, "oci://")
	if !ok {
		return Endpoint{}, fmt.Errorf("%q: want oci://HOST[:PORT]/BASE", s)
	}
	host, base, _ := strings.Cut(rest, "/")
	if host == "" {
		return Endpoint{}, fmt.Errorf("%q: no host: want oci://HOST[:PORT]/BASE", s)
	}
	if _, err := url.Parse("https://" + host); err != nil || strings.ContainsAny(host, "@?#") {
		return Endpoint{}, fmt.Errorf("%q: %q is not a host[:port]", s, host)
	}
	return Endpoint{Host: host, Base: strings.Trim(base, "/")}, nil
}

func (e Endpoint) String() string {
	if e.Base == "" {
		return "oci://" + e.Host
	}
	return "oci://" + e.Host + "/" + e.Base
}

// archive is the path below the host where pack repositories live.
func (e Endpoint) archive() string {
	if e.Base == "" {
		return archivePath
	}
	return e.Base + "/" + archivePath
}

// PackRepository is the repository of a pack: HOST/BASE/spectro-packs/archive/NAME.
func (e Endpoint) PackRepository(name string) string {
	return e.Host + "/" + e.archive() + "/" + name
}

// Credentials reach a registry: a user name and password, or a token.
type Credentials struct {
	Username string
	Password string
	Token    string
}

// Options say how to reach a registry.
type Options struct {
	// Credentials, when set, are used for the registry's host; otherwise
	// the Docker config file's (~/.docker/config.json, $DOCKER_CONFIG) are.
	Credentials *Credentials
	// PlainHTTP talks HTTP instead of HTTPS (loopback registries and tests).
	PlainHTTP bool
	// CAPEM are extra certificate authorities (PEM) the registry's
	// certificate may be signed by.
	CAPEM []byte
	// InsecureSkipTLSVerify accepts any certificate.
	InsecureSkipTLSVerify bool
	// Verifier, when set, admits only packs whose manifest it verifies:
	// the others are refused before anything of them is fetched.
	Verifier signature.Verifier
}

// Registry is one pack registry.
type Registry struct {
	Endpoint Endpoint
	plain    bool
	client   *auth.Client
	// creds and httpClient are kept for other clients of the same host
	// (chart layers on OCI).
	creds      *Credentials
	httpClient *http.Client
	verifier   signature.Verifier

	mu sync.Mutex
	// listed is what the last complete List found, by NAME:VERSION.
	listed map[string]resolved
}

// HostAccess is what another client needs to reach this registry's host
// (chart and Zarf layers on OCI): its credentials (empty for the Docker
// config's), whether it is plain HTTP, and an HTTP client with its TLS
// settings.
func (r *Registry) HostAccess() chartsource.HostAccess {
	a := chartsource.HostAccess{PlainHTTP: r.plain, HTTPClient: r.httpClient}
	if r.creds != nil {
		a.Username, a.Password = r.creds.Username, r.creds.Password
		if a.Password == "" {
			a.Password = r.creds.Token
		}
	}
	return a
}

// HostAccess finds, among registries, one on host and says how to reach it.
func HostAccess(regs []*Registry) func(host string) (chartsource.HostAccess, bool) {
	return func(host string) (chartsource.HostAccess, bool) {
		for _, r := range regs {
			if r.Endpoint.Host == host {
				return r.HostAccess(), true
			}
		}
		return chartsource.HostAccess{}, false
	}
}

// New returns a client for the registry at ep.
func New(ep Endpoint, opts Options) (*Registry, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: opts.InsecureSkipTLSVerify} //nolint:gosec // the user's explicit choice
	if len(opts.CAPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(opts.CAPEM) {
			return nil, fmt.Errorf("registry %s: the CA bundle holds no PEM certificate", ep)
		}
		tlsConfig.RootCAs = pool
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	httpClient := &http.Client{Transport: retry.NewTransport(transport)}
	client := &auth.Client{
		Client: httpClient,
		Cache:  auth.NewCache(),
	}
	client.SetUserAgent("strata")
	switch {
	case opts.Credentials != nil:
		c := opts.Credentials
		client.Credential = auth.StaticCredential(ep.Host, auth.Credential{Username: c.Username, Password: c.Password, AccessToken: c.Token})
	default:
		store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
		if err != nil {
			return nil, fmt.Errorf("registry %s: Docker config: %w", ep, err)
		}
		client.Credential = credentials.Credential(store)
	}
	return &Registry{Endpoint: ep, plain: opts.PlainHTTP, client: client, creds: opts.Credentials, httpClient: httpClient, verifier: opts.Verifier}, nil
}

func (r *Registry) repository(name string) (*remote.Repository, error) {
	repo, err := remote.NewRepository(r.Endpoint.PackRepository(name))
	if err != nil {
		return nil, fmt.Errorf("registry %s: pack %q: %w", r.Endpoint, name, err)
	}
	repo.PlainHTTP, repo.Client = r.plain, r.client
	return repo, nil
}

func (r *Registry) registry() (*remote.Registry, error) {
	reg, err := remote.NewRegistry(r.Endpoint.Host)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", r.Endpoint, err)
	}
	reg.PlainHTTP, reg.Client = r.plain, r.client
	return reg, nil
}

// Check reaches the registry and reports why it cannot be used.
func (r *Registry) Check(ctx context.Context) error {
	reg, err := r.registry()
	if err != nil {
		return err
	}
	return r.explain(reg.Ping(ctx))
}

// Reason names why a registry cannot be used, for conditions: Unreachable,
// AuthenticationFailed, TLSError or NotARegistry.
func Reason(err error) string {
	var re *ReachError
	if errors.As(err, &re) {
		return re.Reason
	}
	return "Error"
}

// ReachError is a registry that cannot be used, with the reason.
type ReachError struct {
	Endpoint Endpoint
	Reason   string
	Err      error
}

func (e *ReachError) Error() string {
	words := map[string]string{"AuthenticationFailed": "authentication failed", "TLSError": "TLS error", "Unreachable": "unreachable", "NotARegistry": "not a registry"}[e.Reason]
	return fmt.Sprintf("registry %s: %s: %v", e.Endpoint, words, e.Err)
}

func (e *ReachError) Unwrap() error { return e.Err }

// explain sorts a registry error into a reason users can act on.
func (r *Registry) explain(err error) error {
	if err == nil {
		return nil
	}
	var reason string
	var resp *errcode.ErrorResponse
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var netErr net.Error
	var recordErr tls.RecordHeaderError
	switch {
	case errors.As(err, &resp) && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden):
		reason = "AuthenticationFailed"
	case errors.As(err, &resp) && resp.StatusCode == http.StatusNotFound && strings.HasSuffix(resp.URL.Path, "/v2/"):
		reason = "NotARegistry"
	case errors.As(err, &certErr), errors.As(err, &unknownAuthority), errors.As(err, &hostErr), errors.As(err, &recordErr):
		reason = "TLSError"
	case errors.As(err, &netErr), errors.Is(err, os.ErrDeadlineExceeded):
		reason = "Unreachable"
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		reason = "TLSError"
	case strings.Contains(err.Error(), "invalid character") || strings.Contains(err.Error(), "unexpected status code"):
		reason = "NotARegistry"
	default:
		return err
	}
	return &ReachError{Endpoint: r.Endpoint, Reason: reason, Err: err}
}
