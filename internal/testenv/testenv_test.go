package testenv_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"strata.dev/strata/internal/testenv"
	"strata.dev/strata/internal/version"
)

func TestManagementPlaneServesTheAPI(t *testing.T) {
	t.Parallel()
	cfg := testenv.Management(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	sv, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if sv.GitVersion != version.Kubernetes {
		t.Errorf("management plane runs %s, want %s", sv.GitVersion, version.Kubernetes)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
