package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/profile"
)

func newApplyCommand() *cobra.Command {
	var (
		f     mgmtFlags
		files []string
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE...",
		Short: "Publish profiles and clusters to the management plane",
		Long: `Server-side applies the ClusterProfiles and Clusters of the files (or
folders) to the management plane; other kinds are skipped. A document
without a namespace goes to -n NAMESPACE — for a profile, to the shared
namespace strata-system when -n is not given, so every project sees it.
Missing namespaces are created.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return usageError("-f FILE is required: the profiles and clusters to publish")
			}
			paths, err := expandFiles(files)
			if err != nil {
				return usageError("%v", err)
			}
			docs, err := profile.ReadFiles(paths...)
			if err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			c, ns, err := f.client()
			if err != nil {
				return err
			}
			profileNS := f.namespace
			if profileNS == "" {
				profileNS = controller.SharedNamespace
			}
			var objs []client.Object
			for _, p := range docs.Profiles {
				o := p.DeepCopy()
				if o.Namespace == "" {
					o.Namespace = profileNS
				}
				objs = append(objs, o)
			}
			for _, cl := range docs.Clusters {
				o := cl.DeepCopy()
				if o.Namespace == "" {
					o.Namespace = ns
				}
				objs = append(objs, o)
			}
			return applyObjects(cmd.Context(), c, objs, cmd.OutOrStdout())
		},
	}
	f.register(cmd)
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file or folder of YAML documents; repeatable")
	return cmd
}

func applyObjects(ctx context.Context, c client.Client, objs []client.Object, out io.Writer) error {
	namespaces := map[string]bool{}
	for _, o := range objs {
		if !namespaces[o.GetNamespace()] {
			namespaces[o.GetNamespace()] = true
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.GetNamespace()}}
			if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsForbidden(err) {
				return &exitError{code: ExitFail, err: fmt.Errorf("namespace %s: %w", o.GetNamespace(), err)}
			}
		}
		gvk := v1.GroupVersion.WithKind("Cluster")
		if _, ok := o.(*v1.ClusterProfile); ok {
			gvk = v1.GroupVersion.WithKind("ClusterProfile")
		}
		o.GetObjectKind().SetGroupVersionKind(gvk)
		o.SetResourceVersion("")
		o.SetManagedFields(nil)
		//nolint:staticcheck // client.Apply with a whole typed object, as read from the file.
		if err := c.Patch(ctx, o, client.Apply, client.FieldOwner("strata-cli"), client.ForceOwnership); err != nil {
			return &exitError{code: ExitFail, err: fmt.Errorf("%s %s/%s: %w", strings.ToLower(gvk.Kind), o.GetNamespace(), o.GetName(), err)}
		}
		fmt.Fprintf(out, "%s %s/%s applied\n", strings.ToLower(gvk.Kind), o.GetNamespace(), o.GetName())
	}
	return nil
}

func newClusterKubeconfigCommand() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "kubeconfig NAME",
		Short: "Print the kubeconfig of a cluster (local clusters' are written by Strata)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cl, err := getCluster(&f, args[0])
			if err != nil {
				return err
			}
			ref := controller.KubeconfigRef(cl)
			if ref == nil {
				return &exitError{code: ExitFail, err: fmt.Errorf("cluster %s/%s names no kubeconfig Secret", cl.Namespace, cl.Name)}
			}
			key := ref.Key
			secret := &corev1.Secret{}
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: cl.Namespace, Name: ref.Name}, secret); err != nil {
				return &exitError{code: ExitFail, err: fmt.Errorf("cluster %s/%s: kubeconfig Secret %s: %w (a local cluster's is written once its control plane runs)", cl.Namespace, cl.Name, ref.Name, err)}
			}
			_, err = cmd.OutOrStdout().Write(secret.Data[key])
			return err
		},
	}
	f.register(cmd)
	return cmd
}

func newWaitCommand() *cobra.Command {
	var (
		f       mgmtFlags
		timeout time.Duration
		profile string
	)
	cmd := &cobra.Command{
		Use:   "wait [CLUSTER...] [--profile NAME@VERSION]",
		Short: "Show clusters' progress until all are Ready (every cluster of the project when none is named)",
		Long: `Prints a line whenever a cluster's layers change phase, until every cluster
is Ready; a change waiting for approval is shown, not waited for. Exit code
0 when they are, 1 when the timeout passes first. With --profile, a cluster
is done once it runs that profile version, or holds it in a plan waiting for
approval.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var want *v1.ProfileStatus
			if profile != "" {
				name, version, ok := strings.Cut(profile, "@")
				if !ok || name == "" || version == "" {
					return usageError("--profile: want NAME@VERSION, got %q", profile)
				}
				want = &v1.ProfileStatus{Name: name, Version: version}
			}
			c, ns, err := f.client()
			if err != nil {
				return err
			}
			return waitReady(cmd.Context(), c, ns, args, want, timeout, cmd.OutOrStdout())
		},
	}
	f.register(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait")
	cmd.Flags().StringVar(&profile, "profile", "", "wait until the clusters run (or hold for approval) this profile version, NAME@VERSION")
	return cmd
}

