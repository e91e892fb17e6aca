package rollout

import (
	"slices"

	"github.com/Masterminds/semver/v3"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/stack"
)

// Resolve resolves a cluster's stack with the given attachments.
type Resolve func(attachments []v1.ProfileAttachment) (*stack.Stack, error)

// HoldBack is what a cluster following ranges runs when the versions its
// ranges pick do not resolve for it: a new version whose schema its values
// break, or whose constraints its values fail. A cluster does not lose the
// version it runs healthy over a version it cannot take, as it does not
// over a version a roll-out rejected.
//
// Each attachment that would move off the version the cluster runs, and
// that follows a range (an exact version is the user's own choice: it
// stays refused, and the cluster Stalled), is held on the version it runs.
// When that resolves, each held attachment moves on alone where it can;
// those that cannot are returned, by profile name, with why. When holding
// back does not help either — the cluster's own spec is what breaks — ok
// is false and the first error stands.
func HoldBack(c *v1.Cluster, picked []v1.ProfileAttachment, visible []profile.Profile, resolve Resolve) (st *stack.Stack, refused map[string]v1.RefusedVersion, ok bool) {
	held := slices.Clone(picked)
	var moving []int
	for i, a := range picked {
		running, _ := runs(c, a.Name)
		if running == "" || running == a.Version || !isVersion(a.Version) || exact(c, a.Name) {
			continue
		}
		if _, found := stack.FindProfile(visible, a.Name, running); !found {
			continue // the running version is gone: nothing to hold on to
		}
		held[i].Version = running
		moving = append(moving, i)
	}
	if len(moving) == 0 {
		return nil, nil, false
	}
	st, err := resolve(held)
	if err != nil {
		return nil, nil, false
	}
	refused = map[string]v1.RefusedVersion{}
	for _, i := range moving {
		try := slices.Clone(held)
		try[i].Version = picked[i].Version
		next, err := resolve(try)
		if err != nil {
			refused[picked[i].Name] = v1.RefusedVersion{Version: picked[i].Version, Reason: err.Error()}
			continue
		}
		held, st = try, next
	}
	return st, refused, true
}

// exact reports whether the cluster attaches a profile by an exact version
// rather than a range.
func exact(c *v1.Cluster, name string) bool {
	i := slices.IndexFunc(c.Spec.Profiles, func(a v1.ProfileAttachment) bool { return a.Name == name })
	return i >= 0 && isVersion(c.Spec.Profiles[i].Version)
}

func isVersion(s string) bool {
	_, err := semver.StrictNewVersion(s)
	return err == nil
}
