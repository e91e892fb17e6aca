package rollout

import (
	"fmt"
	"strings"
	"time"

	v1 "strata.dev/strata/api/v1alpha1"
)

// Report is a roll-out as `strata rollout status -o json` prints it.
type Report struct {
	Profile string       `json:"profile"`
	Version string       `json:"version"`
	Phase   string       `json:"phase"`
	Reason  string       `json:"reason"`
	Waves   []WaveReport `json:"waves"`
}

// WaveReport is one wave of a Report.
type WaveReport struct {
	Name     string          `json:"name"`
	Clusters []ClusterReport `json:"clusters"`
	// Counts stand for the clusters of an old roll-out's record.
	Counts map[string]int32 `json:"counts,omitempty"`
}

// ClusterReport is one cluster of a wave.
type ClusterReport struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	State     string `json:"state"`
	Message   string `json:"message,omitempty"`
}

// ReportOf reads a profile version's roll-out. A version without a policy
// has none; one whose roll-out has not taken its first step is Pending.
func ReportOf(p *v1.ClusterProfile) (Report, error) {
	r := Report{Profile: p.Spec.Name, Version: p.Spec.Version, Waves: []WaveReport{}}
	if p.Spec.Rollout == nil {
		return r, fmt.Errorf("profile %s %s has no roll-out policy (spec.rollout): every cluster moves to it at once", p.Spec.Name, p.Spec.Version)
	}
	st := p.Status.Rollout
	if st == nil {
		r.Phase, r.Reason = "Pending", "the manager has not started it yet"
		return r, nil
	}
	r.Phase, r.Reason = string(st.Phase), st.Reason
	for _, w := range st.Waves {
		wr := WaveReport{Name: w.Name, Clusters: []ClusterReport{}}
		for state, n := range w.Counts {
			if wr.Counts == nil {
				wr.Counts = map[string]int32{}
			}
			wr.Counts[string(state)] = n
		}
		for _, c := range w.Clusters {
			wr.Clusters = append(wr.Clusters, ClusterReport{Namespace: c.Namespace, Name: c.Name, State: string(c.State), Message: c.Message})
		}
		r.Waves = append(r.Waves, wr)
	}
	return r, nil
}

// Steer returns the annotations that carry out a user's action on a
// roll-out — pause, resume (also approves the wave that waits), abort or
// retry — given the profile version's annotations now.
func Steer(p *v1.ClusterProfile, action string, now time.Time) (map[string]string, error) {
	if p.Spec.Rollout == nil {
		return nil, fmt.Errorf("profile %s %s has no roll-out policy (spec.rollout)", p.Spec.Name, p.Spec.Version)
	}
	ann := map[string]string{}
	for k, v := range p.Annotations {
		ann[k] = v
	}
	switch action {
	case "pause":
		ann[PausedAnnotation] = "true"
	case "resume":
		delete(ann, PausedAnnotation)
		if w := waitingWave(p); w != "" {
			ann[ApprovedAnnotation] = strings.Trim(ann[ApprovedAnnotation]+","+w, ",")
		}
	case "abort":
		ann[AbortedAnnotation] = "true"
	case "retry":
		delete(ann, AbortedAnnotation)
		delete(ann, PausedAnnotation)
		ann[RetryAnnotation] = now.UTC().Format(time.RFC3339Nano)
	default:
		return nil, fmt.Errorf("unknown action %q: want pause, resume, abort or retry", action)
	}
	return ann, nil
}

// waitingWave is the first wave with approval that has not started, the one
// a resume lets go.
func waitingWave(p *v1.ClusterProfile) string {
	approved := approved(p.Annotations)
	started, empty := map[string]bool{}, map[string]bool{}
	if st := p.Status.Rollout; st != nil {
		for _, w := range st.Waves {
			started[w.Name], empty[w.Name] = w.StartTime != nil, len(w.Clusters) == 0
		}
	}
	for _, w := range p.Spec.Rollout.Waves {
		// A wave no cluster is in does not wait (see advance).
		if w.Approval && !approved[w.Name] && !started[w.Name] && !empty[w.Name] {
			return w.Name
		}
	}
	return ""
}
