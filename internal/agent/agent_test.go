package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/config/flowcontrol"
	"strata.dev/strata/internal/agent"
	"strata.dev/strata/internal/cli"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/testenv"
)

var packDirs = []string{"../../../shared/testdata/pack-central", "../../packs"}

func helloProfile(version, replicas string) *v1.ClusterProfile {
	return &v1.ClusterProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-" + version, Namespace: controller.SharedNamespace},
		Spec: v1.ClusterProfileSpec{
			Name: "hello", Version: version, Type: v1.ProfileAddOn,
			Variables: []v1.Variable{{Name: "replicas", Format: v1.FormatNumber, Default: replicas}},
			Layers: []v1.Layer{{
				Name: "hello-universe", Kind: v1.LayerAddon,
				Pack:   &v1.PackSource{Name: "hello-universe", Version: "1.2.0"},
				Values: "manifests:\n  hello-universe:\n    replicas: {{.spectro.var.replicas}}\n",
			}},
		},
	}
}

// An agent-mode cluster, end to end on a real management plane and a real
// workload cluster that the manager never connects to: the agent registers
// with a one-time token, installs, follows a profile change, holds a Manual
// plan until it is approved, repairs drift — also while the management
// plane is unreachable, and restarted then — reports again when it is back, restarts on its
// stored credentials, can touch nothing of another cluster or project, and
// removes the layers when the Cluster is deleted.
func TestAgentModeEndToEnd(t *testing.T) {
	log.SetLogger(logr.Discard())
	ctx := context.Background()
	mgmt := testenv.Management(t, "../../config/crd/bases")
	c, err := client.New(mgmt, client.Options{Scheme: controller.Scheme()})
	must(t, err)
	for _, ns := range []string{controller.SharedNamespace, "edge", "other"} {
		must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	packs, err := pack.LoadCatalog(packDirs...)
	must(t, err)
	stopManager := startManager(t, mgmt, controller.ManagerOptions{Packs: packs, LayerTimeout: 2 * time.Minute})
	kubeconfig := testenv.Kubeconfig(t, mgmt)
	must(t, c.Create(ctx, helloProfile("1.0.0", "1")))

	site := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "site-1", Namespace: "edge"}, Spec: v1.ClusterSpec{
		Mode: v1.ModeAgent, Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.0.0"}},
	}}
	neighbour := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "site-2", Namespace: "edge"}, Spec: v1.ClusterSpec{
		Mode: v1.ModeAgent, Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.0.0"}},
	}}
	foreign := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "site-1", Namespace: "other"}, Spec: v1.ClusterSpec{
		Mode: v1.ModeAgent, Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.0.0"}},
	}}
	// A manager of an earlier version bound each agent to the shared
	// profiles by a RoleBinding of its own.
	earlier := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "strata-agent.edge.site-1", Namespace: controller.SharedNamespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "strata", "strata.dev/cluster": "site-1"}},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: controller.AgentServiceAccount("site-1"), Namespace: "edge"}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "strata-agent-shared"},
	}
	must(t, c.Create(ctx, earlier))
	for _, cl := range []*v1.Cluster{site, neighbour, foreign} {
		must(t, c.Create(ctx, cl))
	}
	waitFor(t, "the manager to show site-1 waiting for its agent", func() (bool, string) {
		got := getCluster(t, c, site)
		cond := apimeta.FindStatusCondition(got.Status.Conditions, v1.ConditionAgentConnected)
		return cond != nil && cond.Reason == "NotRegistered" && got.Status.Phase == v1.ClusterPending && strings.Contains(cond.Message, "join-command site-1 -n edge"), fmt.Sprintf("%+v", got.Status)
	})
	// The project's agents read the shared profiles through one
	// RoleBinding, whatever their number: the API server walks a
	// namespace's RoleBindings on every request there. The earlier
	// version's binding is gone.
	edgeAgents := func() []rbacv1.RoleBinding {
		var bindings rbacv1.RoleBindingList
		must(t, c.List(ctx, &bindings, client.InNamespace(controller.SharedNamespace)))
		var of []rbacv1.RoleBinding
		for _, b := range bindings.Items {
			for _, s := range b.Subjects {
				if s.Namespace == "edge" || s.Name == "system:serviceaccounts:edge" {
					of = append(of, b)
				}
			}
		}
		return of
	}
	if got := edgeAgents(); len(got) != 1 || got[0].Subjects[0].Kind != rbacv1.GroupKind || got[0].Subjects[0].Name != "system:serviceaccounts:edge" {
		t.Errorf("RoleBindings for the agents of edge in the shared namespace: %+v, want one, for the group of edge's ServiceAccounts", got)
	}

	// The agent reaches the management plane through a port that can be cut.
	server, err := url.Parse(mgmt.Host)
	must(t, err)
	proxy := testenv.StartProxy(t, server.Host)
	joinLine := strataCLI(t, "cluster", "join-command", "site-1", "-n", "edge", "--kubeconfig", kubeconfig, "--server", "https://"+proxy.Addr)
	args := strings.Fields(strings.TrimSpace(joinLine))
	if len(args) < 2 || args[0] != "strata" || args[1] != "agent" {
		t.Fatalf("join-command printed %q, want a strata agent command line", joinLine)
	}
	workload := testenv.WorkloadCluster(t, testenv.ClusterOptions{Name: "site-1", Nodes: 1})
	agentFlags := []string{"--kubeconfig", workload.KubeconfigPath(), "--heartbeat", "1s", "--resync", "10s", "--layer-timeout", "2m"}
	for _, d := range packDirs {
		agentFlags = append(agentFlags, "--packs", d)
	}
	stopAgent := startAgent(t, append(args[2:], agentFlags...))

	ws := kubernetes.NewForConfigOrDie(workload.RESTConfig())
	replicas := func(want int32) func() (bool, string) {
		return func() (bool, string) {
			dep, err := ws.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return *dep.Spec.Replicas == want && dep.Status.ReadyReplicas == want, fmt.Sprintf("replicas %d ready %d", *dep.Spec.Replicas, dep.Status.ReadyReplicas)
		}
	}
	readyAt := func(version string) func() (bool, string) {
		return func() (bool, string) {
			got := getCluster(t, c, site)
			ok := got.Status.Phase == v1.ClusterReady && len(got.Status.Layers) == 1 && got.Status.Layers[0].Phase == "Ready" &&
				got.Status.Layers[0].ProfileVersion == version && got.Status.ObservedGeneration == got.Generation &&
				apimeta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionAgentConnected)
			return ok, fmt.Sprintf("%+v", got.Status)
		}
	}
	waitFor(t, "site-1 Ready on profile 1.0.0, reported by its agent", readyAt("1.0.0"))
	waitFor(t, "the workload deployment at 1 replica", replicas(1))
	if a := getCluster(t, c, site).Status.Agent; a == nil || a.HeartbeatSeconds != 1 {
		t.Errorf("status.agent = %+v, want a heartbeat every second", a)
	}
	// The agent reported in its own namespace; the manager showed it.
	report := &corev1.ConfigMap{}
	must(t, c.Get(ctx, types.NamespacedName{Namespace: controller.AgentNamespace(client.ObjectKeyFromObject(site)), Name: controller.AgentReport("site-1")}, report))
	if !strings.Contains(report.Data[controller.ReportKey], `"profileVersion":"1.0.0"`) {
		t.Errorf("the agent's report reads %q, want its layers on 1.0.0", report.Data[controller.ReportKey])
	}
	// The heartbeat renews the agent's Lease; the Cluster is not written
	// while nothing the agent reports changes.
	renewed := func(after time.Time) func() (bool, string) {
		return func() (bool, string) {
			lease := &coordinationv1.Lease{}
			if err := c.Get(ctx, types.NamespacedName{Namespace: controller.AgentNamespace(client.ObjectKeyFromObject(site)), Name: controller.AgentLease("site-1")}, lease); err != nil {
				return false, err.Error()
			}
			if lease.Spec.RenewTime == nil {
				return false, "never renewed"
			}
			return lease.Spec.RenewTime.After(after), lease.Spec.RenewTime.String()
		}
	}
	// The Lease is in a namespace of the agent's own, where one
	// RoleBinding authorizes its renewals however many agents the
	// project holds.
	var bindings rbacv1.RoleBindingList
	must(t, c.List(ctx, &bindings, client.InNamespace(controller.AgentNamespace(client.ObjectKeyFromObject(site)))))
	if len(bindings.Items) != 1 || len(bindings.Items[0].Subjects) != 1 || bindings.Items[0].Subjects[0].Name != controller.AgentServiceAccount("site-1") {
		t.Errorf("RoleBindings in the agent's namespace: %+v, want one, for site-1's agent", bindings.Items)
	}
	steady := getCluster(t, c, site).ResourceVersion
	start := time.Now()
	waitFor(t, "the Lease renewed once", renewed(start))
	waitFor(t, "the Lease renewed over three more heartbeats", renewed(start.Add(3*time.Second)))
	if got := getCluster(t, c, site).ResourceVersion; got != steady {
		t.Errorf("the Cluster was written (resourceVersion %s → %s) while the agent only beat", steady, got)
	}

	// The join token served once: the API server ends it as soon as its
	// cache of authentications (10 s) lets go of it.
	joinToken := flagValue(args, "--token")
	joinClient, err := client.New(&rest.Config{Host: "https://" + proxy.Addr, BearerToken: joinToken, TLSClientConfig: rest.TLSClientConfig{CAData: mgmt.CAData}}, client.Options{Scheme: controller.Scheme()})
	must(t, err)
	waitFor(t, "the join token refused", func() (bool, string) {
		err := joinClient.Get(ctx, client.ObjectKeyFromObject(site), &v1.Cluster{})
		return apierrors.IsUnauthorized(err), fmt.Sprintf("%v", err)
	})
	// Started again with the spent token, as a Deployment would, the agent
	// goes on with the credentials it keeps.
	stopAgent()
	stopped := time.Now()
	stopAgent = startAgent(t, append(args[2:], agentFlags...))
	waitFor(t, "a heartbeat from the restarted agent", renewed(stopped))

	// What the agent holds reaches its own Cluster, and nothing else.
	agentClient, agentConfig := agentCredentials(t, ctx, ws, mgmt, proxy.Addr)
	if err := agentClient.Get(ctx, client.ObjectKeyFromObject(site), &v1.Cluster{}); err != nil {
		t.Errorf("the agent cannot read its own Cluster: %v", err)
	}
	for what, try := range map[string]func() error{
		"read the neighbour's Cluster":    func() error { return agentClient.Get(ctx, client.ObjectKeyFromObject(neighbour), &v1.Cluster{}) },
		"read another project's Cluster":  func() error { return agentClient.Get(ctx, client.ObjectKeyFromObject(foreign), &v1.Cluster{}) },
		"list the project's Clusters":     func() error { return agentClient.List(ctx, &v1.ClusterList{}, client.InNamespace("edge")) },
		"list another project's profiles": func() error { return agentClient.List(ctx, &v1.ClusterProfileList{}, client.InNamespace("other")) },
		"read the project's Secrets":      func() error { return agentClient.List(ctx, &corev1.SecretList{}, client.InNamespace("edge")) },
		"change its own Cluster's spec":   func() error { return agentClient.Update(ctx, getCluster(t, c, site)) },
		"write the neighbour's status":    func() error { return agentClient.Status().Update(ctx, getCluster(t, c, neighbour)) },
		"renew the neighbour's Lease": func() error {
			return agentClient.Get(ctx, types.NamespacedName{Namespace: controller.AgentNamespace(client.ObjectKeyFromObject(neighbour)), Name: controller.AgentLease("site-2")}, &coordinationv1.Lease{})
		},
		"write the neighbour's report": func() error {
			report := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: controller.AgentReport("site-2"), Namespace: controller.AgentNamespace(client.ObjectKeyFromObject(neighbour))}}
			return agentClient.Patch(ctx, report, client.RawPatch(types.MergePatchType, []byte(`{"data":{"status":"{}"}}`)))
		},
		"mint a token for the neighbour": func() error {
			return agentClient.SubResource("token").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: controller.AgentServiceAccount("site-2"), Namespace: "edge"}}, &authenticationv1.TokenRequest{})
		},
	} {
		if err := try(); !apierrors.IsForbidden(err) {
			t.Errorf("the agent's credentials may %s: %v, want Forbidden", what, err)
		}
	}

	// With Strata's flow control applied, the API server serves the
	// agent's requests under the agents' FlowSchema (it says which one in
	// each answer).
	must(t, flowcontrol.Apply(ctx, mgmt))
	schema := &flowcontrolv1.FlowSchema{}
	must(t, c.Get(ctx, types.NamespacedName{Name: "strata-agents"}, schema))
	httpClient, err := rest.HTTPClientFor(agentConfig)
	must(t, err)
	waitFor(t, "the agent's request served under FlowSchema strata-agents", func() (bool, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, agentConfig.Host+"/apis/strata.dev/v1alpha1/namespaces/edge/clusters/site-1", nil)
		must(t, err)
		resp, err := httpClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		got := resp.Header.Get("X-Kubernetes-PF-FlowSchema-UID")
		return resp.StatusCode == http.StatusOK && got == string(schema.UID), fmt.Sprintf("%s, flow schema %q (strata-agents is %s)", resp.Status, got, schema.UID)
	})

	// A new profile version.
	must(t, c.Create(ctx, helloProfile("1.1.0", "2")))
	setVersion(t, c, site, "1.1.0", "")
	waitFor(t, "the workload deployment at 2 replicas", replicas(2))
	waitFor(t, "site-1 Ready on 1.1.0", readyAt("1.1.0"))

	// A Manual cluster: the plan waits in the status until approved.
	must(t, c.Create(ctx, helloProfile("1.2.0", "3")))
	setVersion(t, c, site, "1.2.0", v1.UpdateManual)
	waitFor(t, "a pending plan written by the agent", func() (bool, string) {
		got := getCluster(t, c, site)
		return got.Status.PendingPlan != nil && got.Status.PendingPlan.Summary == "1 to upgrade", fmt.Sprintf("%+v", got.Status.PendingPlan)
	})
	waitFor(t, "the deployment still at 2 replicas", replicas(2))
	out := strataCLI(t, "cluster", "approve", "site-1", "-n", "edge", "--kubeconfig", kubeconfig)
	if !strings.Contains(out, "approved plan") {
		t.Errorf("approve printed %q", out)
	}
	waitFor(t, "the approved plan applied: 3 replicas", replicas(3))
	waitFor(t, "site-1 Ready on 1.2.0", readyAt("1.2.0"))

	// Drift is repaired by the agent.
	scale(t, ws, 5)
	waitFor(t, "drift repaired back to 3 replicas", replicas(3))

	// The management plane becomes unreachable: the manager shows the agent
	// disconnected; the agent keeps the stack applied and repaired.
	proxy.Cut()
	waitFor(t, "the manager to show the agent disconnected", func() (bool, string) {
		got := getCluster(t, c, site)
		cond := apimeta.FindStatusCondition(got.Status.Conditions, v1.ConditionAgentConnected)
		return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == "HeartbeatMissed", fmt.Sprintf("%+v", cond)
	})
	if out := strataCLI(t, "get", "clusters", "-n", "edge", "--kubeconfig", kubeconfig); !strings.Contains(out, "Ready (agent disconnected)") {
		t.Errorf("strata get clusters does not show the agent disconnected:\n%s", out)
	}
	scale(t, ws, 6)
	waitFor(t, "drift repaired while disconnected", replicas(3))
	// Restarted while the plane is away, the agent keeps the cluster as the
	// plane last had it, from what the cluster records of it.
	stopAgent()
	stopAgent = startAgent(t, append(args[2:], agentFlags...))
	scale(t, ws, 7)
	waitFor(t, "drift repaired by the agent restarted while disconnected", replicas(3))
	// The manager stops too; the agent comes back to a management plane
	// without it and reports, once, in its namespace; the manager, back,
	// shows it connected.
	stopManager()
	restored := time.Now().Truncate(time.Second)
	proxy.Restore(t)
	reportKey := types.NamespacedName{Namespace: controller.AgentNamespace(client.ObjectKeyFromObject(site)), Name: controller.AgentReport("site-1")}
	waitFor(t, "the agent to report again", func() (bool, string) {
		must(t, c.Get(ctx, reportKey, report))
		var status v1.ClusterStatus
		must(t, json.Unmarshal([]byte(report.Data[controller.ReportKey]), &status))
		return status.Agent != nil && !status.Agent.LastHeartbeatTime.Time.Before(restored), fmt.Sprintf("%+v", status.Agent)
	})
	reported := report.ResourceVersion
	waitFor(t, "three more heartbeats", renewed(time.Now().Add(3*time.Second)))
	must(t, c.Get(ctx, reportKey, report))
	if report.ResourceVersion != reported {
		t.Errorf("the agent reported again (resourceVersion %s → %s) while nothing changed but its manager was away", reported, report.ResourceVersion)
	}
	startManager(t, mgmt, controller.ManagerOptions{Packs: packs, LayerTimeout: 2 * time.Minute})
	waitFor(t, "the manager to show the agent connected again", func() (bool, string) {
		got := getCluster(t, c, site)
		cond := apimeta.FindStatusCondition(got.Status.Conditions, v1.ConditionAgentConnected)
		return cond != nil && cond.Status == metav1.ConditionTrue, fmt.Sprintf("%+v", cond)
	})

	// Restarted without a token, the agent goes on with its stored
	// credentials.
	stopAgent()
	stopped = time.Now()
	startAgent(t, append([]string{"--cluster", "edge/site-1"}, agentFlags...))
	waitFor(t, "a heartbeat from the restarted agent", renewed(stopped))
	waitFor(t, "site-1 still Ready on 1.2.0", readyAt("1.2.0"))

	// Deleting the Cluster: the agent removes the layers, then the Cluster
	// and the agent's access go.
	must(t, c.Delete(ctx, site))
	waitFor(t, "the Cluster gone and its layers removed", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(site), &v1.Cluster{}); !apierrors.IsNotFound(err) {
			return false, fmt.Sprintf("cluster: %v", err)
		}
		_, err := ws.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("deployment: %v", err)
	})
	if err := c.Get(ctx, client.ObjectKey{Namespace: "edge", Name: controller.AgentServiceAccount("site-1")}, &corev1.ServiceAccount{}); !apierrors.IsNotFound(err) {
		t.Errorf("the agent's ServiceAccount outlived its Cluster: %v", err)
	}
	agentNS := controller.AgentNamespace(client.ObjectKeyFromObject(site))
	if err := c.Get(ctx, client.ObjectKey{Namespace: agentNS, Name: controller.AgentLease("site-1")}, &coordinationv1.Lease{}); !apierrors.IsNotFound(err) {
		t.Errorf("the agent's Lease outlived its Cluster: %v", err)
	}
	// No namespace controller runs here to finish the deletion: the
	// namespace is gone or going.
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: agentNS}, ns); !apierrors.IsNotFound(err) && ns.DeletionTimestamp.IsZero() {
		t.Errorf("the agent's namespace %s outlived its Cluster: %v", agentNS, err)
	}
	// The project's binding to the shared profiles stays for site-2's
	// agent, and goes with it.
	if got := edgeAgents(); len(got) != 1 {
		t.Errorf("RoleBindings for the agents of edge once site-1 is gone: %+v, want the one site-2's agent still needs", got)
	}
	must(t, c.Delete(ctx, neighbour))
	waitFor(t, "the binding of edge's agents gone with the last of them", func() (bool, string) {
		got := edgeAgents()
		return len(got) == 0, fmt.Sprintf("%+v", got)
	})
}

