// Package capi runs Cluster API itself beside a management plane: its CRDs
// installed from the module its manager was built from, its webhooks
// (conversion, defaulting, validation) served by that manager on loopback
// with a certificate made here, and the manager run as a supervised
// process, started again if it dies.
package capi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"strata.dev/strata/config/crd"
	"strata.dev/strata/internal/controlplane"
)

// Version is the Cluster API release hack/capi/go.mod builds.
const Version = "v1.13.6"

// DirEnv points at a folder holding a Cluster API build (the manager,
// crds/, webhook/), overriding the search.
const DirEnv = "STRATA_CAPI_DIR"

// ManagerBinary is the core manager's file name in a build.
const ManagerBinary = "cluster-api-manager"

// Build is a folder hack/capi/build.sh filled.
type Build struct {
	Dir     string
	Version string
}

// FindBuild locates the Cluster API build: $STRATA_CAPI_DIR, capi/<version>
// beside the running executable, or bin/capi/<version> in the source tree
// holding the working directory. When none exists it returns the most
// likely place, so that errors name where it was expected.
func FindBuild() Build {
	if dir := os.Getenv(DirEnv); dir != "" {
		return Build{Dir: dir, Version: Version}
	}
	var candidates []string
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "capi", Version))
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "hack", "capi", "build.sh")); err == nil {
				candidates = append(candidates, filepath.Join(dir, "bin", "capi", Version))
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, ManagerBinary)); err == nil {
			return Build{Dir: c, Version: Version}
		}
	}
	if len(candidates) == 0 {
		return Build{Dir: filepath.Join("bin", "capi", Version), Version: Version}
	}
	return Build{Dir: candidates[len(candidates)-1], Version: Version}
}

// Check says what of the build is missing and how to make it.
func (b Build) Check() error {
	for _, p := range []string{ManagerBinary, "crds", filepath.Join("webhook", "manifests.yaml")} {
		if _, err := os.Stat(filepath.Join(b.Dir, p)); err != nil {
			return fmt.Errorf("cluster API %s: %s not found in %s: run `make capi` to build it", b.Version, p, b.Dir)
		}
	}
	return nil
}

// Options say where Cluster API runs.
type Options struct {
	// Build to run; FindBuild() when empty.
	Build Build
	// Config reaches the management plane as its admin.
	Config *rest.Config
	// Kubeconfig is the same, as a file the manager reads.
	Kubeconfig string
	// Dir holds the manager's log and webhook certificate.
	Dir string
	// Log receives restarts; discarded when nil.
	Log *slog.Logger
	// StartTimeout bounds the wait for the manager; 2 minutes when zero.
	StartTimeout time.Duration
}

// Manager is Cluster API's core manager running beside the management plane.
type Manager struct {
	opts Options

	mu   sync.Mutex
	proc *controlplane.Process
}

// Start installs Cluster API's CRDs and webhooks on the management plane
// and runs its core manager, returning once its webhooks answer.
func Start(ctx context.Context, opts Options) (*Manager, error) {
	if opts.Build.Dir == "" {
		opts.Build = FindBuild()
	}
	if err := opts.Build.Check(); err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	m := &Manager{opts: opts}
	if err := m.start(ctx); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// LogPath is where the manager's output goes.
func (m *Manager) LogPath() string { return filepath.Join(m.opts.Dir, "cluster-api.log") }

// PID of the running manager, 0 when none.
func (m *Manager) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return 0
	}
	return m.proc.PID()
}

