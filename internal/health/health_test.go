package health

import (
	"context"
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1 "strata.dev/strata/api/v1alpha1"
)

func deployment(available int64, ready bool) *unstructured.Unstructured {
	cond := "False"
	if ready {
		cond = "True"
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "shop", "generation": int64(1)},
		"spec":     map[string]any{"replicas": int64(2)},
		"status": map[string]any{"observedGeneration": int64(1), "replicas": int64(2), "updatedReplicas": int64(2), "readyReplicas": available, "availableReplicas": available,
			"conditions": []any{map[string]any{"type": "Available", "status": cond}}},
	}}
}

func getterOf(o *unstructured.Unstructured, err error) Getter {
	return func(context.Context, string, string, string, string) (*unstructured.Unstructured, error) {
		return o, err
	}
}

func TestChecks(t *testing.T) {
	web := v1.HealthCheckObject{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web"}
	cases := []struct {
		name   string
		check  v1.HealthCheck
		live   *unstructured.Unstructured
		err    error
		ok     bool
		saying string
	}{
		{"current by kstatus", v1.HealthCheck{Name: "up", Object: web}, deployment(2, true), nil, true, ""},
		{"not current", v1.HealthCheck{Name: "up", Object: web}, deployment(1, false), nil, false, "Deployment shop/web is InProgress"},
		{"condition true", v1.HealthCheck{Name: "two", Object: web, Condition: "self.status.availableReplicas >= 2"}, deployment(2, true), nil, true, ""},
		{"condition false", v1.HealthCheck{Name: "two", Object: web, Condition: "self.status.availableReplicas >= 2"}, deployment(1, true), nil, false, `condition "self.status.availableReplicas >= 2" is false`},
		{"field not there yet", v1.HealthCheck{Name: "x", Object: web, Condition: "self.status.nothing == 1"}, deployment(1, true), nil, false, "no such key: nothing"},
		{"object missing", v1.HealthCheck{Name: "x", Object: web}, nil, errors.New(`deployments.apps "web" not found`), false, `Deployment shop/web: deployments.apps "web" not found`},
	}
	for _, tc := range cases {
		ok, msg := Check(context.Background(), getterOf(tc.live, tc.err), tc.check)
		if ok != tc.ok || !strings.Contains(msg, tc.saying) {
			t.Errorf("%s: %v %q, want %v and %q", tc.name, ok, msg, tc.ok, tc.saying)
		}
	}
}

func TestConditionsThatDoNotCompile(t *testing.T) {
	for expr, want := range map[string]string{
		"self.status.":    "Syntax error",
		"'a' + 1":         "no matching overload",
		"size(self.spec)": "want a bool",
	} {
		if _, err := Compile(expr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", expr, err, want)
		}
	}
	if _, err := Compile("self.status.availableReplicas >= 2 && self.metadata.name.startsWith('web')"); err != nil {
		t.Errorf("a valid condition: %v", err)
	}
}
