// Package rollout moves a profile version through the fleet in waves: it
// decides, from what the clusters report, which clusters may start, when a
// wave has soaked long enough, when the roll-out halts, and which clusters
// go back to the version they last ran healthy. Its state lives in the
// profile version's status, so a manager restarted at any point resumes
// where it was; this package holds no state of its own.
package rollout

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	v1 "strata.dev/strata/api/v1alpha1"
)

// Annotations on a profile version that steer its roll-out; `strata rollout
// pause|resume|abort|retry` writes them.
const (
	// PausedAnnotation "true" stops new clusters from starting.
	PausedAnnotation = "rollout.strata.dev/paused"
	// ApprovedAnnotation lists the waves approved to start, comma-separated.
	ApprovedAnnotation = "rollout.strata.dev/approved"
	// AbortedAnnotation "true" stops the roll-out and returns every cluster
	// that moved to the version it last ran healthy.
	AbortedAnnotation = "rollout.strata.dev/aborted"
	// RetryAnnotation, set to a new token, starts the failed and rolled-back
	// clusters again and clears the failure count.
	RetryAnnotation = "rollout.strata.dev/retry"
)

// RestWave names the wave of the clusters that no wave of the policy took.
const RestWave = v1.RestWave

// DefaultProgressDeadline is how long a cluster may take to be healthy on
// the new version when the policy does not say.
const DefaultProgressDeadline = 5 * time.Minute

// Member is a cluster the roll-out concerns, as it reports itself now.
type Member struct {
	Namespace, Name string
	Labels          map[string]string
	// Running is the version of the profile it runs; empty before its
	// first install.
	Running string
	// LastGood is the last version it ran with every layer Ready.
	LastGood string
	// Ready: every layer Ready on the spec as it is now.
	Ready bool
	// AwaitingApproval: a Manual cluster whose change waits for a user; its
	// deadline does not run meanwhile.
	AwaitingApproval bool
	// Problem says why it is not Ready, for a failure's message.
	Problem string
	// Unreachable: its API server (or agent) does not answer, so how it
	// runs the version is not known. A cluster soaking is then neither
	// healthy nor failed: its wave's soak starts again once it is back.
	Unreachable bool
	// Rejected: the cluster reports this version as rejected, so what it
	// reports running comes from a reconcile that acted on its failure (a
	// status written before could still show the old version while the
	// new one is being applied).
	Rejected bool
}

func (m Member) key() string { return m.Namespace + "/" + m.Name }

// Input is what one step of a roll-out looks at.
type Input struct {
	Version     string
	Policy      v1.RolloutPolicy
	Status      *v1.RolloutStatus
	Members     []Member
	Annotations map[string]string
	Now         time.Time
}

// NoClusterYet is the reason of a roll-out no cluster follows yet.
const NoClusterYet = "no cluster follows this version yet"

// Step moves the roll-out on from its last status and returns the new one
// and how soon to look again (zero when it has ended).
func Step(in Input) (v1.RolloutStatus, time.Duration) {
	now := metav1.NewTime(in.Now)
	if in.Status != nil && Finished(in.Status.Phase) && len(in.Members) == 0 {
		return *in.Status.DeepCopy(), 0 // a record: nobody left to move
	}
	st := v1.RolloutStatus{Phase: v1.RolloutProgressing, StartTime: &now}
	if in.Status != nil {
		st = *in.Status.DeepCopy()
	}
	if token := in.Annotations[RetryAnnotation]; token != "" && token != st.Retried {
		st.Retried = token
		retry(&st, now)
	}
	// A finished roll-out is a record of who got the version when: its
	// clusters stay listed when they go on to newer versions.
	st.Waves = assign(in.Policy, st.Waves, in.Members, now, Finished(st.Phase))
	byKey := map[string]Member{}
	for _, m := range in.Members {
		byKey[m.key()] = m
	}
	deadline := progressDeadline(in.Policy)
	aborted := in.Annotations[AbortedAnnotation] == "true"
	rollback := aborted || in.Policy.OnFailure != v1.RolloutHalt
	var failures int32
	for wi := range st.Waves {
		failures += st.Waves[wi].Counts[v1.ClusterRolloutFailed] + st.Waves[wi].Counts[v1.ClusterRolloutRolledBack]
		for ci := range st.Waves[wi].Clusters {
			c := &st.Waves[wi].Clusters[ci]
			if m, member := byKey[c.Namespace+"/"+c.Name]; member {
				if unknown := observe(c, m, in.Version, deadline, rollback, aborted, now); unknown {
					st.Waves[wi].HealthyTime = nil
				}
			}
			if c.State == v1.ClusterRolloutFailed || c.State == v1.ClusterRolloutRolledBack {
				failures++
			}
		}
	}
	st.Failures = failures
	maxFailures := int32(0)
	if in.Policy.MaxFailures != nil {
		maxFailures = *in.Policy.MaxFailures
	}
	halted := aborted || failures > maxFailures
	paused := in.Annotations[PausedAnnotation] == "true"
	waiting := ""
	if !halted {
		waiting = advance(&st, in.Policy, approved(in.Annotations), paused, now)
	}
	st.Phase, st.Reason = phase(&st, halted, aborted, paused, waiting, maxFailures, rollback)
	if st.Phase == v1.RolloutCompleted || st.Phase == v1.RolloutRolledBack {
		if st.EndTime == nil {
			st.EndTime = &now
		}
	} else {
		st.EndTime = nil
	}
	return st, nextLook(&st, in.Policy, deadline, in.Now)
}

