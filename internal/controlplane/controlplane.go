package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options says what control plane to run and where its state lives.
type Options struct {
	// Name labels the kubeconfig context and the certificates.
	Name string
	// Dir holds etcd data, certificates, kubeconfigs and one log per process.
	// Starting again on the same Dir resumes the cluster with its data.
	Dir string
	// Binaries to run; FindBinaries("") when empty.
	Binaries Binaries
	// ControllerManager and Scheduler start kube-controller-manager and
	// kube-scheduler, so that Deployments get ReplicaSets and pods get nodes.
	ControllerManager bool
	Scheduler         bool
	// Nodes is the number of simulated nodes, in one pool "node"; kwok
	// starts when it is above 0.
	Nodes int
	// NodePools, when set, are the simulated nodes instead of Nodes; kwok
	// starts even when they count no node yet, so they can be scaled up.
	NodePools []NodePool
	// Kwok starts kwok with no nodes of its own: someone else (Cluster
	// API's machines) creates the nodes it simulates.
	Kwok bool
	// APIServerPort, when set, is the port the API server listens on, so
	// that its address survives a restart; a free one when zero.
	APIServerPort int
	// StartTimeout bounds each readiness wait; 90 seconds when zero.
	StartTimeout time.Duration
	// Durable makes etcd fsync its writes. Tests leave it off: a throwaway
	// cluster gains speed and loses nothing.
	Durable bool
}

// ControlPlane is a running set of control-plane processes.
type ControlPlane struct {
	opts       Options
	procs      []*process
	server     string
	kubeconfig []byte
	restConfig *rest.Config
	ca         *authority
}

// startAttempts bounds retries when a picked port was taken by someone else
// between picking and binding.
const startAttempts = 3

// Start brings up the control plane and returns once every process is ready.
// On error everything already started is stopped again.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	if opts.Name == "" {
		opts.Name = "strata"
	}
	if opts.Dir == "" {
		return nil, errors.New("controlplane: Options.Dir is required")
	}
	if opts.Binaries.Dir == "" {
		opts.Binaries = FindBinaries("")
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 90 * time.Second
	}
	needed := []string{EtcdBinary, APIServerBinary}
	if opts.ControllerManager {
		needed = append(needed, ControllerManagerBinary)
	}
	if opts.Scheduler {
		needed = append(needed, SchedulerBinary)
	}
	if opts.simulatesNodes() {
		needed = append(needed, KwokBinary, StagesDir)
	}
	if err := opts.Binaries.Check(needed...); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "pki"), 0o700); err != nil {
		return nil, err
	}

	cp := &ControlPlane{opts: opts}
	if err := cp.start(ctx); err != nil {
		cp.Stop()
		return nil, fmt.Errorf("control plane %q (data and logs in %s): %w", opts.Name, opts.Dir, err)
	}
	return cp, nil
}

func (o *Options) simulatesNodes() bool { return o.Nodes > 0 || o.NodePools != nil || o.Kwok }

// Exited names the processes of the control plane that have stopped on
// their own, so a supervisor can restart it.
func (cp *ControlPlane) Exited() []string {
	var names []string
	for _, p := range cp.procs {
		select {
		case <-p.done:
			names = append(names, p.name)
		default:
		}
	}
	return names
}

func (cp *ControlPlane) start(ctx context.Context) error {
	var err error
	if cp.ca, err = cp.loadOrCreateCA(); err != nil {
		return fmt.Errorf("certificate authority: %w", err)
	}
	saKey, saPub, err := writeServiceAccountKey(cp.path("pki"))
	if err != nil {
		return fmt.Errorf("service account key: %w", err)
	}
	etcdURL, err := cp.startEtcd(ctx)
	if err != nil {
		return err
	}
	if err := cp.startAPIServer(ctx, etcdURL, saKey, saPub); err != nil {
		return err
	}
	if cp.opts.ControllerManager {
		if err := cp.startControllerManager(ctx, saKey); err != nil {
			return err
		}
	}
	if cp.opts.Scheduler {
		if err := cp.startScheduler(ctx); err != nil {
			return err
		}
	}
	if cp.opts.simulatesNodes() {
		if err := cp.releaseNodeLeases(ctx); err != nil {
			return err
		}
		if err := cp.startKwok(); err != nil {
			return err
		}
		pools := cp.opts.NodePools
		if pools == nil && cp.opts.Nodes > 0 {
			pools = []NodePool{{Name: "node", Count: cp.opts.Nodes}}
		}
		if pools != nil {
			if err := cp.SetNodePools(ctx, pools); err != nil {
				return err
			}
		}
	}
	return nil
}

