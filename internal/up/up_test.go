package up_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/cli"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/testenv"
	"strata.dev/strata/internal/up"
)

// The test binary doubles as the strata command, so `strata up` runs as a
// process of its own — stopped by `strata down` as a user's would be.
func TestMain(m *testing.M) {
	if os.Getenv("STRATA_TEST_AS_CLI") == "1" {
		os.Exit(cli.Execute(os.Args[1:]))
	}
	log.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

var packs = []string{"--packs", "../../packs", "--packs", "../../../shared/testdata/pack-central"}

// upProcess is a `strata up` running as a child process.
type upProcess struct {
	cmd    *exec.Cmd
	output *lockedBuffer
	exited chan struct{}
}

// lockedBuffer is written by the goroutine reading strata up's output and
// read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startUp(t *testing.T, dir string, flags ...string) *upProcess {
	t.Helper()
	// Verbose: the controllers' log is kept and its tail shown when a test fails.
	cmd := exec.Command(os.Args[0], append(append([]string{"up", "--dir", dir, "--verbose"}, flags...), packs...)...)
	cmd.Env = append(os.Environ(), "STRATA_TEST_AS_CLI=1", up.ToolsDirEnv+"="+filepath.Dir(testenv.Tool(t, "registry")))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	p := &upProcess{cmd: cmd, output: &lockedBuffer{}, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.output.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "Management plane ready") {
				close(ready)
			}
		}
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-p.exited
	})
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("strata up exited:\n%s", p.output)
	case <-time.After(2 * time.Minute):
		t.Fatalf("strata up not ready:\n%s", p.output)
	}
	return p
}