// start makes a certificate, picks ports, installs the CRDs pointing their
// conversion at the new webhook server, runs the manager, waits for its
// webhooks and then registers them: registered before, they would refuse
// every write while the manager starts.
func (m *Manager) start(ctx context.Context) error {
	ports, err := controlplane.FreePorts(3)
	if err != nil {
		return err
	}
	webhookPort, healthPort, diagPort := ports[0], ports[1], ports[2]
	certDir := filepath.Join(m.opts.Dir, "webhook-certs")
	caPEM, err := controlplane.WriteServingCertificate(certDir, "cluster-api-webhooks", []string{"127.0.0.1"})
	if err != nil {
		return fmt.Errorf("webhook certificate: %w", err)
	}
	c, err := m.client()
	if err != nil {
		return err
	}
	base := "https://127.0.0.1:" + strconv.Itoa(webhookPort)
	if err := installCRDs(ctx, c, m.opts.Build, base, caPEM); err != nil {
		return fmt.Errorf("cluster API CRDs: %w", err)
	}
	args := []string{
		"--kubeconfig=" + m.opts.Kubeconfig,
		"--leader-elect=false",
		"--webhook-port=" + strconv.Itoa(webhookPort),
		"--webhook-cert-dir=" + certDir,
		"--health-addr=127.0.0.1:" + strconv.Itoa(healthPort),
		"--diagnostics-address=127.0.0.1:" + strconv.Itoa(diagPort), "--insecure-diagnostics",
		// Managed topologies (ClusterClass) are what Strata drives.
		"--feature-gates=ClusterTopology=true",
	}
	bin := filepath.Join(m.opts.Build.Dir, ManagerBinary)
	// The process writes <dir>/<name>.log; the name makes it cluster-api.log.
	proc, err := controlplane.StartProcess("cluster-api", bin, m.opts.Dir, args)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.proc = proc
	m.mu.Unlock()
	waitCtx, cancel := context.WithTimeout(ctx, m.opts.StartTimeout)
	defer cancel()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	err = proc.WaitFor(waitCtx, "readyz and webhooks", func(ctx context.Context) error {
		if err := get(ctx, http.DefaultClient, "http://127.0.0.1:"+strconv.Itoa(healthPort)+"/readyz"); err != nil {
			return err
		}
		// Any answer over TLS with our certificate: the webhook server runs.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/convert", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	})
	if err != nil {
		return fmt.Errorf("cluster API's manager: %w", err)
	}
	if err := installWebhooks(ctx, c, m.opts.Build, base, caPEM); err != nil {
		return fmt.Errorf("cluster API webhooks: %w", err)
	}
	return nil
}

func (m *Manager) client() (client.Client, error) {
	s := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		return nil, err
	}
	return client.New(m.opts.Config, client.Options{Scheme: s})
}

// Supervise starts the manager again, every interval until ctx ends, when
// it has stopped on its own.
func (m *Manager) Supervise(ctx context.Context, interval time.Duration) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		m.mu.Lock()
		dead := m.proc != nil && m.proc.Exited()
		m.mu.Unlock()
		if !dead {
			return
		}
		m.opts.Log.Warn("cluster API's manager stopped; starting it again", "log", m.LogPath())
		if err := m.start(ctx); err != nil {
			m.opts.Log.Error("cluster API's manager did not start again", "err", err)
		}
	}, interval)
}

// Kill stops the manager at once, as a crash would (tests of supervision).
func (m *Manager) Kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		_ = syscall.Kill(m.proc.PID(), syscall.SIGKILL)
	}
}

// Stop ends the manager; the CRDs and objects stay.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		m.proc.Stop()
		m.proc = nil
	}
}

// installCRDs applies the build's CRDs, each CRD with more than one version
// converting through the manager's /convert, and waits until they are
// established.
func installCRDs(ctx context.Context, c client.Client, b Build, base string, caPEM []byte) error {
	files, err := filepath.Glob(filepath.Join(b.Dir, "crds", "*.yaml"))
	if err != nil {
		return err
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		obj := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(data, obj); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if len(obj.Spec.Versions) > 1 {
			url := base + "/convert"
			obj.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{
				Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{
					ConversionReviewVersions: []string{"v1"},
					ClientConfig:             &apiextensionsv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
				},
			}
		}
		crds = append(crds, obj)
	}
	return crd.Apply(ctx, c, "strata-capi", crds...)
}

// installWebhooks applies the build's webhook configurations with each
// webhook's in-cluster Service replaced by the manager's loopback address.
func installWebhooks(ctx context.Context, c client.Client, b Build, base string, caPEM []byte) error {
	data, err := os.ReadFile(filepath.Join(b.Dir, "webhook", "manifests.yaml"))
	if err != nil {
		return err
	}
	return Apply(ctx, c, data, func(u *unstructured.Unstructured) error {
		hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		for i, h := range hooks {
			hook := h.(map[string]any)
			path, _, _ := unstructured.NestedString(hook, "clientConfig", "service", "path")
			hook["clientConfig"] = map[string]any{"url": base + path, "caBundle": base64.StdEncoding.EncodeToString(caPEM)}
			hooks[i] = hook
		}
		// One name per kind, so that another webhook configuration called
		// the same (kubebuilder's default) is never overwritten.
		u.SetName("cluster-api-" + strings.ToLower(u.GetKind()))
		return unstructured.SetNestedSlice(u.Object, hooks, "webhooks")
	})
}

// Apply server-side applies every object of a YAML stream, each changed
// by edit first when it is given, as field owner strata-capi.
func Apply(ctx context.Context, c client.Client, data []byte, edit func(*unstructured.Unstructured) error) error {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if len(u.Object) == 0 {
			continue
		}
		if edit != nil {
			if err := edit(u); err != nil {
				return err
			}
		}
		//nolint:staticcheck // client.Apply with an unstructured object.
		if err := c.Patch(ctx, u, client.Apply, client.FieldOwner("strata-capi"), client.ForceOwnership); err != nil {
			return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
}

func get(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
