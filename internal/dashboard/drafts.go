package dashboard

import (
	"fmt"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/preview"
)

// impactView is a draft's impact as the Profiles page draws it.
type impactView struct {
	// Stale: computed for an older generation of the draft.
	Stale    bool
	Total    int
	Parts    []impactPart
	Clusters []impactRow
}

// impactPart is one outcome's share of the clusters, for the bar.
type impactPart struct {
	Outcome         string
	Count           int
	Percent, Offset float64
}

// impactRow is one cluster's outcome.
type impactRow struct {
	Key, Outcome, Change string
}

// impactOf reads a draft's impact from its status; nil when the manager
// has not computed it yet.
func impactOf(p *v1.ClusterProfile) *impactView {
	im := p.Status.Impact
	if im == nil {
		return nil
	}
	s := im.Summary
	v := &impactView{Stale: im.ObservedGeneration != p.Generation, Total: int(s.Change + s.Unchanged + s.Refused + s.Unknown)}
	offset := 0.0
	for _, part := range []impactPart{{Outcome: "change", Count: int(s.Change)}, {Outcome: "unchanged", Count: int(s.Unchanged)},
		{Outcome: "refused", Count: int(s.Refused)}, {Outcome: "unknown", Count: int(s.Unknown)}} {
		part.Percent, part.Offset = percent(part.Count, v.Total), offset
		offset += part.Percent
		v.Parts = append(v.Parts, part)
	}
	for _, c := range im.Clusters {
		row := impactRow{Key: c.Namespace + "/" + c.Name, Outcome: "unchanged", Change: "no layer changes"}
		layers := make([]preview.LayerChange, len(c.Layers))
		for i, l := range c.Layers {
			layers[i] = preview.LayerChange{Name: l.Name, Action: l.Action, FromVersion: l.FromVersion, ToVersion: l.ToVersion, Package: l.Package, FromPackage: l.FromPackage}
		}
		switch changes := preview.Changes(layers); {
		case c.Unknown != "":
			row.Outcome, row.Change = "unknown", c.Unknown
		case c.Refused != "":
			row.Outcome, row.Change = "refused", c.Refused
		case changes != "":
			row.Outcome, row.Change = "change", changes
		}
		v.Clusters = append(v.Clusters, row)
	}
	return v
}

// publish publishes a draft version as the user: spec.draft false, only
// if it is still the generation they saw.
func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	c, err := s.clientFor(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := &v1.ClusterProfile{}
	if err := c.Get(r.Context(), client.ObjectKey{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}, p); err != nil {
		s.fail(w, r, err)
		return
	}
	if !p.Spec.Draft || fmt.Sprint(p.Generation) != r.PostFormValue("generation") {
		s.renderStatus(w, r, http.StatusConflict, "error", errorPage{page: s.newPage(r, "The draft changed", ""), Message: "this version is no longer the draft you reviewed: review its impact again before publishing"})
		return
	}
	patch := client.MergeFromWithOptions(p.DeepCopy(), client.MergeFromWithOptimisticLock{})
	p.Spec.Draft = false
	if err := c.Patch(r.Context(), p, patch); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/profiles", http.StatusSeeOther)
}
