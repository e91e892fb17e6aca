package agent

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
)

// An agent's cache holds the versions of the profiles its cluster attaches
// and no other, so that a write to any other profile (a roll-out's status,
// a draft's impact) costs it nothing: on a plane of thousands of agents,
// each change to a profile would otherwise reach every one of them. The
// manager labels each ClusterProfile with its name (controller.ProfileLabel);
// when the cluster attaches other profiles, the agent starts again with a
// cache of those.

// attachedNames are the names of the profiles a cluster attaches, sorted.
func attachedNames(c *v1.Cluster) []string {
	names := make([]string, 0, len(c.Spec.Profiles))
	for _, a := range c.Spec.Profiles {
		names = append(names, a.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// readAttached reads the agent's Cluster from the management plane for the
// profiles it attaches. A plane that does not answer is asked again, less
// and less often; one that answers no (the Cluster is gone, the agent's
// credentials are refused) ends the agent with why.
func readAttached(ctx context.Context, mgmt *rest.Config, opts Options, log *slog.Logger) ([]string, error) {
	c, err := managementClient(mgmt)
	if err != nil {
		return nil, err
	}
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		cluster := &v1.Cluster{}
		err := c.Get(ctx, opts.Cluster, cluster)
		if err == nil {
			return attachedNames(cluster), nil
		}
		if apierrors.IsNotFound(err) || apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("cluster %s: %w", opts.Cluster, err)
		}
		log.Warn("the management plane did not answer; asking again", "in", delay.String(), "error", err.Error())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// profilesNamed selects the versions of the profiles named; none when no
// name is given.
func profilesNamed(names []string) labels.Selector {
	if len(names) == 0 {
		exists, _ := labels.NewRequirement(controller.ProfileLabel, selection.Exists, nil)
		absent, _ := labels.NewRequirement(controller.ProfileLabel, selection.DoesNotExist, nil)
		return labels.NewSelector().Add(*exists, *absent)
	}
	in, _ := labels.NewRequirement(controller.ProfileLabel, selection.In, names) // names are profile names: valid label values
	return labels.NewSelector().Add(*in)
}

// stopWhenAttachmentsChange stops the manager (cancel) once the cluster
// attaches other profiles than followed, and says so through changed.
func stopWhenAttachmentsChange(ctx context.Context, mgr ctrl.Manager, followed []string, cancel context.CancelFunc, changed *atomic.Bool, log *slog.Logger) error {
	informer, err := mgr.GetCache().GetInformer(ctx, &v1.Cluster{})
	if err != nil {
		return err
	}
	check := func(o any) {
		c, ok := o.(*v1.Cluster)
		if !ok || slices.Equal(attachedNames(c), followed) || changed.Swap(true) {
			return
		}
		log.Info("the cluster attaches other profiles: following them", "profiles", attachedNames(c))
		cancel()
	}
	_, err = informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    check,
		UpdateFunc: func(_, o any) { check(o) },
	})
	return err
}
