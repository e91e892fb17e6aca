package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/provider/clusterapi"
	"strata.dev/strata/internal/provider/local"
	"strata.dev/strata/internal/stack"
)

// KubeconfigRef is where a cluster's kubeconfig is: the Secret its spec
// names, for a local cluster the one Strata writes, for a capi cluster the
// one Cluster API's control plane writes (key "value"); the key defaults
// to "kubeconfig". Nil when an imported cluster names none.
func KubeconfigRef(c *v1.Cluster) *v1.SecretKeyRef {
	ref := c.Spec.KubeconfigSecretRef
	switch {
	case ref != nil:
	case c.Spec.Provider == v1.ProviderLocal:
		ref = &v1.SecretKeyRef{Name: c.Name + "-kubeconfig"}
	case c.Spec.Provider == v1.ProviderCAPI:
		ref = &v1.SecretKeyRef{Name: c.Name + "-kubeconfig", Key: clusterapi.KubeconfigKey}
	}
	if ref == nil {
		return nil
	}
	out := *ref
	if out.Key == "" {
		out.Key = "kubeconfig"
	}
	return &out
}

func localKey(c *v1.Cluster) string { return c.Namespace + "/" + c.Name }

// ensureLocal makes a local cluster run the Kubernetes version of its k8s
// layer with its node pools, and keeps its kubeconfig Secret current.
func (r *ClusterReconciler) ensureLocal(ctx context.Context, c *v1.Cluster) error {
	if r.Local == nil {
		return errors.New("provider local: local clusters run under `strata up`, and this manager was not started by it")
	}
	resolved, err := r.resolve(ctx, c, "")
	if err != nil {
		return err
	}
	kv := resolved.stack.KubernetesVersion
	if kv == "" {
		return errors.New("provider local: the cluster needs an infra or full profile with a k8s layer, whose pack version picks the Kubernetes build")
	}
	pools := []controlplane.NodePool{{Name: "default", Count: 1}}
	if len(c.Spec.NodePools) > 0 {
		pools = pools[:0]
		for _, p := range c.Spec.NodePools {
			cpu, memory, disk := stack.NodeCapacity(p)
			pools = append(pools, controlplane.NodePool{Name: p.Name, Count: int(p.Count), CPU: cpu.String(), Memory: memory.String(), Disk: disk.String()})
		}
	}
	st, err := r.Local.Ensure(ctx, local.Spec{Key: localKey(c), KubernetesVersion: kv, Pools: pools})
	if err != nil {
		return fmt.Errorf("provider local: %w", err)
	}
	if st.Restarted {
		r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, "ControlPlaneStarted", "Provision", "local control plane running Kubernetes %s with %d node pools", kv, len(pools))
	}
	changed, err := r.writeKubeconfig(ctx, c, st.Kubeconfig)
	if changed {
		// The engine kept for the cluster talks to the old API server; the
		// cache may not show the Secret's new version to engineFor yet.
		r.dropEngine(c)
	}
	return err
}

// writeKubeconfig stores a local cluster's kubeconfig in its Secret, when
// it changed (a restarted control plane listens on new ports), and says
// whether it did.
func (r *ClusterReconciler) writeKubeconfig(ctx context.Context, c *v1.Cluster, kubeconfig []byte) (changed bool, err error) {
	ref := KubeconfigRef(c)
	secret := &corev1.Secret{}
	err = r.APIReader.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: ref.Name}, secret)
	if apierrors.IsNotFound(err) {
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: c.Namespace, Labels: map[string]string{"strata.dev/cluster": c.Name}},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{ref.Key: kubeconfig},
		}
		return true, r.Create(ctx, secret)
	}
	if err != nil {
		return false, err
	}
	if bytes.Equal(secret.Data[ref.Key], kubeconfig) {
		return false, nil
	}
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	secret.Data[ref.Key] = kubeconfig
	return true, r.Update(ctx, secret)
}

// deleteLocal stops a local cluster, removes its data and its Secret: the
// whole cluster goes, so its layers need no removal one by one.
func (r *ClusterReconciler) deleteLocal(ctx context.Context, c *v1.Cluster) error {
	if r.Local == nil {
		r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, "LocalDataLeft", "Delete", "not started by `strata up`: the local cluster's data folder is left in place")
	} else if err := r.Local.Delete(localKey(c)); err != nil {
		return err
	}
	ref := KubeconfigRef(c)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: c.Namespace}}
	if err := r.Delete(ctx, secret); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// localRestarted turns the supervisor's news of a dead control plane into
// a reconcile of its cluster, which starts it again.
func (r *ClusterReconciler) localRestarted(key string) {
	ns, name, _ := strings.Cut(key, "/")
	r.wakeUp(client.ObjectKey{Namespace: ns, Name: name})
}
