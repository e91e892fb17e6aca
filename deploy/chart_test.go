// Package deploy holds the Helm chart that runs Strata's management plane
// in a Kubernetes cluster; this test installs it into a real test-bed
// cluster with Strata's own engine and checks the RBAC roles it ships.
package deploy

import (
	"context"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/stack"
	"strata.dev/strata/internal/testenv"
)

func TestChartInstallsAndItsRolesGrantWhatTheySay(t *testing.T) {
	t.Parallel()
	p, problems := pack.Load("strata")
	if err := problems.Err(); err != nil {
		t.Fatal(err)
	}
	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	e, err := engine.New(engine.Options{RESTConfig: cp.RESTConfig(), Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// An example registry from the values becomes a PackRegistry object.
	chartValues := pack.ChartValues(p.Values, p.Charts[0].Name, true)
	chartValues["registries"] = []any{map[string]any{"name": "platform", "endpoint": "registry.example.com", "baseContentPath": "platform", "priority": 10}}
	chartValues["shards"] = []any{map[string]any{"name": "eu", "replicas": 2}}
	st := &stack.Stack{Cluster: "mgmt", Layers: []stack.Layer{{
		Name: "strata", Profile: "mgmt", ProfileVersion: "1.0.0", Kind: v1.LayerAddon, Source: stack.SourcePack,
		Package: p.Name, Version: p.Version, Namespace: "strata-system", ReleaseName: "strata", Values: p.Values, Pack: p,
	}}}
	ctx := context.Background()
	plan, err := e.Plan(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Apply(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if l := res.Layers[0]; l.Phase != engine.PhaseReady {
		t.Fatalf("chart: %s %s", l.Phase, l.Message)
	}

	cs, err := cp.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RESTClient().Get().AbsPath("/apis/strata.dev/v1alpha1/namespaces/strata-system/packregistries/platform").DoRaw(ctx); err != nil {
		t.Errorf("the PackRegistry of the values: %v", err)
	}
	for name, want := range map[string]string{"strata-manager": "", "strata-manager-eu": "--shard=eu"} {
		dep, err := cs.AppsV1().Deployments("strata-system").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("Deployment %s: %v", name, err)
			continue
		}
		args := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " ")
		if hasShard := strings.Contains(args, "--shard="); hasShard != (want != "") || !strings.Contains(args, want) {
			t.Errorf("Deployment %s args %q, want shard flag %q", name, args, want)
		}
	}
	for _, crd := range []string{"clusters.strata.dev", "clusterprofiles.strata.dev", "packregistries.strata.dev"} {
		if _, err := cs.RESTClient().Get().AbsPath("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd).DoRaw(ctx); err != nil {
			t.Errorf("CRD %s not installed: %v", crd, err)
		}
	}
	bind := func(user, role, ns string) {
		_, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: "User", Name: user, APIGroup: "rbac.authorization.k8s.io"}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"team-a", "team-b"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bind("alice", "strata-viewer", "team-a")
	bind("bob", "strata-editor", "team-a")
	can := func(user, verb, resource, ns string) bool {
		group := "strata.dev"
		if resource == "rolebindings" {
			group = rbacv1.GroupName
		}
		r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authv1.SubjectAccessReview{Spec: authv1.SubjectAccessReviewSpec{
			User:               user,
			ResourceAttributes: &authv1.ResourceAttributes{Group: group, Resource: resource, Verb: verb, Namespace: ns},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	for _, tc := range []struct {
		user, verb, resource, ns string
		want                     bool
	}{
		{"alice", "list", "clusters", "team-a", true},
		{"alice", "patch", "clusters", "team-a", false},
		{"alice", "list", "clusters", "team-b", false},
		{"bob", "patch", "clusters", "team-a", true},
		{"bob", "create", "clusterprofiles", "team-a", true},
		{"bob", "delete", "clusters", "team-b", false},
		{"system:serviceaccount:strata-system:strata-manager", "update", "clusters/status", "team-b", true},
		{"system:serviceaccount:strata-system:strata-manager", "watch", "packregistries", "team-b", true},
		{"system:serviceaccount:strata-system:strata-manager", "update", "packregistries/status", "team-b", true},
		{"system:serviceaccount:strata-system:strata-manager", "create", "rolebindings", "strata-system", true},
		{"system:serviceaccount:strata-system:strata-manager", "list", "rolebindings", "strata-system", true},
		{"alice", "list", "packregistries", "team-a", true},
		{"bob", "create", "packregistries", "team-a", false},
	} {
		got := can(tc.user, tc.verb, tc.resource, tc.ns)
		// The API server's authorizer learns new bindings from a watch: a
		// grant may take a moment to be seen.
		for deadline := time.Now().Add(10 * time.Second); tc.want && !got && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			got = can(tc.user, tc.verb, tc.resource, tc.ns)
		}
		if got != tc.want {
			t.Errorf("%s %s %s in %s: allowed=%v, want %v", tc.user, tc.verb, tc.resource, tc.ns, got, tc.want)
		}
	}
	// RBAC lets the manager grant an agent only what the manager holds: a
	// verb missing here, and every agent's access would be refused.
	manager := "system:serviceaccount:strata-system:strata-manager"
	for _, rule := range controller.AgentGrants("store-1", []string{"registry-creds"}) {
		for _, group := range rule.APIGroups {
			for _, resource := range rule.Resources {
				resource, sub, _ := strings.Cut(resource, "/")
				for _, verb := range rule.Verbs {
					r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authv1.SubjectAccessReview{Spec: authv1.SubjectAccessReviewSpec{
						User: manager, ResourceAttributes: &authv1.ResourceAttributes{Group: group, Resource: resource, Subresource: sub, Verb: verb, Namespace: "team-a"},
					}}, metav1.CreateOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if !r.Status.Allowed {
						t.Errorf("the manager grants agents %s on %q %s/%s but may not do it itself", verb, group, resource, sub)
					}
				}
			}
		}
	}
}

// The agent's chart installs an agent started with the join token from the
// values (in a Secret), acting as cluster-admin in its own cluster and
// keeping its credentials in the release namespace; without a server it
// says what is missing.
func TestAgentChartInstalls(t *testing.T) {
	t.Parallel()
	p, problems := pack.Load("strata-agent")
	if err := problems.Err(); err != nil {
		t.Fatal(err)
	}
	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	e, err := engine.New(engine.Options{RESTConfig: cp.RESTConfig(), Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	install := func(values map[string]any) engine.LayerResult {
		st := &stack.Stack{Cluster: "edge", Layers: []stack.Layer{{
			Name: "strata-agent", Profile: "edge", ProfileVersion: "1.0.0", Kind: v1.LayerAddon, Source: stack.SourcePack,
			Package: p.Name, Version: p.Version, Namespace: "strata-system", ReleaseName: "strata-agent", Values: values, Pack: p,
		}}}
		plan, err := e.Plan(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Apply(ctx, plan)
		if err != nil {
			t.Fatal(err)
		}
		return res.Layers[0]
	}
	if l := install(p.Values); l.Phase != engine.PhaseFailed || !strings.Contains(l.Message, "values: server: the management plane's API URL is required") {
		t.Errorf("without a server: %s %q, want a failure naming values.server", l.Phase, l.Message)
	}
	values := pack.ChartValues(p.Values, p.Charts[0].Name, true)
	values["server"], values["cluster"], values["joinToken"] = "https://mgmt.example.com:6443", "edge/site-1", "join-token-value"
	if l := install(values); l.Phase != engine.PhaseReady {
		t.Fatalf("chart: %s %s", l.Phase, l.Message)
	}
	cs, err := cp.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	dep, err := cs.AppsV1().Deployments("strata-system").Get(ctx, "strata-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " ")
	for _, want := range []string{"agent --server=https://mgmt.example.com:6443 --cluster=edge/site-1 --credentials-namespace=strata-system", "--token-file=/var/run/strata/join/token", "--pack-cache=/var/cache/strata/packs"} {
		if !strings.Contains(args, want) {
			t.Errorf("agent args %q lack %q", args, want)
		}
	}
	if s, err := cs.CoreV1().Secrets("strata-system").Get(ctx, "strata-agent-join", metav1.GetOptions{}); err != nil || string(s.Data["token"]) != "join-token-value" {
		t.Errorf("join token Secret: %v", err)
	}
	r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authv1.SubjectAccessReview{Spec: authv1.SubjectAccessReviewSpec{
		User:               "system:serviceaccount:strata-system:strata-agent",
		ResourceAttributes: &authv1.ResourceAttributes{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions", Verb: "create"},
	}}, metav1.CreateOptions{})
	if err != nil || !r.Status.Allowed {
		t.Errorf("the agent may not install CRDs in its cluster: %v", err)
	}
}
