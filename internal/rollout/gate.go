package rollout

import (
	"slices"
	"time"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/stack"
)

// Decision is what a profile version's roll-out lets one cluster do.
type Decision struct {
	// Admit: the cluster may run the version now.
	Admit bool
	// Reject: the cluster failed the version and goes back to (or stays on)
	// the version it last ran healthy; following a range does not pick it.
	Reject bool
}

// Decide reads a profile version's roll-out for one cluster. A version
// without a policy admits every cluster, as does a completed roll-out (a
// cluster that comes later need not wait for waves that are over).
func Decide(p *v1.ClusterProfile, namespace, name string) Decision {
	if p.Spec.Rollout == nil {
		return Decision{Admit: true}
	}
	st := p.Status.Rollout
	if st == nil {
		return Decision{}
	}
	aborted := p.Annotations[AbortedAnnotation] == "true"
	rollback := aborted || p.Spec.Rollout.OnFailure != v1.RolloutHalt
	switch StateOf(p, namespace, name) {
	case v1.ClusterRolloutUpdating, v1.ClusterRolloutSoaking, v1.ClusterRolloutHealthy:
		return Decision{Admit: true}
	case v1.ClusterRolloutFailed:
		// With Halt, a failed cluster stays where it is.
		return Decision{Admit: !rollback, Reject: rollback}
	case v1.ClusterRolloutRolledBack:
		return Decision{Reject: true}
	case v1.ClusterRolloutPending:
		return Decision{}
	}
	return Decision{Admit: st.Phase == v1.RolloutCompleted}
}

// StateOf is a cluster's state in a profile version's roll-out; empty when
// the roll-out does not list it.
func StateOf(p *v1.ClusterProfile, namespace, name string) v1.RolloutClusterState {
	c, _, _ := clusterOf(p, namespace, name)
	return c.State
}

// clusterOf is a cluster's entry in a profile version's roll-out, and
// the wave it is in.
func clusterOf(p *v1.ClusterProfile, namespace, name string) (v1.RolloutCluster, string, bool) {
	if p.Status.Rollout == nil {
		return v1.RolloutCluster{}, "", false
	}
	for _, w := range p.Status.Rollout.Waves {
		for _, c := range w.Clusters {
			if c.Namespace == namespace && c.Name == name {
				return c, w.Name, true
			}
		}
	}
	return v1.RolloutCluster{}, "", false
}

// Gate pins each of a cluster's attachments to the version it may run now:
// the one its attachment picks among the versions it has not rejected, when
// that version's roll-out admits it; else the version it last ran healthy
// (or runs). An attachment with nothing to hold on to waits: it is left
// out until the roll-out reaches the cluster. Gate returns the attachments
// to resolve and, by profile name, the versions the cluster rejects and
// what each attachment left out waits for.
func Gate(c *v1.Cluster, visible []profile.Profile) (out []v1.ProfileAttachment, rejected map[string][]string, waiting map[string]string) {
	rejected, waiting = map[string][]string{}, map[string]string{}
	for _, a := range c.Spec.Profiles {
		var allowed []profile.Profile
		for _, p := range visible {
			if p.Spec.Name != a.Name {
				continue
			}
			if Decide(p.ClusterProfile, c.Namespace, c.Name).Reject {
				rejected[a.Name] = append(rejected[a.Name], p.Spec.Version)
				continue
			}
			allowed = append(allowed, p)
		}
		running, lastGood := runs(c, a.Name)
		target, ok := stack.FindProfile(allowed, a.Name, a.Version)
		// A draft named exactly goes on to resolving, which refuses it: the
		// cluster says it names a draft rather than waiting for a roll-out
		// that does not start.
		if ok && (target.Spec.Version == running || target.Spec.Draft || Decide(target.ClusterProfile, c.Namespace, c.Name).Admit) {
			a.Version = target.Spec.Version
			out = append(out, a)
			continue
		}
		if !ok && len(rejected[a.Name]) == 0 {
			out = append(out, a) // no such version: resolving says so
			continue
		}
		hold := lastGood
		if hold == "" {
			hold = running
		}
		if hold != "" && slices.ContainsFunc(allowed, func(p profile.Profile) bool { return p.Spec.Version == hold }) {
			a.Version = hold
			out = append(out, a)
			continue
		}
		if ok {
			waiting[a.Name] = waitingFor(target.ClusterProfile, c.Namespace, c.Name)
		}
	}
	return out, rejected, waiting
}

// waitingFor says what a cluster with nothing to run waits for in a
// version's roll-out.
func waitingFor(p *v1.ClusterProfile, namespace, name string) string {
	what := "the roll-out of " + p.Spec.Name + " " + p.Spec.Version
	if _, wave, listed := clusterOf(p, namespace, name); listed {
		return what + " to reach wave " + wave
	}
	return what + " to reach this cluster"
}

// runs is the version of a profile a cluster runs and last ran healthy.
func runs(c *v1.Cluster, name string) (running, lastGood string) {
	for _, s := range c.Status.Profiles {
		if s.Name == name {
			return s.Version, s.LastGood
		}
	}
	return "", ""
}

// DeadlineOf is when a cluster the roll-out is updating must be healthy
// on the version, and the progress deadline that gives it; ok is false
// when the roll-out is not updating the cluster.
func DeadlineOf(p *v1.ClusterProfile, namespace, name string) (at time.Time, within time.Duration, ok bool) {
	if p.Spec.Rollout == nil {
		return time.Time{}, 0, false
	}
	c, _, listed := clusterOf(p, namespace, name)
	if !listed || c.State != v1.ClusterRolloutUpdating || c.Since == nil {
		return time.Time{}, 0, false
	}
	within = progressDeadline(*p.Spec.Rollout)
	return c.Since.Add(within), within, true
}