// strata runs a strata command in this process and returns its output.
func strata(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cli.NewRootCommand(&out, &errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String() + errOut.String(), err
}

func mustStrata(t *testing.T, args ...string) string {
	t.Helper()
	out, err := strata(t, args...)
	if err != nil {
		t.Fatalf("strata %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// descendants lists the processes below pid, found through /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name may hold spaces; the fields after it do not.
		fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		if len(fields) > 1 {
			ppid, _ := strconv.Atoi(fields[1])
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		for _, c := range children[next] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func alive(pids []int) []int {
	var out []int
	for _, p := range pids {
		if syscall.Kill(p, 0) == nil {
			if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p)); err == nil && !strings.Contains(string(data[bytes.LastIndexByte(data, ')'):]), ") Z") {
				out = append(out, p)
			}
		}
	}
	return out
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	testenv.WaitUntil(t, what, timeout, cond)
}

const localCluster = `apiVersion: strata.dev/v1alpha1
kind: Cluster
metadata: {name: lab}
spec:
  provider: local
  nodePools: [{name: workers, count: 2}]
  profiles:
    - name: local-infra
      version: 1.0.0
    - name: hello-apps
      version: %s
      variables: [{name: replicas, value: "2"}]
`

// strata up runs a local management plane with local clusters: a cluster
// from an infra and an add-on profile gets Ready with pods Running on its
// simulated nodes, scales, takes a new profile version, survives a dead
// API server and a restart of strata up, and is deleted; strata down
// leaves no process behind.
func TestUpRunsLocalClusters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	first := startUp(t, dir)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	mgmt := []string{"--kubeconfig", kubeconfig, "-n", "lab"}

	t.Cleanup(func() {
		if t.Failed() {
			out, _ := strata(t, append([]string{"describe", "cluster", "lab"}, mgmt...)...)
			t.Logf("strata describe cluster lab:\n%s\nstrata up output (last lines):\n%s", out, tail(first.output.String(), 300))
		}
	})

	if out, err := strata(t, "up", "--dir", dir); err == nil || !strings.Contains(out+err.Error(), "already running") {
		t.Errorf("a second strata up: %v\n%s", err, out)
	}

	clusterFile := filepath.Join(t.TempDir(), "lab.yaml")
	writeCluster := func(version string, workers int) {
		text := strings.Replace(fmt.Sprintf(localCluster, version), "count: 2", fmt.Sprintf("count: %d", workers), 1)
		if err := os.WriteFile(clusterFile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeCluster("1.0.0", 2)
	mustStrata(t, append([]string{"apply", "-f", "../../examples/infra-local.yaml", "-f", "../../examples/addon-hello.yaml", "-f", "../../examples/releases", "-f", clusterFile}, mgmt...)...)
	out := mustStrata(t, append([]string{"wait", "lab", "--timeout", "5m"}, mgmt...)...)
	if !strings.Contains(out, "lab          Ready    5/5 layers Ready") || strings.Contains(out, "not found") {
		t.Errorf("wait output:\n%s", out)
	}
	// The packs came from strata up's own registry, filled from --packs.
	if !strings.Contains(first.output.String(), "packs:      oci://127.0.0.1:") {
		t.Errorf("strata up does not show its pack registry:\n%s", first.output.String())
	}
	waitFor(t, "hello-universe 1.2.0 of the local registry running on lab", time.Minute, func() (bool, string) {
		out := mustStrata(t, append([]string{"get", "packs", "-o", "json"}, mgmt...)...)
		var uses []struct {
			Name, Version, Digest string
			Registries, Clusters  []string
		}
		if err := json.Unmarshal([]byte(out), &uses); err != nil {
			return false, err.Error()
		}
		for _, u := range uses {
			if u.Name == "hello-universe" && u.Version == "1.2.0" {
				return strings.Join(u.Clusters, ",") == "lab/lab" && strings.Join(u.Registries, ",") == "strata-system/local" && strings.HasPrefix(u.Digest, "sha256:"), fmt.Sprintf("%+v", u)
			}
		}
		return false, out
	})

	workload := func() *kubernetes.Clientset {
		cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(mustStrata(t, append([]string{"cluster", "kubeconfig", "lab"}, mgmt...)...)))
		if err != nil {
			t.Fatal(err)
		}
		return kubernetes.NewForConfigOrDie(cfg)
	}
	ctx := context.Background()
	podsOn := func() (map[string]int, string) {
		pods, err := workload().CoreV1().Pods("hello-universe").List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err.Error()
		}
		nodes := map[string]int{}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				nodes[p.Spec.NodeName]++
			}
		}
		return nodes, fmt.Sprint(nodes)
	}
	waitFor(t, "hello-universe pods Running on the simulated nodes", time.Minute, func() (bool, string) {
		nodes, why := podsOn()
		running := 0
		for node, n := range nodes {
			if strings.HasPrefix(node, "workers-") {
				running += n
			}
		}
		return running == 2, why
	})

	// Scale the pool to 3 nodes.
	writeCluster("1.0.0", 3)
	mustStrata(t, append([]string{"apply", "-f", clusterFile}, mgmt...)...)
	waitFor(t, "3 Ready nodes in pool workers", 2*time.Minute, func() (bool, string) {
		nodes, err := workload().CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "strata.dev/node-pool=workers"})
		if err != nil {
			return false, err.Error()
		}
		return len(nodes.Items) == 3, fmt.Sprintf("%d nodes", len(nodes.Items))
	})

	// Move to hello-apps 1.1.0: the enable-api preset adds the API backend.
	writeCluster("1.1.0", 3)
	mustStrata(t, append([]string{"apply", "-f", clusterFile}, mgmt...)...)
	waitFor(t, "the API deployment of hello-apps 1.1.0", 2*time.Minute, func() (bool, string) {
		deps, err := workload().AppsV1().Deployments("hello-universe").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var names []string
		for _, d := range deps.Items {
			names = append(names, d.Name)
		}
		return len(names) > 1, strings.Join(names, ",")
	})
	mustStrata(t, append([]string{"wait", "lab", "--timeout", "2m"}, mgmt...)...)

	// The local cluster's API server dies: it is started again.
	mc := mgmtClient(t, kubeconfig)
	apiserver := func() int {
		for _, p := range descendants(first.cmd.Process.Pid) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
			if strings.Contains(string(cmdline), "kube-apiserver") && strings.Contains(string(cmdline), filepath.Join(dir, "clusters", "lab", "lab")) {
				return p
			}
		}
		return 0
	}
	dead := apiserver()
	if dead == 0 {
		t.Fatal("no kube-apiserver of the local cluster among strata up's processes")
	}
	must(t, syscall.Kill(dead, syscall.SIGKILL))
	waitFor(t, "a new API server", 2*time.Minute, func() (bool, string) {
		now := apiserver()
		if now == 0 || now == dead {
			return false, fmt.Sprintf("apiserver pid %d", now)
		}
		_, err := workload().CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err == nil, fmt.Sprintf("pid %d: %v", now, err)
	})
	// Strata manages the restarted API server, not the dead one: a
	// Deployment deleted by hand there is put back, and the cluster says
	// Ready with every layer Ready.
	before, err := workload().AppsV1().Deployments("hello-universe").Get(ctx, "ui", metav1.GetOptions{})
	must(t, err)
	must(t, workload().AppsV1().Deployments("hello-universe").Delete(ctx, "ui", metav1.DeleteOptions{}))
	waitFor(t, "the deleted Deployment back and the cluster Ready", 2*time.Minute, func() (bool, string) {
		got := &v1.Cluster{}
		must(t, mc.Get(ctx, types.NamespacedName{Namespace: "lab", Name: "lab"}, got))
		d, err := workload().AppsV1().Deployments("hello-universe").Get(ctx, "ui", metav1.GetOptions{})
		if err != nil || d.UID == before.UID {
			return false, fmt.Sprintf("deployment ui: %v", err)
		}
		var layers []string
		ready := got.Status.Phase == v1.ClusterReady
		for _, l := range got.Status.Layers {
			layers = append(layers, l.Name+" "+l.Phase+" "+l.Message)
			ready = ready && l.Phase == "Ready"
		}
		return ready, fmt.Sprintf("%s; %s", got.Status.Phase, strings.Join(layers, "; "))
	})

	// strata down stops every process; strata up resumes the cluster.
	pids := descendants(first.cmd.Process.Pid)
	if len(pids) < 7 { // management etcd and apiserver, five of the local cluster
		t.Fatalf("strata up runs %d processes, want at least 7", len(pids))
	}
	out = mustStrata(t, "down", "--dir", dir)
	<-first.exited
	if left := alive(append(pids, first.cmd.Process.Pid)); len(left) > 0 {
		t.Fatalf("after strata down, processes %v are alive\n%s", left, out)
	}
	second := startUp(t, dir)
	// The management plane listens on new ports; its kubeconfig says which.
	mc = mgmtClient(t, kubeconfig)
	mustStrata(t, append([]string{"wait", "lab", "--timeout", "3m"}, mgmt...)...)
	waitFor(t, "the pods back after the restart", time.Minute, func() (bool, string) {
		nodes, why := podsOn()
		total := 0
		for _, n := range nodes {
			total += n
		}
		return total >= 2, why
	})

	// Deleting the cluster stops its processes and removes its data.
	clusterPIDs := []int{}
	for _, p := range descendants(second.cmd.Process.Pid) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if strings.Contains(string(cmdline), filepath.Join(dir, "clusters")) {
			clusterPIDs = append(clusterPIDs, p)
		}
	}
	must(t, mc.Delete(ctx, &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "lab", Name: "lab"}}))
	waitFor(t, "the cluster, its processes and its data gone", 2*time.Minute, func() (bool, string) {
		err := mc.Get(ctx, types.NamespacedName{Namespace: "lab", Name: "lab"}, &v1.Cluster{})
		_, statErr := os.Stat(filepath.Join(dir, "clusters", "lab", "lab"))
		left := alive(clusterPIDs)
		return err != nil && os.IsNotExist(statErr) && len(left) == 0, fmt.Sprintf("get: %v, data: %v, alive: %v", err, statErr, left)
	})

	pids = descendants(second.cmd.Process.Pid)
	mustStrata(t, "down", "--dir", dir, "--purge")
	<-second.exited
	if left := alive(append(pids, second.cmd.Process.Pid)); len(left) > 0 {
		t.Fatalf("after strata down --purge, processes %v are alive", left)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("state folder after --purge: %v", err)
	}
}