// Kubeconfig returns an admin kubeconfig (client certificate in the
// system:masters group).
func (cp *ControlPlane) Kubeconfig() []byte { return cp.kubeconfig }

// KubeconfigPath is where the admin kubeconfig is written.
func (cp *ControlPlane) KubeconfigPath() string { return cp.path("kubeconfig") }

// RESTConfig returns a copy of the admin client configuration.
func (cp *ControlPlane) RESTConfig() *rest.Config { return rest.CopyConfig(cp.restConfig) }

// Server is the API server URL.
func (cp *ControlPlane) Server() string { return cp.server }

// Dir is the data folder.
func (cp *ControlPlane) Dir() string { return cp.opts.Dir }

// PIDs maps each running process name to its process id, for supervision
// and for measuring memory.
func (cp *ControlPlane) PIDs() map[string]int {
	out := map[string]int{}
	for _, p := range cp.procs {
		if !p.exited() {
			out[p.name] = p.PID()
		}
	}
	return out
}

// Stop stops every process, last started first. Data stays in Dir.
func (cp *ControlPlane) Stop() {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		cp.procs[i].stop()
	}
	cp.procs = nil
}

func (cp *ControlPlane) path(parts ...string) string {
	return filepath.Join(append([]string{cp.opts.Dir}, parts...)...)
}

func (cp *ControlPlane) loadOrCreateCA() (*authority, error) {
	certFile, keyFile := cp.path("pki", "ca.crt"), cp.path("pki", "ca.key")
	if _, err := os.Stat(certFile); err == nil {
		return loadAuthority(certFile, keyFile)
	}
	ca, err := newAuthority(cp.opts.Name + "-ca")
	if err != nil {
		return nil, err
	}
	return ca, ca.write(certFile, keyFile)
}

// startWithPorts starts a process on freshly picked ports and waits for it.
// When the process dies during the wait because a port was taken in the
// meantime, it tries again with new ports.
// fixed, when not nil, are the ports to use, tried once.
func (cp *ControlPlane) startWithPorts(ctx context.Context, nPorts int, fixed []int, launch func(ports []int) (*process, error), ready func(ctx context.Context, p *process, ports []int) error) ([]int, error) {
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		ports := fixed
		if ports == nil {
			var err error
			if ports, err = FreePorts(nPorts); err != nil {
				return nil, err
			}
		}
		p, err := launch(ports)
		if err != nil {
			return nil, err
		}
		waitCtx, cancel := context.WithTimeout(ctx, cp.opts.StartTimeout)
		err = ready(waitCtx, p, ports)
		cancel()
		if err == nil {
			cp.procs = append(cp.procs, p)
			return ports, nil
		}
		p.stop()
		lastErr = err
		if fixed != nil || !errors.Is(err, errProcessExited) || !strings.Contains(p.logTail(40), "address already in use") {
			return nil, err
		}
	}
	return nil, lastErr
}

func (cp *ControlPlane) startEtcd(ctx context.Context) (string, error) {
	bin, _ := cp.opts.Binaries.Path(EtcdBinary)
	dataDir := cp.path("etcd")
	ports, err := cp.startWithPorts(ctx, 2, nil, func(ports []int) (*process, error) {
		client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		args := []string{
			"--name=" + cp.opts.Name,
			"--data-dir=" + dataDir,
			"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=" + cp.opts.Name + "=" + peer,
			"--log-level=warn",
		}
		if !cp.opts.Durable {
			args = append(args, "--unsafe-no-fsync=true")
		}
		return startProcess("etcd", bin, cp.opts.Dir, args)
	}, func(ctx context.Context, p *process, ports []int) error {
		url := "http://127.0.0.1:" + strconv.Itoa(ports[0]) + "/health"
		return p.waitFor(ctx, "etcd /health", func(ctx context.Context) error {
			return httpOK(ctx, http.DefaultClient, url, `"health":"true"`)
		})
	})
	if err != nil {
		return "", err
	}
	return "http://127.0.0.1:" + strconv.Itoa(ports[0]), nil
}