func waitReady(ctx context.Context, c client.Client, ns string, names []string, profile *v1.ProfileStatus, timeout time.Duration, out io.Writer) error {
	last := map[string]string{}
	seenEvents := map[types.UID]bool{}
	started := time.Now()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		// The layers' events tell the progress of a reconcile while the
		// status waits for its end.
		var events eventsv1.EventList
		if err := c.List(ctx, &events, client.InNamespace(ns)); err == nil {
			sort.Slice(events.Items, func(i, j int) bool {
				return events.Items[i].CreationTimestamp.Before(&events.Items[j].CreationTimestamp)
			})
			for _, e := range events.Items {
				if e.Regarding.Kind != "Cluster" || (len(want) > 0 && !want[e.Regarding.Name]) || seenEvents[e.UID] || e.CreationTimestamp.Time.Before(started.Truncate(time.Second)) {
					continue
				}
				seenEvents[e.UID] = true
				fmt.Fprintf(out, "%5.1fs  %-12s %s: %s\n", time.Since(started).Seconds(), e.Regarding.Name, e.Reason, e.Note)
			}
		}
		var list v1.ClusterList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, nil
		}
		allReady, seen := true, 0
		for _, cl := range list.Items {
			if len(want) > 0 && !want[cl.Name] {
				continue
			}
			seen++
			line := progressLine(&cl)
			if last[cl.Name] != line {
				last[cl.Name] = line
				fmt.Fprintf(out, "%5.1fs  %s\n", time.Since(started).Seconds(), line)
			}
			current := cl.Status.ObservedGeneration == cl.Generation && hasProfile(&cl, profile)
			// A first install waiting for approval is as far as it goes alone.
			settled := cl.Status.Phase == v1.ClusterReady || (cl.Status.Phase == v1.ClusterPending && cl.Status.PendingPlan != nil)
			allReady = allReady && current && settled && !apimeta.IsStatusConditionTrue(cl.Status.Conditions, v1.ConditionReconciling)
		}
		return allReady && seen >= max(len(names), 1), nil
	})
	if err != nil {
		return &exitError{code: ExitFail, err: fmt.Errorf("clusters not Ready after %s", timeout)}
	}
	return nil
}

// hasProfile tells whether the cluster runs the profile version, or holds
// it in a plan waiting for approval; any cluster has a nil one.
func hasProfile(cl *v1.Cluster, want *v1.ProfileStatus) bool {
	if want == nil {
		return true
	}
	for _, p := range cl.Status.Profiles {
		if p.Name == want.Name && (p.Version == want.Version || (cl.Status.PendingPlan != nil && p.Latest == want.Version)) {
			return true
		}
	}
	return false
}

// progressLine sums a cluster up: phase, layers Ready, the others by phase.
func progressLine(cl *v1.Cluster) string {
	ready := 0
	var others []string
	for _, l := range cl.Status.Layers {
		if l.Phase == "Ready" {
			ready++
			continue
		}
		others = append(others, l.Name+" "+l.Phase)
	}
	sort.Strings(others)
	phase := string(cl.Status.Phase)
	if phase == "" {
		phase = "Pending"
	}
	line := fmt.Sprintf("%-12s %-8s %d/%d layers Ready", cl.Name, phase, ready, len(cl.Status.Layers))
	if len(others) > 0 {
		line += " (" + strings.Join(others, ", ") + ")"
	}
	if cond := apimeta.FindStatusCondition(cl.Status.Conditions, v1.ConditionStalled); cond != nil && cond.Status == metav1.ConditionTrue {
		line += ": " + cond.Message
	}
	if cl.Status.PendingPlan != nil {
		line += "; waiting for approval: " + cl.Status.PendingPlan.Summary
	}
	return line
}