func mgmtClient(t *testing.T, kubeconfig string) client.Client {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	must(t, err)
	c, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
	must(t, err)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// strata up --capi runs Cluster API's manager and Strata's providers as
// processes of their own, supervised, with the ClusterClass local applied,
// and says where they log; strata down stops them all.
func TestUpWithClusterAPI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	p := startUp(t, dir, "--capi")
	if !strings.Contains(p.output.String(), "cluster API: v1.13.6 (log "+filepath.Join(dir, "capi", "cluster-api.log")) {
		t.Errorf("strata up --capi does not say where Cluster API logs:\n%s", p.output)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	class := &unstructured.Unstructured{}
	class.SetAPIVersion("cluster.x-k8s.io/v1beta2")
	class.SetKind("ClusterClass")
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "strata-system", Name: "local"}, class); err != nil {
		t.Fatalf("ClusterClass local: %v", err)
	}
	// The providers' process, killed, is started again.
	providers := func() int {
		for _, pid := range alive(descendants(p.cmd.Process.Pid)) {
			if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmdline), "capi-providers") {
				return pid
			}
		}
		return 0
	}
	first := providers()
	if first == 0 {
		t.Fatal("no capi-providers process below strata up")
	}
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "capi-providers started again", time.Minute, func() (bool, string) {
		now := providers()
		return now != 0 && now != first, fmt.Sprint(now)
	})
	below := descendants(p.cmd.Process.Pid)
	mustStrata(t, "down", "--dir", dir)
	<-p.exited
	if left := alive(below); len(left) > 0 {
		t.Errorf("processes left after strata down: %v", left)
	}
}