func (cp *ControlPlane) startAPIServer(ctx context.Context, etcdURL, saKey, saPub string) error {
	bin, _ := cp.opts.Binaries.Path(APIServerBinary)
	serving, err := cp.ca.issue("kube-apiserver", nil, []string{"127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"})
	if err != nil {
		return err
	}
	certFile, keyFile := cp.path("pki", "apiserver.crt"), cp.path("pki", "apiserver.key")
	if err := writeKeyPair(serving, certFile, keyFile); err != nil {
		return err
	}
	admin, err := cp.ca.issue("strata-admin", []string{"system:masters"}, nil)
	if err != nil {
		return err
	}

	var fixed []int
	if cp.opts.APIServerPort > 0 {
		fixed = []int{cp.opts.APIServerPort}
	}
	_, err = cp.startWithPorts(ctx, 1, fixed, func(ports []int) (*process, error) {
		args := []string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(ports[0]),
			"--cert-dir=" + cp.path("pki"),
			"--tls-cert-file=" + certFile, "--tls-private-key-file=" + keyFile,
			"--client-ca-file=" + cp.path("pki", "ca.crt"),
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + saPub,
			"--service-account-signing-key-file=" + saKey,
			"--service-cluster-ip-range=10.96.0.0/12",
			"--authorization-mode=RBAC",
			// CNI charts run privileged pods; kubeadm allows them too.
			"--allow-privileged=true",
			// The kubernetes Service would point at a loopback address, which
			// Endpoints refuse; nothing in a simulated cluster dials it.
			"--endpoint-reconciler-type=none",
			"--profiling=false",
		}
		return startProcess("kube-apiserver", bin, cp.opts.Dir, args)
	}, func(ctx context.Context, p *process, ports []int) error {
		cp.server = "https://127.0.0.1:" + strconv.Itoa(ports[0])
		if err := cp.writeAdminKubeconfig(admin); err != nil {
			return err
		}
		client, err := rest.HTTPClientFor(cp.restConfig)
		if err != nil {
			return err
		}
		return p.waitFor(ctx, "/readyz", func(ctx context.Context) error {
			return httpOK(ctx, client, cp.server+"/readyz", "")
		})
	})
	return err
}

func (cp *ControlPlane) writeAdminKubeconfig(admin keyPair) error {
	data, err := cp.kubeconfigFor("strata-admin", admin)
	if err != nil {
		return err
	}
	if err := os.WriteFile(cp.KubeconfigPath(), data, 0o600); err != nil {
		return err
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return err
	}
	cp.kubeconfig, cp.restConfig = data, cfg
	return nil
}

// kubeconfigFor renders a kubeconfig for a user authenticated by kp.
func (cp *ControlPlane) kubeconfigFor(user string, kp keyPair) ([]byte, error) {
	name := cp.opts.Name
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: cp.server, CertificateAuthorityData: cp.ca.certPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.certPEM, ClientKeyData: kp.keyPEM}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: user}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}

// componentKubeconfig writes a kubeconfig for a control-plane component,
// whose user name matches the bootstrap RBAC roles Kubernetes ships.
func (cp *ControlPlane) componentKubeconfig(file, user string) (string, error) {
	kp, err := cp.ca.issue(user, nil, nil)
	if err != nil {
		return "", err
	}
	data, err := cp.kubeconfigFor(user, kp)
	if err != nil {
		return "", err
	}
	path := cp.path(file)
	return path, os.WriteFile(path, data, 0o600)
}

