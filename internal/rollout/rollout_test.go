package rollout

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/profile"
)

// fleet is a roll-out driven step by step over clusters whose reports the
// test sets, as the controller does with real ones.
type fleet struct {
	t       *testing.T
	policy  v1.RolloutPolicy
	members map[string]*Member
	order   []string
	ann     map[string]string
	status  *v1.RolloutStatus
	now     time.Time
}

func newFleet(t *testing.T, policy v1.RolloutPolicy, labels ...map[string]string) *fleet {
	f := &fleet{t: t, policy: policy, members: map[string]*Member{}, ann: map[string]string{}, now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	for i, l := range labels {
		name := fmt.Sprintf("c%d", i+1)
		f.members[name] = &Member{Namespace: "edge", Name: name, Labels: l, Running: "1.0.0", LastGood: "1.0.0", Ready: true}
		f.order = append(f.order, name)
	}
	return f
}

func (f *fleet) step() {
	var ms []Member
	for _, n := range f.order {
		ms = append(ms, *f.members[n])
	}
	st, _ := Step(Input{Version: "1.1.0", Policy: f.policy, Status: f.status, Members: ms, Annotations: f.ann, Now: f.now})
	f.status = &st
}

// states is "wave:cluster=State" for every cluster, in order.
func (f *fleet) states() string {
	var out []string
	for _, w := range f.status.Waves {
		for _, c := range w.Clusters {
			out = append(out, fmt.Sprintf("%s:%s=%s", w.Name, c.Name, c.State))
		}
	}
	return strings.Join(out, " ")
}

// converge makes every Updating cluster run the version, Ready.
func (f *fleet) converge(version string) {
	for _, w := range f.status.Waves {
		for _, c := range w.Clusters {
			if c.State == v1.ClusterRolloutUpdating {
				m := f.members[c.Name]
				m.Running, m.Ready = version, true
			}
		}
	}
}

func (f *fleet) expect(phase v1.RolloutPhase, states string) {
	f.t.Helper()
	if f.status.Phase != phase || f.states() != states {
		f.t.Fatalf("at %s:\n got %s %s\nwant %s %s (reason %q)", f.now.Format(time.TimeOnly), f.status.Phase, f.states(), phase, states, f.status.Reason)
	}
}

func ring(r string) map[string]string { return map[string]string{"ring": r} }

func selector(r string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"ring": r}}
}

func parallel(v intstr.IntOrString) *intstr.IntOrString { return &v }

func TestWavesSoakAndParallelism(t *testing.T) {
	f := newFleet(t, v1.RolloutPolicy{Waves: []v1.Wave{
		{Name: "canary", Selector: selector("canary"), Soak: &metav1.Duration{Duration: time.Minute}},
		{Name: "all", MaxParallel: parallel(intstr.FromString("50%"))},
	}}, ring("canary"), nil, nil, nil, ring("canary"))
	f.step()
	// Overlapping selectors are fine; clusters matched by no selector would go to "rest".
	f.expect(v1.RolloutProgressing, "canary:c1=Updating canary:c5=Updating all:c2=Pending all:c3=Pending all:c4=Pending")
	f.converge("1.1.0")
	f.step()
	f.expect(v1.RolloutProgressing, "canary:c1=Soaking canary:c5=Soaking all:c2=Pending all:c3=Pending all:c4=Pending")
	f.now = f.now.Add(59 * time.Second)
	f.step()
	f.expect(v1.RolloutProgressing, "canary:c1=Soaking canary:c5=Soaking all:c2=Pending all:c3=Pending all:c4=Pending")
	f.now = f.now.Add(time.Second)
	f.step()
	// 50% of 3 rounds up to 2 at once.
	f.expect(v1.RolloutProgressing, "canary:c1=Healthy canary:c5=Healthy all:c2=Updating all:c3=Updating all:c4=Pending")
	f.converge("1.1.0")
	f.step()
	f.expect(v1.RolloutProgressing, "canary:c1=Healthy canary:c5=Healthy all:c2=Soaking all:c3=Soaking all:c4=Updating")
	f.converge("1.1.0")
	f.step()
	f.expect(v1.RolloutCompleted, "canary:c1=Healthy canary:c5=Healthy all:c2=Healthy all:c3=Healthy all:c4=Healthy")
	if f.status.EndTime == nil {
		t.Error("a completed roll-out has no end time")
	}
}