func setVersion(t *testing.T, c client.Client, cl *v1.Cluster, version string, policy v1.UpdatePolicy) {
	t.Helper()
	got := getCluster(t, c, cl)
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.Profiles[0].Version = version
	if policy != "" {
		got.Spec.UpdatePolicy = policy
	}
	must(t, c.Patch(context.Background(), got, patch))
}

func scale(t *testing.T, ws kubernetes.Interface, n int32) {
	t.Helper()
	ctx := context.Background()
	// A patch, as kubectl scale makes: a read-then-update would conflict
	// with the Deployment controller writing status meanwhile.
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n))
	_, err := ws.AppsV1().Deployments("hello-universe").Patch(ctx, "hello-universe-deployment", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubectl-edit"})
	must(t, err)
}

// agentCredentials is a client with the token the agent stored in its
// cluster, through the proxy.
func agentCredentials(t *testing.T, ctx context.Context, ws kubernetes.Interface, mgmt *rest.Config, addr string) (client.Client, *rest.Config) {
	t.Helper()
	s, err := ws.CoreV1().Secrets(agent.DefaultCredentialsNamespace).Get(ctx, agent.CredentialsSecret, metav1.GetOptions{})
	must(t, err)
	cfg := &rest.Config{Host: "https://" + addr, BearerToken: string(s.Data["token"]), TLSClientConfig: rest.TLSClientConfig{CAData: mgmt.CAData}}
	c, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
	must(t, err)
	return c, cfg
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// startAgent runs `strata agent` with args until the returned stop is
// called or the test ends.
func startAgent(t *testing.T, args []string) (stop func()) {
	t.Helper()
	stop, _ = startAgentLogged(t, args)
	return stop
}

// startAgentLogged also returns what the agent writes to its standard
// error: its log.
func startAgentLogged(t *testing.T, args []string) (stop func(), log *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errOut := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		root := cli.NewRootCommand(&bytes.Buffer{}, errOut)
		root.SetArgs(append([]string{"agent"}, args...))
		done <- root.ExecuteContext(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("strata agent: %v\n%s", err, errOut.String())
			}
		})
	}
	t.Cleanup(stop)
	return stop, errOut
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startManager(t *testing.T, mgmt *rest.Config, opts controller.ManagerOptions) (stop func()) {
	t.Helper()
	opts.SeveralPerProcess = true
	mgr, err := controller.NewManager(mgmt, opts)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func strataCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cli.NewRootCommand(&out, &errOut)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatalf("strata %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

func getCluster(t *testing.T, c client.Client, cl *v1.Cluster) *v1.Cluster {
	t.Helper()
	got := &v1.Cluster{}
	must(t, c.Get(context.Background(), client.ObjectKeyFromObject(cl), got))
	return got
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		ok, why := cond()
		last = why
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v; last: %s", what, err, last)
	}
}