// retry starts the failed and rolled-back clusters again.
func retry(st *v1.RolloutStatus, now metav1.Time) {
	for wi := range st.Waves {
		for ci := range st.Waves[wi].Clusters {
			c := &st.Waves[wi].Clusters[ci]
			if c.State == v1.ClusterRolloutFailed || c.State == v1.ClusterRolloutRolledBack {
				c.State, c.Since, c.Message = v1.ClusterRolloutPending, &now, ""
			}
		}
		if hasState(st.Waves[wi], v1.ClusterRolloutPending) {
			st.Waves[wi].HealthyTime = nil
		}
	}
	st.Failures, st.Reason, st.EndTime = 0, "", nil
}

// progressDeadline is how long a cluster may take to be healthy on the
// version under this policy.
func progressDeadline(policy v1.RolloutPolicy) time.Duration {
	if policy.ProgressDeadline != nil && policy.ProgressDeadline.Duration > 0 {
		return policy.ProgressDeadline.Duration
	}
	return DefaultProgressDeadline
}

// Finished says whether a roll-out in this phase has ended.
func Finished(p v1.RolloutPhase) bool {
	return p == v1.RolloutCompleted || p == v1.RolloutHalted || p == v1.RolloutRolledBack
}

// final says whether a cluster is through with the version.
func final(s v1.RolloutClusterState) bool {
	return s == v1.ClusterRolloutHealthy || s == v1.ClusterRolloutFailed || s == v1.ClusterRolloutRolledBack
}

// assign places the members in waves: a cluster keeps the wave and state
// it has; a new one goes to the first wave whose selector matches it (a
// wave without selector takes any), else to the rest. Clusters that are
// no longer members (detached, or gone on to a newer version) leave, but
// for those through with a finished roll-out when keepGone: its record.
func assign(policy v1.RolloutPolicy, before []v1.WaveStatus, members []Member, now metav1.Time, keepGone bool) []v1.WaveStatus {
	placed := map[string]v1.RolloutCluster{}
	waveOf := map[string]string{}
	previous := map[string]v1.WaveStatus{}
	for _, w := range before {
		previous[w.Name] = w
		for _, c := range w.Clusters {
			placed[c.Namespace+"/"+c.Name] = c
			waveOf[c.Namespace+"/"+c.Name] = w.Name
		}
	}
	names := make([]string, 0, len(policy.Waves)+1)
	for _, w := range policy.Waves {
		if !slices.Contains(names, w.Name) {
			names = append(names, w.Name)
		}
	}
	// A wave the policy names "rest" is the last wave itself: the clusters
	// it selects and those no wave takes are one wave, listed once.
	if !slices.Contains(names, RestWave) {
		names = append(names, RestWave)
	}
	clusters := map[string][]v1.RolloutCluster{}
	for _, m := range members {
		wave, ok := waveOf[m.key()]
		c := placed[m.key()]
		if !ok || !slices.Contains(names, wave) {
			wave = waveFor(policy, m.Labels)
			c = v1.RolloutCluster{Namespace: m.Namespace, Name: m.Name, State: v1.ClusterRolloutPending, Since: &now, From: from(m)}
		}
		clusters[wave] = append(clusters[wave], c)
	}
	if keepGone {
		isMember := map[string]bool{}
		for _, m := range members {
			isMember[m.key()] = true
		}
		for key, c := range placed {
			if wave := waveOf[key]; !isMember[key] && final(c.State) && slices.Contains(names, wave) {
				clusters[wave] = append(clusters[wave], c)
			}
		}
	}
	var out []v1.WaveStatus
	for _, name := range names {
		cs := clusters[name]
		w := previous[name]
		if name == RestWave && len(cs) == 0 && len(w.Counts) == 0 {
			continue
		}
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].Namespace != cs[j].Namespace {
				return cs[i].Namespace < cs[j].Namespace
			}
			return cs[i].Name < cs[j].Name
		})
		w.Name, w.Clusters = name, cs
		out = append(out, w)
	}
	return out
}