func TestAnEmptyWaveIsNoWait(t *testing.T) {
	f := newFleet(t, v1.RolloutPolicy{Waves: []v1.Wave{
		{Name: "canary", Selector: selector("canary"), Soak: &metav1.Duration{Duration: time.Hour}, Approval: true},
		{Name: "all"},
	}}, nil)
	f.step()
	f.expect(v1.RolloutProgressing, "all:c1=Updating")
}

func TestClustersNoWaveTakesGoLast(t *testing.T) {
	f := newFleet(t, v1.RolloutPolicy{Waves: []v1.Wave{{Name: "canary", Selector: selector("canary")}}}, nil, ring("canary"))
	f.step()
	f.expect(v1.RolloutProgressing, "canary:c2=Updating rest:c1=Pending")
}

// Whatever the policy's shape, each cluster is in exactly one wave, and a
// wave the policy names "rest" is the last wave itself.
func TestEveryClusterIsInOneWave(t *testing.T) {
	soak := &metav1.Duration{Duration: time.Minute}
	for _, tc := range []struct {
		name   string
		waves  []v1.Wave
		states string
	}{
		{"overlapping selectors: the first wins",
			[]v1.Wave{{Name: "canary", Selector: selector("canary")}, {Name: "wide", Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "ring", Operator: metav1.LabelSelectorOpExists}}}}},
			"canary:c1=Updating canary:c4=Updating wide:c2=Pending rest:c3=Pending"},
		{"a catch-all first takes everyone",
			[]v1.Wave{{Name: "all"}, {Name: "canary", Selector: selector("canary")}},
			"all:c1=Updating all:c2=Updating all:c3=Updating all:c4=Updating"},
		{"a catch-all named rest is the last wave",
			[]v1.Wave{{Name: "canary", Selector: selector("canary")}, {Name: "rest", Soak: soak}},
			"canary:c1=Updating canary:c4=Updating rest:c2=Pending rest:c3=Pending"},
		{"a last wave named rest with a selector also takes those no wave takes",
			[]v1.Wave{{Name: "canary", Selector: selector("canary")}, {Name: "rest", Selector: selector("edge")}},
			"canary:c1=Updating canary:c4=Updating rest:c2=Pending rest:c3=Pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, v1.RolloutPolicy{Waves: tc.waves}, ring("canary"), ring("edge"), nil, ring("canary"))
			f.step()
			f.expect(v1.RolloutProgressing, tc.states)
			seen := map[string]string{}
			for _, w := range f.status.Waves {
				for _, c := range w.Clusters {
					if other, twice := seen[c.Name]; twice {
						t.Errorf("%s is in wave %s and in wave %s", c.Name, other, w.Name)
					}
					seen[c.Name] = w.Name
				}
			}
			if len(seen) != 4 {
				t.Errorf("%d clusters placed, want 4: %s", len(seen), f.states())
			}
			// The waves run to the end, each cluster once.
			for range 6 {
				f.converge("1.1.0")
				f.now = f.now.Add(time.Minute)
				f.step()
			}
			if f.status.Phase != v1.RolloutCompleted {
				t.Errorf("roll-out %s: %s", f.status.Phase, f.states())
			}
		})
	}
}

