package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// object is one rendered object of a layer.
type object struct {
	*unstructured.Unstructured
	// hook is set for Helm hooks, which Helm runs and deletes itself.
	hook bool
	// unowned is set for CRDs of a chart's crds/ folder, which Helm
	// creates without release ownership and never upgrades.
	unowned bool
}

func (o object) String() string {
	if ns := o.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", o.GetKind(), ns, o.GetName())
	}
	return fmt.Sprintf("%s %s", o.GetKind(), o.GetName())
}

// parseObjects splits a rendered manifest into objects.
func parseObjects(manifest string) ([]object, error) {
	var out []object
	for _, doc := range strings.Split(manifest, "\n---") {
		if strings.TrimSpace(stripYAMLComments(doc)) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			return nil, err
		}
		if u.Object == nil || u.GetKind() == "" {
			continue
		}
		_, isHook := u.GetAnnotations()["helm.sh/hook"]
		out = append(out, object{Unstructured: u, hook: isHook, unowned: fromCRDFolder(doc)})
	}
	return out, nil
}

// fromCRDFolder reads Helm's "# Source: chart/crds/x.yaml" comment.
func fromCRDFolder(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		if src, ok := strings.CutPrefix(strings.TrimSpace(l), "# Source: "); ok {
			// chart/crds/x.yaml, not chart/templates/crds/x.yaml
			return strings.Contains(src, "/crds/") && !strings.Contains(src, "/templates/")
		}
	}
	return false
}

func stripYAMLComments(doc string) string {
	var kept []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "\n")
}

// defaultNamespaces puts namespaced objects that name no namespace in the
// layer's, as Helm does when it applies them. objs are left as they are
// (other clusters may share them): those it changes are copies, in a new
// slice.
func (e *Engine) defaultNamespaces(objs []object, ns string) []object {
	out := slices.Clone(objs)
	for i, o := range out {
		if o.GetNamespace() != "" {
			continue
		}
		gvk := o.GroupVersionKind()
		m, err := e.getter.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil && m.Scope.Name() == meta.RESTScopeNameNamespace {
			o.Unstructured = o.DeepCopy()
			o.SetNamespace(ns)
			out[i] = o
		}
	}
	return out
}

// removedAPIs says when Kubernetes stopped serving the APIs real packs still
// use, so that a refusal can say more than "not served".
var removedAPIs = map[string]string{
	"extensions/v1beta1":                   "1.16 (1.22 for Ingress)",
	"apps/v1beta1":                         "1.16",
	"apps/v1beta2":                         "1.16",
	"rbac.authorization.k8s.io/v1beta1":    "1.22",
	"rbac.authorization.k8s.io/v1alpha1":   "1.22",
	"apiextensions.k8s.io/v1beta1":         "1.22",
	"admissionregistration.k8s.io/v1beta1": "1.22",
	"networking.k8s.io/v1beta1":            "1.22",
	"scheduling.k8s.io/v1beta1":            "1.22",
	"storage.k8s.io/v1beta1":               "1.22 (1.27 for CSIStorageCapacity)",
	"certificates.k8s.io/v1beta1":          "1.22",
	"coordination.k8s.io/v1beta1":          "1.22",
	"apiregistration.k8s.io/v1beta1":       "1.22",
	"policy/v1beta1":                       "1.25",
	"batch/v1beta1":                        "1.25",
	"autoscaling/v2beta1":                  "1.25",
	"autoscaling/v2beta2":                  "1.26",
	"discovery.k8s.io/v1beta1":             "1.25",
	"events.k8s.io/v1beta1":                "1.25",
	"node.k8s.io/v1beta1":                  "1.25",
	"flowcontrol.apiserver.k8s.io/v1beta2": "1.29",
	"flowcontrol.apiserver.k8s.io/v1beta3": "1.32",
}

// unservedAPIs names each object whose API the cluster does not serve. A
// custom resource whose CRD is in the same layer is fine: it is applied
// after its CRD.
func (e *Engine) unservedAPIs(objs []object) []string {
	defined := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			defined[schema.GroupKind{Group: group, Kind: kind}] = true
		}
	}
	var out []string
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if defined[gvk.GroupKind()] {
			continue
		}
		if _, err := e.getter.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
			continue
		}
		msg := fmt.Sprintf("%s uses %s", o, o.GetAPIVersion())
		if when, ok := removedAPIs[o.GetAPIVersion()]; ok {
			msg += fmt.Sprintf(", removed in Kubernetes %s", when)
		} else {
			msg += ", which is not served"
		}
		out = append(out, msg)
	}
	sort.Strings(out)
	return out
}