func from(m Member) string {
	if m.LastGood != "" {
		return m.LastGood
	}
	return m.Running
}

// waveFor is the first wave whose selector matches; a selector that cannot
// be read matches nothing (the profile's Valid condition says why).
func waveFor(policy v1.RolloutPolicy, lbls map[string]string) string {
	for _, w := range policy.Waves {
		if w.Selector == nil {
			return w.Name
		}
		sel, err := metav1.LabelSelectorAsSelector(w.Selector)
		if err == nil && sel.Matches(labels.Set(lbls)) {
			return w.Name
		}
	}
	return RestWave
}

// observe moves one cluster's state on from what it reports, and says
// when a soaking cluster's health is not known (it cannot be reached).
func observe(c *v1.RolloutCluster, m Member, version string, deadline time.Duration, rollback, aborted bool, now metav1.Time) (unknown bool) {
	onVersion := m.Running == version && m.Ready
	set := func(s v1.RolloutClusterState, msg string) {
		c.State, c.Since, c.Message = s, &now, msg
	}
	switch c.State {
	case v1.ClusterRolloutPending:
		if onVersion {
			set(v1.ClusterRolloutSoaking, "")
			c.ReadyTime = &now
		}
	case v1.ClusterRolloutUpdating:
		switch {
		case onVersion:
			set(v1.ClusterRolloutSoaking, "")
			c.ReadyTime = &now
		case m.AwaitingApproval:
			c.Since = &now // a user's approval is not the cluster failing
		case now.Sub(c.Since.Time) > deadline:
			msg := fmt.Sprintf("not healthy on %s within %s", version, deadline)
			if m.Problem != "" {
				msg += ": " + m.Problem
			}
			set(v1.ClusterRolloutFailed, msg)
		}
	case v1.ClusterRolloutSoaking, v1.ClusterRolloutHealthy:
		switch {
		case c.State != v1.ClusterRolloutSoaking:
		case onVersion:
			c.Message = "" // back after being unreachable
		case m.Unreachable && !aborted:
			// An API server restarting or a link down says nothing about
			// the version: the soak waits for the cluster to answer.
			c.Message = "unreachable, the soak starts again once it answers: " + m.Problem
			unknown = true
		default:
			msg := "stopped being healthy while its wave soaked"
			if m.Problem != "" {
				msg += ": " + m.Problem
			}
			set(v1.ClusterRolloutFailed, msg)
		}
	}
	if aborted && (c.State == v1.ClusterRolloutUpdating || c.State == v1.ClusterRolloutSoaking || c.State == v1.ClusterRolloutHealthy) {
		set(v1.ClusterRolloutFailed, "the roll-out was aborted")
	}
	if c.State == v1.ClusterRolloutFailed && rollback && m.Rejected && m.Running != version && (m.Ready || m.Running == "") {
		set(v1.ClusterRolloutRolledBack, c.Message)
	}
	return unknown
}

// advance completes soaked waves and starts clusters of the first wave not
// done, as its maxParallel allows. It returns the wave that waits for
// approval, if one does.
func advance(st *v1.RolloutStatus, policy v1.RolloutPolicy, approved map[string]bool, paused bool, now metav1.Time) string {
	for wi := range st.Waves {
		w := &st.Waves[wi]
		if len(w.Clusters) == 0 {
			continue // nothing to soak: no wait for a wave no cluster is in
		}
		spec := waveSpec(policy, w.Name)
		if hasState(*w, v1.ClusterRolloutPending) || hasState(*w, v1.ClusterRolloutUpdating) {
			if paused {
				return ""
			}
			if spec.Approval && w.StartTime == nil && !approved[w.Name] {
				return w.Name
			}
			start(w, spec, now)
			return ""
		}
		// Every cluster of the wave is through (healthy, or failed within
		// what the policy tolerates): it soaks, then the next starts.
		if w.HealthyTime == nil {
			w.HealthyTime = &now
		}
		soak := time.Duration(0)
		if spec.Soak != nil {
			soak = spec.Soak.Duration
		}
		if now.Sub(w.HealthyTime.Time) < soak {
			return ""
		}
		for ci := range w.Clusters {
			if c := &w.Clusters[ci]; c.State == v1.ClusterRolloutSoaking {
				c.State, c.Since = v1.ClusterRolloutHealthy, &now
			}
		}
	}
	return ""
}