// A finished roll-out keeps who got the version when, as its clusters go
// on to newer versions; one still running lets them go.
func TestAFinishedRolloutIsARecord(t *testing.T) {
	f := newFleet(t, v1.RolloutPolicy{Waves: []v1.Wave{{Name: "canary", Selector: selector("canary")}}}, ring("canary"), nil, nil)
	f.step()
	f.converge("1.1.0")
	f.step()
	f.step()
	f.converge("1.1.0")
	f.step()
	f.step()
	f.expect(v1.RolloutCompleted, "canary:c1=Healthy rest:c2=Healthy rest:c3=Healthy")
	// c2 and c3 follow 1.x to 1.2.0: no longer members of 1.1.0.
	f.order = []string{"c1"}
	f.step()
	f.expect(v1.RolloutCompleted, "canary:c1=Healthy rest:c2=Healthy rest:c3=Healthy")
	f.order = nil
	f.step()
	f.expect(v1.RolloutCompleted, "canary:c1=Healthy rest:c2=Healthy rest:c3=Healthy")

	// Old records keep counts per wave; a halted one stays halted.
	halted := v1.RolloutStatus{Phase: v1.RolloutRolledBack, Failures: 1, Waves: []v1.WaveStatus{
		{Name: "canary", Clusters: []v1.RolloutCluster{{Namespace: "edge", Name: "c1", State: v1.ClusterRolloutRolledBack}, {Namespace: "edge", Name: "c4", State: v1.ClusterRolloutHealthy}}},
		{Name: "rest", Clusters: []v1.RolloutCluster{{Namespace: "edge", Name: "c2", State: v1.ClusterRolloutPending}}},
	}}
	Compact(&halted)
	if c := halted.Waves[0].Counts; len(halted.Waves[0].Clusters) != 0 || c[v1.ClusterRolloutRolledBack] != 1 || c[v1.ClusterRolloutHealthy] != 1 || halted.Waves[1].Counts[v1.ClusterRolloutPending] != 1 {
		t.Errorf("compacted: %+v", halted.Waves)
	}
	st, _ := Step(Input{Version: "1.1.0", Policy: f.policy, Status: &halted, Members: []Member{{Namespace: "edge", Name: "c9", Running: "1.1.0", Ready: true}}, Now: f.now})
	if st.Phase != v1.RolloutRolledBack || st.Failures != 1 {
		t.Errorf("a compacted roll-out with a member left: %s, %d failures", st.Phase, st.Failures)
	}
}

func TestApprovalPauseAndResume(t *testing.T) {
	f := newFleet(t, v1.RolloutPolicy{Waves: []v1.Wave{
		{Name: "canary", Selector: selector("canary")},
		{Name: "prod", Approval: true},
	}}, ring("canary"), nil)
	f.step()
	f.converge("1.1.0")
	f.step()
	f.expect(v1.RolloutPaused, "canary:c1=Healthy prod:c2=Pending")
	if !strings.Contains(f.status.Reason, "wave prod waits for approval") {
		t.Errorf("reason %q", f.status.Reason)
	}
	f.ann[ApprovedAnnotation] = "prod"
	f.ann[PausedAnnotation] = "true"
	f.step()
	f.expect(v1.RolloutPaused, "canary:c1=Healthy prod:c2=Pending")
	delete(f.ann, PausedAnnotation)
	f.step()
	f.expect(v1.RolloutProgressing, "canary:c1=Healthy prod:c2=Updating")
}

func TestDeadlineHaltsAndRollsBack(t *testing.T) {
	f := newFleet(t, v1.RolloutPolicy{ProgressDeadline: &metav1.Duration{Duration: time.Minute}, Waves: []v1.Wave{
		{Name: "canary", Selector: selector("canary")},
	}}, ring("canary"), nil)
	f.step()
	f.members["c1"].Running, f.members["c1"].Ready, f.members["c1"].Problem = "1.1.0", false, "layer web Failed"
	f.now = f.now.Add(time.Minute + time.Second)
	f.step()
	f.expect(v1.RolloutHalted, "canary:c1=Failed rest:c2=Pending")
	if !strings.Contains(f.status.Reason, "edge/c1: not healthy on 1.1.0 within 1m0s: layer web Failed") {
		t.Errorf("reason %q", f.status.Reason)
	}
	// A status from before the failure still says 1.0.0 and Ready: not yet
	// rolled back until the cluster reports the version rejected.
	f.members["c1"].Running, f.members["c1"].Ready = "1.0.0", true
	f.step()
	f.expect(v1.RolloutHalted, "canary:c1=Failed rest:c2=Pending")
	f.members["c1"].Rejected = true
	f.step()
	f.expect(v1.RolloutRolledBack, "canary:c1=RolledBack rest:c2=Pending")

	// A retry starts it again and clears the count.
	f.ann[RetryAnnotation] = "1"
	f.step()
	f.expect(v1.RolloutProgressing, "canary:c1=Updating rest:c2=Pending")
	if f.status.Failures != 0 || f.status.EndTime != nil {
		t.Errorf("after a retry: %d failures, end %v", f.status.Failures, f.status.EndTime)
	}
}

