package engine_test

import (
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/stack"
)

const zarfTestdata = "../../../shared/testdata/zarf"

func zarfLayer(name, pkg string, values map[string]any, components ...string) stack.Layer {
	abs, _ := filepath.Abs(filepath.Join(zarfTestdata, pkg))
	return stack.Layer{
		Name: name, Profile: "zarf", ProfileVersion: "1.0.0", Kind: v1.LayerAddon, Source: stack.SourceZarf,
		Package: filepath.Base(pkg), Namespace: "default", ReleaseName: name, Values: values,
		Spec: v1.Layer{Name: name, Kind: v1.LayerAddon, Zarf: &v1.ZarfSource{Package: abs, Components: components}},
	}
}

// Zarf packages deploy beside packs: a built archive (checksums verified)
// and a package definition with variables; a definition whose remote
// charts are out of reach fails alone and says why.
func TestZarfPackagesDeploy(t *testing.T) {
	t.Parallel()
	_, e, cs := cluster(t)
	st := profileStack(t, "mixed", "add-on", "hello addon hello-universe 1.2.0")
	st.Layers = append(st.Layers,
		zarfLayer("zarf-test", "packages/compressed/zarf-package-test-amd64-0.0.1.tar.zst", nil),
		zarfLayer("zarf-vars", "examples/variables", map[string]any{
			"variables": map[string]any{"SITE_NAME": "Strata Site"},
			"constants": map[string]any{"NGINX_VERSION": "1.27.1"},
		}),
		zarfLayer("zarf-charts", "examples/helm-charts", nil),
	)
	_, res := deploy(t, e, st)
	got := phases(res)
	for _, name := range []string{"hello", "zarf-test", "zarf-vars"} {
		if got[name].Phase != engine.PhaseReady {
			t.Errorf("layer %s: %s %s", name, got[name].Phase, got[name].Message)
		}
	}
	if l := got["zarf-test"]; strings.Join(l.Images, ",") != "docker.io/library/alpine:3.20" {
		t.Errorf("zarf-test images %v, want the component's images recorded", l.Images)
	}
	dep, err := cs.AppsV1().Deployments("nginx").Get(t.Context(), "nginx-deployment", metav1.GetOptions{})
	if err != nil || dep.Status.ReadyReplicas != 3 {
		t.Errorf("zarf test package's nginx deployment: %v, ready %d", err, dep.Status.ReadyReplicas)
	}
	cm, err := cs.CoreV1().ConfigMaps("nginx").Get(t.Context(), "nginx-configmap", metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data["index.html"], "Welcome to Strata Site!") {
		t.Errorf("variables not substituted: %v", err)
	}
	if l := got["zarf-charts"]; l.Phase != engine.PhaseFailed || !strings.Contains(l.Message, "chart podinfo-oci") {
		t.Errorf("zarf-charts: %s %q, want a failure naming the unreachable chart", l.Phase, l.Message)
	}
}
