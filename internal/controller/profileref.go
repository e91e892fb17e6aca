package controller

import v1 "strata.dev/strata/api/v1alpha1"

// ProfileRef is an attached profile as the CLI and the dashboard show it:
// the version it runs, the version or range the cluster follows, and the
// newest version published.
type ProfileRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Follows string `json:"follows"`
	Latest  string `json:"latest,omitempty"`
	// Refused is a newer version the cluster does not take (its status says why).
	Refused string `json:"refused,omitempty"`
}

// AttachedProfiles lists a cluster's attachments with what its status says
// of them.
func AttachedProfiles(c *v1.Cluster) []ProfileRef {
	out := make([]ProfileRef, 0, len(c.Spec.Profiles))
	for _, a := range c.Spec.Profiles {
		p := ProfileRef{Name: a.Name, Version: a.Version, Follows: a.Version}
		for _, s := range c.Status.Profiles {
			if s.Name == a.Name {
				p.Latest = s.Latest
				if s.Refused != nil {
					p.Refused = s.Refused.Version
				}
				if s.Version != "" {
					p.Version = s.Version
				}
			}
		}
		out = append(out, p)
	}
	return out
}

// String is "name@version", with the range followed, a newer version
// refused and a newer version published when there are.
func (p ProfileRef) String() string {
	s := p.Name + "@" + p.Version
	if p.Follows != p.Version {
		s += " (" + p.Follows + ")"
	}
	if p.Refused != "" {
		s += " [" + p.Refused + " refused]"
	}
	if p.Latest != "" && p.Latest != p.Version && p.Latest != p.Refused {
		s += " [" + p.Latest + " published]"
	}
	return s
}