func TestToleratedFailuresAndHaltPolicy(t *testing.T) {
	one := int32(1)
	f := newFleet(t, v1.RolloutPolicy{MaxFailures: &one, OnFailure: v1.RolloutHalt, ProgressDeadline: &metav1.Duration{Duration: time.Minute}},
		nil, nil, nil)
	f.policy.Waves = []v1.Wave{{Name: "all", MaxParallel: parallel(intstr.FromInt32(1))}}
	f.step()
	f.now = f.now.Add(2 * time.Minute)
	f.step()
	// One failure is tolerated: the next cluster starts; with Halt the
	// failed one is left as it is.
	f.expect(v1.RolloutProgressing, "all:c1=Failed all:c2=Updating all:c3=Pending")
	f.now = f.now.Add(2 * time.Minute)
	f.step()
	f.expect(v1.RolloutHalted, "all:c1=Failed all:c2=Failed all:c3=Pending")
}

func TestAbortReturnsEveryClusterThatMoved(t *testing.T) {
	f := newFleet(t, v1.RolloutPolicy{OnFailure: v1.RolloutHalt, Waves: []v1.Wave{{Name: "all", MaxParallel: parallel(intstr.FromInt32(1))}}}, nil, nil)
	f.step()
	f.converge("1.1.0")
	f.step()
	// c1 soaks, c2 started (it has not moved yet).
	f.expect(v1.RolloutProgressing, "all:c1=Soaking all:c2=Updating")
	f.ann[AbortedAnnotation] = "true"
	f.step()
	f.expect(v1.RolloutHalted, "all:c1=Failed all:c2=Failed")
	f.members["c2"].Rejected = true // it never left 1.0.0
	f.step()
	f.expect(v1.RolloutHalted, "all:c1=Failed all:c2=RolledBack")
	f.members["c1"].Running, f.members["c1"].Rejected = "1.0.0", true
	f.step()
	f.expect(v1.RolloutRolledBack, "all:c1=RolledBack all:c2=RolledBack")
	if f.status.Reason != "aborted by a user" {
		t.Errorf("reason %q", f.status.Reason)
	}
}

func TestAManualClustersWaitIsNotAFailure(t *testing.T) {
	f := newFleet(t, v1.RolloutPolicy{ProgressDeadline: &metav1.Duration{Duration: time.Minute}}, nil)
	f.step()
	f.members["c1"].AwaitingApproval = true
	f.now = f.now.Add(10 * time.Minute)
	f.step()
	f.expect(v1.RolloutProgressing, "rest:c1=Updating")
}

