package engine_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	helmregistry "helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/chartsource"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/stack"
	"strata.dev/strata/internal/testenv"
)

const packCentral = "../../../shared/testdata/pack-central"

// A Helm HTTP repository and an OCI registry, both real servers on
// loopback, serve real chart archives to chart layers.
func TestChartLayersFromHelmRepositoryAndOCIRegistry(t *testing.T) {
	t.Parallel()
	// The HTTP repository: a folder of archives and the index Helm builds.
	repoDir := t.TempDir()
	for _, c := range []string{"spegel-0.0.30/charts/spegel-0.0.30.tgz", "kubevious-1.0.10/charts/kubevious-1.0.10.tgz"} {
		data, err := os.ReadFile(filepath.Join(packCentral, c))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repoDir, filepath.Base(c)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	httpRepo := httptest.NewServer(http.FileServer(http.Dir(repoDir)))
	t.Cleanup(httpRepo.Close)
	idx, err := repo.IndexDirectory(repoDir, httpRepo.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(repoDir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}

	// The OCI registry, with tekton-operator pushed by Helm's own client.
	oci := httptest.NewServer(registry.New())
	t.Cleanup(oci.Close)
	host := strings.TrimPrefix(oci.URL, "http://")
	archive, err := os.ReadFile(filepath.Join(packCentral, "tekton-operator-0.61.0/charts/tekton-operator-0.61.0.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.LoadArchive(strings.NewReader(string(archive)))
	if err != nil {
		t.Fatal(err)
	}
	client, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Push(archive, host+"/charts/"+ch.Metadata.Name+":"+ch.Metadata.Version); err != nil {
		t.Fatal(err)
	}

	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	e, err := engine.New(engine.Options{
		RESTConfig: cp.RESTConfig(), Timeout: 2 * time.Minute,
		Charts: chartsource.New(chartsource.Options{PlainHTTP: true}),
	})
	if err != nil {
		t.Fatal(err)
	}
	layer := func(name, ns string, src v1.ChartSource, values map[string]any) stack.Layer {
		return stack.Layer{
			Name: name, Profile: "charts", ProfileVersion: "1.0.0", Kind: v1.LayerAddon, Source: stack.SourceChart,
			Package: src.Name, Version: src.Version, Namespace: ns, ReleaseName: name, Values: values,
			Spec: v1.Layer{Name: name, Kind: v1.LayerAddon, Chart: &src},
		}
	}
	st := &stack.Stack{Cluster: "charts", Layers: []stack.Layer{
		layer("mirror", "spegel", v1.ChartSource{Repository: httpRepo.URL, Name: "spegel", Version: "v0.0.30"}, nil),
		layer("tekton", "tekton-pipelines", v1.ChartSource{Repository: "oci://" + host + "/charts", Name: "tekton-operator", Version: ch.Metadata.Version},
			map[string]any{"fullnameOverride": "tekton-operator"}),
		layer("missing", "default", v1.ChartSource{Repository: httpRepo.URL, Name: "nope", Version: "1.0.0"}, nil),
	}}
	_, res := deploy(t, e, st)
	got := phases(res)
	if got["mirror"].Phase != engine.PhaseReady || got["tekton"].Phase != engine.PhaseReady {
		t.Fatalf("mirror %s %s; tekton %s %s", got["mirror"].Phase, got["mirror"].Message, got["tekton"].Phase, got["tekton"].Message)
	}
	if got["missing"].Phase != engine.PhaseFailed || !strings.Contains(got["missing"].Message, `chart "nope" version "1.0.0" not found`) {
		t.Errorf("missing chart: %s %q", got["missing"].Phase, got["missing"].Message)
	}
	cs := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	if _, err := cs.AppsV1().DaemonSets("spegel").Get(t.Context(), "mirror-spegel", metav1.GetOptions{}); err != nil {
		t.Errorf("spegel from the HTTP repository: %v", err)
	}
	if _, err := cs.AppsV1().Deployments("tekton-pipelines").Get(t.Context(), "tekton-operator", metav1.GetOptions{}); err != nil {
		t.Errorf("tekton-operator from the OCI registry: %v", err)
	}
}