func start(w *v1.WaveStatus, spec v1.Wave, now metav1.Time) {
	limit := len(w.Clusters)
	if spec.MaxParallel != nil {
		n, err := intstr.GetScaledValueFromIntOrPercent(spec.MaxParallel, len(w.Clusters), true)
		if err == nil {
			limit = max(1, n)
		}
	}
	updating := 0
	for _, c := range w.Clusters {
		if c.State == v1.ClusterRolloutUpdating {
			updating++
		}
	}
	for ci := range w.Clusters {
		c := &w.Clusters[ci]
		if updating >= limit {
			break
		}
		if c.State == v1.ClusterRolloutPending {
			c.State, c.Since, c.StartTime, c.ReadyTime = v1.ClusterRolloutUpdating, &now, &now, nil
			updating++
			if w.StartTime == nil {
				w.StartTime = &now
			}
		}
	}
}

func waveSpec(policy v1.RolloutPolicy, name string) v1.Wave {
	for _, w := range policy.Waves {
		if w.Name == name {
			return w
		}
	}
	return v1.Wave{Name: name}
}

func hasState(w v1.WaveStatus, s v1.RolloutClusterState) bool {
	for _, c := range w.Clusters {
		if c.State == s {
			return true
		}
	}
	return false
}

func approved(ann map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, w := range strings.Split(ann[ApprovedAnnotation], ",") {
		if w = strings.TrimSpace(w); w != "" {
			out[w] = true
		}
	}
	return out
}

// phase says where the roll-out stands, and why when it does not progress.
func phase(st *v1.RolloutStatus, halted, aborted, paused bool, waiting string, maxFailures int32, rollback bool) (v1.RolloutPhase, string) {
	var failed, rolledBack []string
	for _, w := range st.Waves {
		for _, c := range w.Clusters {
			switch c.State {
			case v1.ClusterRolloutFailed:
				failed = append(failed, fmt.Sprintf("%s/%s: %s", c.Namespace, c.Name, c.Message))
			case v1.ClusterRolloutRolledBack:
				rolledBack = append(rolledBack, fmt.Sprintf("%s/%s: %s", c.Namespace, c.Name, c.Message))
			}
		}
	}
	if halted {
		why := fmt.Sprintf("%d clusters failed, at most %d allowed: %s", len(failed)+len(rolledBack), maxFailures, strings.Join(append(failed, rolledBack...), "; "))
		if aborted {
			why = "aborted by a user"
		}
		if rollback && len(failed) == 0 {
			return v1.RolloutRolledBack, why
		}
		return v1.RolloutHalted, why
	}
	if paused {
		return v1.RolloutPaused, "paused by a user (strata rollout resume)"
	}
	if waiting != "" {
		return v1.RolloutPaused, fmt.Sprintf("wave %s waits for approval (strata rollout resume)", waiting)
	}
	listed := false
	for _, w := range st.Waves {
		listed = listed || len(w.Counts) > 0 // compacted: it reached clusters
		for _, c := range w.Clusters {
			listed = true
			if c.State != v1.ClusterRolloutHealthy && c.State != v1.ClusterRolloutFailed && c.State != v1.ClusterRolloutRolledBack {
				return v1.RolloutProgressing, ""
			}
		}
	}
	if !listed {
		// A roll-out that has reached no cluster has not happened: were it
		// Completed, clusters created with the profile (one kubectl apply)
		// would skip its waves or not depending on which controller ran first.
		return v1.RolloutProgressing, NoClusterYet
	}
	return v1.RolloutCompleted, ""
}

// nextLook is when a deadline or a soak ends, at most 30 s away, so the
// roll-out moves on time even when no cluster changes meanwhile.
func nextLook(st *v1.RolloutStatus, policy v1.RolloutPolicy, deadline time.Duration, now time.Time) time.Duration {
	if st.Phase == v1.RolloutCompleted || st.Phase == v1.RolloutRolledBack || st.Reason == NoClusterYet {
		return 0 // nothing to time: a cluster that comes is an event
	}
	next := 30 * time.Second
	for _, w := range st.Waves {
		if spec := waveSpec(policy, w.Name); w.HealthyTime != nil && spec.Soak != nil {
			next = min(next, w.HealthyTime.Add(spec.Soak.Duration).Sub(now))
		}
		for _, c := range w.Clusters {
			if c.State == v1.ClusterRolloutUpdating && c.Since != nil {
				next = min(next, c.Since.Add(deadline).Sub(now))
			}
		}
	}
	return max(next, time.Second)
}

// Compact lets go of a finished roll-out's clusters, keeping per wave how
// many ended in each state: for the old roll-outs of a profile, so that its
// statuses stay small however many versions it has.
func Compact(st *v1.RolloutStatus) {
	for wi := range st.Waves {
		w := &st.Waves[wi]
		if len(w.Clusters) == 0 {
			continue
		}
		if w.Counts == nil {
			w.Counts = map[v1.RolloutClusterState]int32{}
		}
		for _, c := range w.Clusters {
			w.Counts[c.State]++
		}
		w.Clusters = nil
	}
}