func TestDecideAndGate(t *testing.T) {
	p := &v1.ClusterProfile{Spec: v1.ClusterProfileSpec{Name: "web", Version: "1.1.0", Rollout: &v1.RolloutPolicy{}}}
	if d := Decide(p, "edge", "c1"); d.Admit || d.Reject {
		t.Errorf("before the first step: %+v, want the cluster held", d)
	}
	p.Status.Rollout = &v1.RolloutStatus{Phase: v1.RolloutProgressing, Waves: []v1.WaveStatus{{Name: "rest", Clusters: []v1.RolloutCluster{
		{Namespace: "edge", Name: "c1", State: v1.ClusterRolloutUpdating},
		{Namespace: "edge", Name: "c2", State: v1.ClusterRolloutFailed},
		{Namespace: "edge", Name: "c3", State: v1.ClusterRolloutPending},
	}}}}
	for name, want := range map[string]Decision{"c1": {Admit: true}, "c2": {Reject: true}, "c3": {}, "c9": {}} {
		if got := Decide(p, "edge", name); got != want {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
	p.Spec.Rollout.OnFailure = v1.RolloutHalt
	if got := Decide(p, "edge", "c2"); got != (Decision{Admit: true}) {
		t.Errorf("failed with Halt: %+v, want it left on the version", got)
	}
	p.Status.Rollout.Phase = v1.RolloutCompleted
	if got := Decide(p, "edge", "c9"); !got.Admit {
		t.Error("a cluster that comes after a completed roll-out is held")
	}
}

// The CLI's actions become the annotations a step reads.
func TestSteer(t *testing.T) {
	p := &v1.ClusterProfile{Spec: v1.ClusterProfileSpec{Name: "web", Version: "1.1.0", Rollout: &v1.RolloutPolicy{Waves: []v1.Wave{
		{Name: "canary"}, {Name: "prod", Approval: true}, {Name: "late", Approval: true},
	}}}}
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	steer := func(action string) map[string]string {
		t.Helper()
		ann, err := Steer(p, action, now)
		if err != nil {
			t.Fatal(err)
		}
		p.Annotations = ann
		return ann
	}
	if ann := steer("pause"); ann[PausedAnnotation] != "true" {
		t.Errorf("pause: %v", ann)
	}
	if ann := steer("resume"); ann[PausedAnnotation] != "" || ann[ApprovedAnnotation] != "prod" {
		t.Errorf("resume: %v, want unpaused and the first wave waiting approved", ann)
	}
	one := []v1.RolloutCluster{{Namespace: "edge", Name: "c1", State: v1.ClusterRolloutPending}}
	p.Status.Rollout = &v1.RolloutStatus{Waves: []v1.WaveStatus{{Name: "canary", Clusters: one}, {Name: "prod", StartTime: &metav1.Time{Time: now}, Clusters: one}, {Name: "late", Clusters: one}}}
	if ann := steer("resume"); ann[ApprovedAnnotation] != "prod,late" {
		t.Errorf("second resume: %v, want the next wave approved too", ann)
	}
	if ann := steer("abort"); ann[AbortedAnnotation] != "true" {
		t.Errorf("abort: %v", ann)
	}
	if ann := steer("retry"); ann[AbortedAnnotation] != "" || ann[RetryAnnotation] != "2026-12-02T10:00:00Z" {
		t.Errorf("retry: %v, want the abort lifted and a retry token", ann)
	}
	if _, err := Steer(p, "rewind", now); err == nil {
		t.Error("an unknown action was accepted")
	}
	p.Spec.Rollout = nil
	if _, err := Steer(p, "pause", now); err == nil || !strings.Contains(err.Error(), "no roll-out policy") {
		t.Errorf("a version without a policy: %v", err)
	}
}

func version(v string, policy *v1.RolloutPolicy, st *v1.RolloutStatus) profile.Profile {
	return profile.Profile{ClusterProfile: &v1.ClusterProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "web-" + v},
		Spec:       v1.ClusterProfileSpec{Name: "web", Version: v, Rollout: policy},
		Status:     v1.ClusterProfileStatus{Rollout: st},
	}}
}

func listing(state v1.RolloutClusterState) *v1.RolloutStatus {
	return &v1.RolloutStatus{Phase: v1.RolloutProgressing, Waves: []v1.WaveStatus{{Name: "rest", Clusters: []v1.RolloutCluster{{Namespace: "edge", Name: "c1", State: state}}}}}
}

// Gate pins each attachment to what the cluster may run: the version its
// range or pin picks when admitted, else the last good one; versions it
// rejected are never picked.
func TestGate(t *testing.T) {
	policy := &v1.RolloutPolicy{}
	cluster := func(follows string) *v1.Cluster {
		return &v1.Cluster{
			ObjectMeta: metav1.ObjectMeta{Namespace: "edge", Name: "c1"},
			Spec:       v1.ClusterSpec{Profiles: []v1.ProfileAttachment{{Name: "web", Version: follows}}},
			Status:     v1.ClusterStatus{Profiles: []v1.ProfileStatus{{Name: "web", Version: "1.0.0", LastGood: "1.0.0"}}},
		}
	}
	cases := []struct {
		name, follows string
		newest        profile.Profile
		want          string // "" when the attachment waits
		rejected      []string
	}{
		{"no policy: moves at once", "1.x", version("1.1.0", nil, nil), "1.1.0", nil},
		{"range, not reached yet", "1.x", version("1.1.0", policy, listing(v1.ClusterRolloutPending)), "1.0.0", nil},
		{"range, admitted", "1.x", version("1.1.0", policy, listing(v1.ClusterRolloutUpdating)), "1.1.0", nil},
		{"attachment changed to it, not reached yet", "1.1.0", version("1.1.0", policy, listing(v1.ClusterRolloutPending)), "1.0.0", nil},
		{"failed: back to the last good", "1.x", version("1.1.0", policy, listing(v1.ClusterRolloutFailed)), "1.0.0", []string{"1.1.0"}},
		{"rolled back, pinned to it", "1.1.0", version("1.1.0", policy, listing(v1.ClusterRolloutRolledBack)), "1.0.0", []string{"1.1.0"}},
		{"roll-out not started", "1.x", version("1.1.0", policy, nil), "1.0.0", nil},
	}
	for _, tc := range cases {
		visible := []profile.Profile{version("1.0.0", nil, nil), tc.newest}
		got, rejected, _ := Gate(cluster(tc.follows), visible)
		pinned := ""
		if len(got) == 1 {
			pinned = got[0].Version
		}
		if pinned != tc.want || !slices.Equal(rejected["web"], tc.rejected) {
			t.Errorf("%s: pinned %q rejected %v, want %q %v", tc.name, pinned, rejected["web"], tc.want, tc.rejected)
		}
	}
	// A first install waits for its wave: nothing to hold on to.
	c := cluster("1.x")
	c.Status.Profiles = nil
	got, _, waiting := Gate(c, []profile.Profile{version("1.1.0", policy, listing(v1.ClusterRolloutPending))})
	if len(got) != 0 {
		t.Errorf("a first install before its wave: %+v, want the attachment left out", got)
	}
	if want := "the roll-out of web 1.1.0 to reach wave rest"; waiting["web"] != want {
		t.Errorf("a first install before its wave waits for %q, want %q", waiting["web"], want)
	}
	// No such version: left to the resolver, which says so.
	if got, _, _ := Gate(cluster("2.x"), []profile.Profile{version("1.0.0", nil, nil)}); len(got) != 1 || got[0].Version != "2.x" {
		t.Errorf("an unknown version: %+v", got)
	}
}