// startSecureComponent runs kube-controller-manager or kube-scheduler with
// its HTTPS endpoint on a free loopback port and waits for /healthz.
func (cp *ControlPlane) startSecureComponent(ctx context.Context, name string, args []string) error {
	bin, _ := cp.opts.Binaries.Path(name)
	_, err := cp.startWithPorts(ctx, 1, nil, func(ports []int) (*process, error) {
		all := append([]string{
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(ports[0]),
			"--cert-dir=" + cp.path(name),
			"--leader-elect=false",
			"--profiling=false",
		}, args...)
		return startProcess(name, bin, cp.opts.Dir, all)
	}, func(ctx context.Context, p *process, ports []int) error {
		// The component serves a self-signed certificate; health carries no secret.
		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		url := "https://127.0.0.1:" + strconv.Itoa(ports[0]) + "/healthz"
		return p.waitFor(ctx, "/healthz", func(ctx context.Context) error {
			return httpOK(ctx, insecure, url, "")
		})
	})
	return err
}

func (cp *ControlPlane) startControllerManager(ctx context.Context, saKey string) error {
	kubeconfig, err := cp.componentKubeconfig("controller-manager.kubeconfig", "system:kube-controller-manager")
	if err != nil {
		return err
	}
	return cp.startSecureComponent(ctx, ControllerManagerBinary, []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--service-account-private-key-file=" + saKey,
		"--root-ca-file=" + cp.path("pki", "ca.crt"),
		"--cluster-signing-cert-file=" + cp.path("pki", "ca.crt"),
		"--cluster-signing-key-file=" + cp.path("pki", "ca.key"),
		"--use-service-account-credentials=true",
		"--controllers=*",
	})
}

func (cp *ControlPlane) startScheduler(ctx context.Context) error {
	kubeconfig, err := cp.componentKubeconfig("scheduler.kubeconfig", "system:kube-scheduler")
	if err != nil {
		return err
	}
	return cp.startSecureComponent(ctx, SchedulerBinary, []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
	})
}

func (cp *ControlPlane) startKwok() error {
	bin, _ := cp.opts.Binaries.Path(KwokBinary)
	stages, _ := cp.opts.Binaries.Path(StagesDir)
	entries, err := os.ReadDir(stages)
	if err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + cp.KubeconfigPath(),
		"--manage-nodes-with-annotation-selector=" + fakeNodeAnnotation + "=fake",
		"--node-lease-duration-seconds=40",
		"--cidr=10.0.0.0/16",
	}
	for _, e := range entries {
		args = append(args, "--config="+filepath.Join(stages, e.Name()))
	}
	p, err := startProcess("kwok", bin, cp.opts.Dir, args)
	if err != nil {
		return err
	}
	cp.procs = append(cp.procs, p)
	return nil
}

// Clientset returns a typed admin client.
func (cp *ControlPlane) Clientset() (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfig(cp.RESTConfig())
}

// httpOK GETs url and wants a 200 whose body contains want.
func httpOK(ctx context.Context, client *http.Client, url, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	body := string(buf[:n])
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, strings.TrimSpace(body))
	}
	return nil
}

// KillAPIServer ends the kube-apiserver with SIGKILL, as a crash or an OOM
// kill would, and leaves the other processes running.
func (cp *ControlPlane) KillAPIServer() error {
	p := cp.process(APIServerBinary)
	if p == nil {
		return errors.New("no kube-apiserver in this control plane")
	}
	if !p.exited() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

// RestartAPIServer starts the kube-apiserver again with the arguments it
// ran with — same port, certificates and etcd — and waits until it is
// ready: clients see their server come back where it was.
func (cp *ControlPlane) RestartAPIServer(ctx context.Context) error {
	old := cp.process(APIServerBinary)
	if old == nil {
		return errors.New("no kube-apiserver in this control plane")
	}
	if !old.exited() {
		return errors.New("kube-apiserver is still running")
	}
	p, err := startProcess(old.name, old.cmd.Path, cp.opts.Dir, old.cmd.Args[1:])
	if err != nil {
		return err
	}
	for i := range cp.procs {
		if cp.procs[i] == old {
			cp.procs[i] = p
		}
	}
	client, err := rest.HTTPClientFor(cp.restConfig)
	if err != nil {
		return err
	}
	waitCtx, cancel := context.WithTimeout(ctx, cp.opts.StartTimeout)
	defer cancel()
	return p.waitFor(waitCtx, "/readyz", func(ctx context.Context) error {
		return httpOK(ctx, client, cp.server+"/readyz", "")
	})
}

func (cp *ControlPlane) process(name string) *process {
	for _, p := range cp.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}
