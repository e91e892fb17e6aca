package crd

import (
	"context"
	"fmt"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Apply server-side applies CRDs whole, as owner, and waits up to a minute
// until the API server serves each of them (Established). Strata's own
// CRDs and Cluster API's are installed this way.
func Apply(ctx context.Context, c client.Client, owner string, crds ...*apiextensionsv1.CustomResourceDefinition) error {
	names := make([]string, 0, len(crds))
	for _, obj := range crds {
		obj.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
		obj.ManagedFields, obj.Status = nil, apiextensionsv1.CustomResourceDefinitionStatus{}
		//nolint:staticcheck // client.Apply with a typed object: the CRD is whole, as generated or released.
		if err := c.Patch(ctx, obj, client.Apply, client.FieldOwner(owner), client.ForceOwnership); err != nil {
			return fmt.Errorf("CRD %s: %w", obj.Name, err)
		}
		names = append(names, obj.Name)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, name := range names {
			got := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(ctx, client.ObjectKey{Name: name}, got); err != nil {
				return false, nil
			}
			established := false
			for _, cond := range got.Status.Conditions {
				established = established || (cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue)
			}
			if !established {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("CRDs %s not established: %w", strings.Join(names, ", "), err)
	}
	return nil
}
