package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/cli"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/loadtest"
	"strata.dev/strata/internal/testenv"
)

// `strata loadtest agents` joins fifty hollow agents to a real management
// plane and reports them Ready with the requests they made; bad options
// are refused before anything is made; --delete leaves nothing behind.
func TestLoadtestAgents(t *testing.T) {
	f := newHollowFleet(t)
	startManager(t, f.mgmt, controller.ManagerOptions{Packs: f.packs})
	ctx := context.Background()
	must(t, f.c.Create(ctx, helloProfile("1.0.0", "1")))
	kubeconfig := testenv.Kubeconfig(t, f.mgmt)
	base := []string{"loadtest", "agents", "--kubeconfig", kubeconfig, "-n", "fleet", "--packs", packDirs[0], "--packs", packDirs[1]}

	for _, bad := range []struct{ args, want string }{
		{"--clusters 0 --profile hello:1.x", "--clusters 0: want at least 1"},
		{"--clusters 5 --profile nope:1.x", `no published version of profile "nope" in 1.x`},
		{"--clusters 5 --profile hello", `--profile "hello": want NAME:RANGE`},
	} {
		var out, errOut bytes.Buffer
		root := cli.NewRootCommand(&out, &errOut)
		root.SetArgs(append(base, strings.Fields(bad.args)...))
		if err := root.Execute(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("strata loadtest agents %s: %v, want an error saying %q", bad.args, err, bad.want)
		}
	}
	var list v1.ClusterList
	must(t, f.c.List(ctx, &list, client.InNamespace("fleet")))
	if len(list.Items) != 0 {
		t.Fatalf("refused load tests made %d clusters", len(list.Items))
	}

	var out, errOut bytes.Buffer
	root := cli.NewRootCommand(&out, &errOut)
	root.SetArgs(append(base, "--clusters", "50", "--profile", "hello:1.x", "--heartbeat", "5s", "--every", "1s"))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(runCtx) }()
	waitFor(t, "50 load-test clusters Ready on 1.0.0", f.allLabelledReady(t, 50))
	stop()
	if err := <-done; err != nil {
		t.Fatalf("strata loadtest agents: %v\n%s", err, errOut.String())
	}
	last := lastLine(out.String())
	t.Log(last)
	if !strings.Contains(last, "created 50") || !strings.Contains(last, "registered 50") || !strings.Contains(last, "Ready 50") || !strings.Contains(last, "joins/s") || !strings.Contains(last, "429s 0") {
		t.Errorf("the figures when stopped: %q\nall output:\n%s", last, out.String())
	}

	strataCLI(t, "loadtest", "agents", "--delete", "--kubeconfig", kubeconfig, "-n", "fleet")
	must(t, f.c.List(ctx, &list, client.InNamespace("fleet")))
	if len(list.Items) != 0 {
		t.Errorf("--delete left %d clusters", len(list.Items))
	}
	waitFor(t, "the agents' ServiceAccounts gone", func() (bool, string) {
		var sas corev1.ServiceAccountList
		must(t, f.c.List(ctx, &sas, client.InNamespace("fleet"), client.MatchingLabels{"app.kubernetes.io/managed-by": "strata"}))
		return len(sas.Items) == 0, fmt.Sprintf("%d left", len(sas.Items))
	})
	// Their Leases are gone and their namespaces going (no namespace
	// controller runs here to finish them).
	var leases coordinationv1.LeaseList
	must(t, f.c.List(ctx, &leases, client.MatchingLabels{controller.HeartbeatNamespaceLabel: "fleet"}))
	if len(leases.Items) != 0 {
		t.Errorf("--delete left %d agents' Leases", len(leases.Items))
	}
	var namespaces corev1.NamespaceList
	must(t, f.c.List(ctx, &namespaces, client.MatchingLabels{controller.ClusterNamespaceLabel: "fleet"}))
	for _, ns := range namespaces.Items {
		if ns.DeletionTimestamp.IsZero() {
			t.Errorf("--delete left the agent's namespace %s", ns.Name)
		}
	}
}

// allLabelledReady says whether n load-test clusters are Ready.
func (f *hollowFleet) allLabelledReady(t *testing.T, n int) func() (bool, string) {
	return func() (bool, string) {
		var list v1.ClusterList
		must(t, f.c.List(context.Background(), &list, client.InNamespace("fleet"), client.MatchingLabels{loadtest.Label: "agents"}))
		ready := 0
		for _, c := range list.Items {
			if c.Status.Phase == v1.ClusterReady {
				ready++
			}
		}
		return ready == n, fmt.Sprintf("%d of %d Ready", ready, len(list.Items))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