// A soaking cluster whose API server does not answer has not failed the
// version: the soak waits, and runs its full length again once the
// cluster answers Ready.
func TestAnUnreachableClusterNeitherPassesNorFailsItsSoak(t *testing.T) {
	f := newFleet(t, v1.RolloutPolicy{Waves: []v1.Wave{
		{Name: "canary", Selector: selector("canary"), Soak: &metav1.Duration{Duration: time.Minute}},
	}}, ring("canary"), nil)
	f.step()
	f.converge("1.1.0")
	f.step()
	f.expect(v1.RolloutProgressing, "canary:c1=Soaking rest:c2=Pending")

	f.now = f.now.Add(50 * time.Second)
	c1 := f.members["c1"]
	c1.Ready, c1.Unreachable, c1.Problem = false, true, "connection refused"
	f.step()
	f.expect(v1.RolloutProgressing, "canary:c1=Soaking rest:c2=Pending")
	if msg := f.status.Waves[0].Clusters[0].Message; !strings.Contains(msg, "unreachable") {
		t.Errorf("the soaking cluster's message %q does not say it is unreachable", msg)
	}

	f.now = f.now.Add(30 * time.Second) // the minute has passed, but not while it was known healthy
	c1.Ready, c1.Unreachable, c1.Problem = true, false, ""
	f.step()
	f.expect(v1.RolloutProgressing, "canary:c1=Soaking rest:c2=Pending")
	f.now = f.now.Add(time.Minute)
	f.step()
	f.expect(v1.RolloutProgressing, "canary:c1=Healthy rest:c2=Updating")

}

// A version no cluster follows yet has rolled out to nobody: its roll-out
// is not over, so clusters that come next go through its waves, whichever
// controller sees them first.
func TestARolloutWithNoClusterWaitsForTheFirst(t *testing.T) {
	f := newFleet(t, v1.RolloutPolicy{Waves: []v1.Wave{{Name: "stores", Approval: true}}})
	f.step()
	if f.status.Phase != v1.RolloutProgressing || f.status.Reason != NoClusterYet || f.status.EndTime != nil {
		t.Fatalf("roll-out with no cluster: %s %q, ended %v; want Progressing %q", f.status.Phase, f.status.Reason, f.status.EndTime, NoClusterYet)
	}
	p := &v1.ClusterProfile{Spec: v1.ClusterProfileSpec{Name: "hello", Version: "1.1.0", Rollout: &f.policy}, Status: v1.ClusterProfileStatus{Rollout: f.status}}
	if d := Decide(p, "edge", "c1"); d.Admit {
		t.Fatal("a cluster not listed yet is admitted by a roll-out that reached nobody")
	}
	f.members["c1"] = &Member{Namespace: "edge", Name: "c1"}
	f.order = []string{"c1"}
	f.step()
	f.expect(v1.RolloutPaused, "stores:c1=Pending")
}
