package clusterapi_test

import (
	"bufio"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/provider/local"
	"strata.dev/strata/internal/testenv"
)

// BenchmarkProvisioning measures, in one run on one machine, the time from
// creating a Cluster to Ready for provider capi (ClusterClass local, made
// by Cluster API's manager and Strata's providers) against provider local
// (Strata's own), both with the same profiles and two worker nodes; the
// management plane's requests per cluster (all clients: Strata's manager,
// Cluster API's, the providers); and the memory of Cluster API's manager and
// of each cluster's control plane.
//
//	go test -run '^$' -bench BenchmarkProvisioning -benchtime 1x ./internal/provider/clusterapi/
func BenchmarkProvisioning(b *testing.B) {
	localClusters := &local.Provider{Root: filepath.Join(b.TempDir(), "local")}
	b.Cleanup(localClusters.StopAll)
	bed := planeWith(b, localClusters)
	c, cfg, capiManager := bed.c, bed.cfg, bed.capi.Manager
	pools := func(class string) []v1.NodePool {
		return []v1.NodePool{{Name: "workers", Count: 2, Class: class}}
	}
	profiles := []v1.ProfileAttachment{{Name: "capi-infra", Version: "1.x"}, {Name: "hello-apps", Version: "1.x"}}
	var localSec, capiSec, localReq, capiReq float64
	rssBefore, _ := controlplane.ProcessRSS(capiManager.PID())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lc := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: fmt.Sprintf("local-%d", i)},
			Spec: v1.ClusterSpec{Provider: v1.ProviderLocal, NodePools: pools(""), Profiles: profiles}}
		sec, req := provision(b, c, cfg, lc)
		localSec, localReq = localSec+sec, localReq+req
		cc := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: fmt.Sprintf("capi-%d", i)},
			Spec: v1.ClusterSpec{Provider: v1.ProviderCAPI, CAPI: &v1.CAPISpec{ClassRef: v1.ClassRef{Name: "local", Namespace: "strata-system"}},
				NodePools: pools("default-worker"), Profiles: profiles}}
		sec, req = provision(b, c, cfg, cc)
		capiSec, capiReq = capiSec+sec, capiReq+req
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(localSec/n, "s-local-to-Ready")
	b.ReportMetric(capiSec/n, "s-capi-to-Ready")
	b.ReportMetric(capiSec/localSec, "capi/local-time")
	b.ReportMetric(localReq/n, "mgmt-req/local-cluster")
	b.ReportMetric(capiReq/n, "mgmt-req/capi-cluster")
	rssAfter, _ := controlplane.ProcessRSS(capiManager.PID())
	b.ReportMetric(float64(rssAfter)/(1<<20), "capi-manager-MiB")
	b.ReportMetric(float64(rssAfter-rssBefore)/(1<<20)/n, "capi-manager-MiB/cluster")
	b.ReportMetric(controlPlaneMiB(bed.capi.Local)/n, "capi-control-plane-MiB/cluster")
	b.ReportMetric(controlPlaneMiB(localClusters)/n, "local-control-plane-MiB/cluster")
}

// provision creates a cluster and waits until it is Ready, returning the
// seconds it took and the requests the management plane served meanwhile.
func provision(b *testing.B, c client.Client, cfg *rest.Config, cl *v1.Cluster) (seconds, requests float64) {
	b.Helper()
	before := servedRequests(b, cfg)
	start := time.Now()
	if err := c.Create(context.Background(), cl); err != nil {
		b.Fatal(err)
	}
	testenv.WaitUntil(b, cl.Name+" Ready", 5*time.Minute, func() (bool, string) {
		got := getCluster(b, c, cl.Name)
		ready := conditionOf(got, v1.ConditionReady)
		return ready.Status == metav1.ConditionTrue, string(got.Status.Phase) + ": " + ready.Message
	})
	seconds = time.Since(start).Seconds()
	return seconds, servedRequests(b, cfg) - before
}

// servedRequests sums apiserver_request_total on the management plane.
func servedRequests(b *testing.B, cfg *rest.Config) float64 {
	b.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64); err == nil {
			total += v
		}
	}
	return total
}

// controlPlaneMiB sums the resident memory of every process of the
// provider's clusters.
func controlPlaneMiB(p *local.Provider) float64 {
	total := int64(0)
	for _, procs := range p.PIDs() {
		for _, pid := range procs {
			if rss, err := controlplane.ProcessRSS(pid); err == nil {
				total += rss
			}
		}
	}
	return float64(total) / (1 << 20)
}
