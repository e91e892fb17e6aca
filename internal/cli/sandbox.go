package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"strata.dev/strata/internal/controlplane"
)

type sandboxOptions struct {
	dir     string
	nodes   int
	check   bool
	keep    bool
	timeout time.Duration
}

func newSandboxCommand() *cobra.Command {
	o := sandboxOptions{}
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a real Kubernetes control plane with simulated nodes on this machine",
		Long: `Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
(simulated nodes) on free loopback ports, writes an admin kubeconfig and
prints its path. With --check it deploys a sample workload and waits until
its pods run. It keeps running until Ctrl-C unless --keep=false.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runSandbox(ctx, cmd.OutOrStdout(), o)
		},
	}
	cmd.Flags().StringVar(&o.dir, "dir", "", "data folder (default: a new temporary folder, removed on exit)")
	cmd.Flags().IntVar(&o.nodes, "nodes", 3, "number of simulated nodes")
	cmd.Flags().BoolVar(&o.check, "check", false, "deploy a sample workload and wait until its pods are Running")
	cmd.Flags().BoolVar(&o.keep, "keep", true, "keep running until interrupted; --keep=false stops after start-up (and --check)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 2*time.Minute, "how long each start-up step may take")
	return cmd
}

func runSandbox(ctx context.Context, out io.Writer, o sandboxOptions) error {
	if o.nodes < 1 {
		return usageError("--nodes: want at least 1, got %d", o.nodes)
	}
	dir := o.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "strata-sandbox-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	bins := controlplane.FindBinaries("")
	fmt.Fprintf(out, "starting control plane %s with %d simulated nodes (data and logs in %s)\n", bins.Version, o.nodes, dir)
	began := time.Now()
	cp, err := controlplane.Start(ctx, controlplane.Options{
		Name: "sandbox", Dir: dir, Binaries: bins,
		ControllerManager: true, Scheduler: true, Nodes: o.nodes,
		StartTimeout: o.timeout, Durable: o.dir != "",
	})
	if err != nil {
		return err
	}
	defer cp.Stop()
	fmt.Fprintf(out, "ready in %s: API server %s\n", time.Since(began).Round(100*time.Millisecond), cp.Server())
	fmt.Fprintf(out, "kubeconfig: %s\n", cp.KubeconfigPath())

	if o.check {
		if err := deploySample(ctx, out, cp, o.timeout); err != nil {
			return err
		}
	}
	if err := printRSS(out, cp); err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(out, "running; press Ctrl-C to stop")
		<-ctx.Done()
	}
	fmt.Fprintln(out, "stopping")
	return nil
}

// deploySample proves the cluster schedules and runs workloads: a Deployment
// must become Available with every pod Running on a simulated node.
func deploySample(ctx context.Context, out io.Writer, cp *controlplane.ControlPlane, timeout time.Duration) error {
	cs, err := cp.Clientset()
	if err != nil {
		return err
	}
	labels := map[string]string{"app": "hello"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "hello", Image: "hello-universe:1.2.0"}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("sample deployment: %w", err)
	}
	fmt.Fprintln(out, "deployed default/hello (3 replicas); waiting until Available")
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments("default").Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.AvailableReplicas == 3, nil
	})
	if err != nil {
		return fmt.Errorf("sample deployment not Available: %w (logs in %s)", err, cp.Dir())
	}
	return printPods(ctx, out, cs)
}

func printPods(ctx context.Context, out io.Writer, cs *kubernetes.Clientset) error {
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POD\tPHASE\tNODE\tIP")
	for _, p := range pods.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.PodIP)
	}
	return tw.Flush()
}

func printRSS(out io.Writer, cp *controlplane.ControlPlane) error {
	rss, err := cp.RSSBytes()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(rss))
	var total int64
	for n, b := range rss {
		names = append(names, n)
		total += b
	}
	sort.Strings(names)
	fmt.Fprint(out, "memory (RSS):")
	for _, n := range names {
		fmt.Fprintf(out, " %s %d MiB,", filepath.Base(n), rss[n]>>20)
	}
	fmt.Fprintf(out, " total %d MiB\n", total>>20)
	return nil
}
