package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	releasecommon "helm.sh/helm/v4/pkg/release/common"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"strata.dev/strata/internal/render"
	"strata.dev/strata/internal/stack"
	"strata.dev/strata/internal/values"
)

// Action is what a plan does to a layer.
type Action string

// Actions.
const (
	ActionInstall   Action = "install"
	ActionUpgrade   Action = "upgrade"
	ActionRemove    Action = "remove"
	ActionUnchanged Action = "unchanged"
	// ActionRefuse marks a layer that cannot go on this cluster (it uses
	// APIs the cluster does not serve, or fails to render); nothing of it
	// is applied.
	ActionRefuse Action = "refuse"
)

// Phase is where a layer stands.
type Phase string

// Phases.
const (
	PhasePending    Phase = "Pending"
	PhaseInstalling Phase = "Installing"
	PhaseUpgrading  Phase = "Upgrading"
	PhaseRemoving   Phase = "Removing"
	PhaseReady      Phase = "Ready"
	PhaseFailed     Phase = "Failed"
	PhaseBlocked    Phase = "Blocked"
	PhaseRemoved    Phase = "Removed"
	PhaseDrifted    Phase = "Drifted"
)

// Plan is what applying a stack would do, layer by layer, in the order it
// would do it: removals first (last installed first), then the stack.
type Plan struct {
	Stack  string      `json:"stack"`
	Layers []LayerPlan `json:"layers"`
}

// LayerPlan is the planned change of one layer.
type LayerPlan struct {
	Name        string `json:"name"`
	Action      Action `json:"action"`
	Reason      string `json:"reason,omitempty"`
	FromVersion string `json:"fromVersion,omitempty"`
	ToVersion   string `json:"toVersion,omitempty"`
	// FromDigest and ToDigest are the pack archive's digests, for packs from
	// registries: a tag pushed again with other content shows here.
	FromDigest string `json:"fromDigest,omitempty"`
	ToDigest   string `json:"toDigest,omitempty"`
	// ValuesDiff is a unified diff of the values (masked values redacted).
	ValuesDiff string `json:"valuesDiff,omitempty"`
	// Objects is the number of objects the layer holds.
	Objects int `json:"objects"`
	// Images are those a Zarf layer's components run.
	Images []string `json:"images,omitempty"`

	layer    stack.Layer
	recorded InventoryLayer
	chart    *chartv2.Chart
	values   map[string]any
	objects  []object
	digest   string
	repaired []string
	drifted  []string
	// reportDrift: the policy the cluster recorded when the layer was last
	// applied says drift is only reported (a plan of LastApplied).
	reportDrift bool
	// partial holds the Zarf components that cannot deploy; the others do.
	partial error
	// catchUp is set on an unchanged layer whose release already runs the
	// desired content though the inventory says otherwise: a run made the
	// change and stopped (its process killed, the API server gone) before
	// recording it. The inventory is brought up to date, with no revision.
	catchUp bool
	// replace is set when the layer's release moves (another namespace or
	// release name): Helm cannot upgrade across that, so the old release is
	// removed and the new one installed.
	replace bool
}

// Layer is the resolved layer the plan applies; none for a layer the plan
// removes.
func (lp *LayerPlan) Layer() (stack.Layer, bool) {
	return lp.layer, lp.Action != ActionRemove && lp.layer.Name != ""
}

// Digest identifies what the plan would do: which layers change, how, and
// to which rendered content. Approving a plan means approving this digest.
func (p *Plan) Digest() string {
	h := sha256.New()
	for _, l := range p.Layers {
		if l.Action != ActionUnchanged {
			fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", l.Name, l.Action, l.recorded.Digest, l.digest)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Unchanged returns the part of the plan that changes nothing: applying it
// checks readiness and repairs drift only.
func (p *Plan) Unchanged() *Plan {
	out := &Plan{Stack: p.Stack}
	for _, l := range p.Layers {
		if l.Action == ActionUnchanged {
			out.Layers = append(out.Layers, l)
		}
	}
	return out
}

// NothingInstalled tells whether the cluster runs none of the plan's
// layers yet: the plan is a first install.
func (p *Plan) NothingInstalled() bool {
	for _, l := range p.Layers {
		if l.recorded.Name != "" {
			return false
		}
	}
	return true
}

// Changes counts layers the plan would change.
func (p *Plan) Changes() int {
	n := 0
	for _, l := range p.Layers {
		if l.Action != ActionUnchanged {
			n++
		}
	}
	return n
}

// Plan compares a stack with what the cluster runs. It reads the cluster
// and changes nothing.
func (e *Engine) Plan(ctx context.Context, st *stack.Stack) (*Plan, error) {
	caps, err := e.capabilities()
	if err != nil {
		return nil, err
	}
	inv, err := e.readInventory(ctx, st.Cluster)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Stack: st.Cluster}

	desired := map[string]bool{}
	for _, l := range st.Layers {
		desired[l.Name] = true
	}
	for i := len(inv.Layers) - 1; i >= 0; i-- {
		rec := inv.Layers[i]
		if !desired[rec.Name] {
			plan.Layers = append(plan.Layers, LayerPlan{
				Name: rec.Name, Action: ActionRemove, FromVersion: rec.Version, recorded: rec,
				Reason:     fmt.Sprintf("no longer in the stack (was %s %s from profile %s %s)", rec.Package, rec.Version, rec.Profile, rec.ProfileVersion),
				ValuesDiff: values.Diff(rec.Values, nil, "applied", "desired"),
			})
		}
	}

	var releases map[string]lastRelease // read when a layer needs it
	opts := e.renderOptions(st, caps)
	for _, l := range st.Layers {
		lp := LayerPlan{Name: l.Name, layer: l, ToVersion: l.Version, ToDigest: l.PackDigest}
		rec, installed := inv.Layer(l.Name)
		if installed {
			lp.recorded, lp.FromVersion, lp.FromDigest = rec, rec.Version, rec.PackDigest
		}
		lp.ValuesDiff = values.Diff(rec.Values, l.Redacted().Values, "applied", "desired")

		if refusal := e.renderFor(l, opts, caps, &lp); refusal != "" {
			lp.Action, lp.Reason = ActionRefuse, refusal
			plan.Layers = append(plan.Layers, lp)
			continue
		}

		if installed && (rec.Namespace != l.Namespace || rec.ReleaseName != l.ReleaseName) {
			lp.Action, lp.replace = ActionUpgrade, true
			lp.Reason = fmt.Sprintf("%s; moves from %s/%s to %s/%s, so it is removed and installed again", changeReason(rec, l), rec.Namespace, rec.ReleaseName, l.Namespace, l.ReleaseName)
			plan.Layers = append(plan.Layers, lp)
			continue
		}
		if releases == nil {
			if releases, err = e.deployedReleases(ctx); err != nil {
				return nil, err
			}
		}
		last := releases[l.ReleaseName]
		applied := last.deployed && last.digest != "" && last.digest == releaseDigest(lp.digest)
		switch {
		case (!installed || rec.Digest != lp.digest) && applied:
			lp.Action, lp.catchUp = ActionUnchanged, true
		case !installed:
			lp.Action, lp.Reason = ActionInstall, "new layer"
		case rec.Digest != lp.digest:
			lp.Action, lp.Reason = ActionUpgrade, changeReason(rec, l)
		case last.deployed:
			lp.Action = ActionUnchanged
		default:
			lp.Action, lp.Reason = ActionUpgrade, "its Helm release is missing or not deployed"
		}
		plan.Layers = append(plan.Layers, lp)
	}
	return plan, nil
}

// layerChart is render.LayerChart, keeping what a Zarf layer reports
// besides its chart: the images its components run, and the components
// that cannot deploy.
// renderFor renders a layer into lp as it would go on this cluster, and
// says why the cluster refuses it ("" when it does not): it fails to
// render, or uses APIs the cluster does not serve.
func (e *Engine) renderFor(l stack.Layer, opts render.Options, caps *common.Capabilities, lp *LayerPlan) (refusal string) {
	ch, values, err := e.layerChart(l, opts, lp)
	if err != nil {
		return err.Error()
	}
	r, err := e.renderLayer(ch, values, l.ReleaseName, l.Namespace, caps)
	if err != nil {
		return err.Error()
	}
	objs := e.defaultNamespaces(r.objects, l.Namespace)
	lp.chart, lp.values, lp.objects, lp.Objects = ch, values, objs, len(objs)
	lp.digest = r.digest(ch, l.PackDigest)
	if unserved := e.unservedAPIs(objs); len(unserved) > 0 {
		return fmt.Sprintf("uses APIs this cluster (Kubernetes %s) does not serve: %s", caps.KubeVersion.Version, strings.Join(unserved, "; "))
	}
	return ""
}

// Refusals says, by layer name, why this cluster would refuse each of the
// named layers of a stack, as its plan would: nothing is read from the
// cluster but what the engine keeps of its APIs, and nothing is written.
// A fleet's preview asks it of each cluster a new version changes.
func (e *Engine) Refusals(st *stack.Stack, layers []string) (map[string]string, error) {
	caps, err := e.capabilities()
	if err != nil {
		return nil, err
	}
	opts := e.renderOptions(st, caps)
	out := map[string]string{}
	for _, l := range st.Layers {
		if !slices.Contains(layers, l.Name) {
			continue
		}
		var lp LayerPlan
		if refusal := e.renderFor(l, opts, caps, &lp); refusal != "" {
			out[l.Name] = refusal
		}
	}
	return out, nil
}

func (e *Engine) renderOptions(st *stack.Stack, caps *common.Capabilities) render.Options {
	return render.Options{KubeVersion: caps.KubeVersion.Version, ClusterName: st.Cluster, APIServer: e.opts.RESTConfig.Host, Charts: e.opts.Charts, Zarf: e.opts.Zarf}
}

func (e *Engine) layerChart(l stack.Layer, opts render.Options, lp *LayerPlan) (*chartv2.Chart, map[string]any, error) {
	if l.Source != stack.SourceZarf || l.Spec.Zarf == nil {
		return render.LayerChart(l, opts)
	}
	ch, res, err := render.Zarf(l, opts)
	if err != nil {
		return nil, nil, err
	}
	lp.Images, lp.partial = res.Images, res.Err()
	return ch, map[string]any{}, nil
}

func changeReason(rec InventoryLayer, l stack.Layer) string {
	var why []string
	if rec.Package != l.Package {
		why = append(why, fmt.Sprintf("swapped %s → %s", rec.Package, l.Package))
	} else if rec.Version != l.Version {
		why = append(why, fmt.Sprintf("version %s → %s", rec.Version, l.Version))
	} else if rec.PackDigest != "" && l.PackDigest != "" && rec.PackDigest != l.PackDigest {
		why = append(why, fmt.Sprintf("pack content %s → %s (the tag was pushed again)", shortDigest(rec.PackDigest), shortDigest(l.PackDigest)))
	}
	if rec.Profile != l.Profile || rec.ProfileVersion != l.ProfileVersion {
		why = append(why, fmt.Sprintf("profile %s %s → %s %s", rec.Profile, rec.ProfileVersion, l.Profile, l.ProfileVersion))
	}
	if len(why) == 0 {
		why = append(why, "values or templates changed")
	}
	return strings.Join(why, ", ")
}

// digest identifies what a layer would apply: chart identity, every
// rendered object and, for a pack from a registry, the pack's content, so
// that a tag pushed again with other content is a change to approve.
func digest(ch *chartv2.Chart, manifest, packDigest string) string {
	h := sha256.New()
	h.Write([]byte(digestPrefix(ch, packDigest)))
	h.Write([]byte(manifest))
	return hex.EncodeToString(h.Sum(nil))
}

// digestPrefix is what a layer's digest hashes before its manifest.
func digestPrefix(ch *chartv2.Chart, packDigest string) string {
	prefix := ch.Metadata.Name + "\n" + ch.Metadata.Version + "\n"
	if packDigest != "" {
		prefix += "pack " + packDigest + "\n"
	}
	return prefix
}

// lastRelease is what a release's last revision says of itself.
type lastRelease struct {
	deployed bool
	// digest is the layer digest it applied (releaseDigest), when recorded.
	digest string
}

// releaseDigestLabel records on each release revision the layer digest it
// applied, shortened to fit a label value.
const releaseDigestLabel = "strata.dev/digest"

func releaseDigest(d string) string {
	if len(d) > 40 {
		return d[:40]
	}
	return d
}

// deployedReleases tells, by release, whether its last revision is
// deployed and what it applied. It reads the release records' labels only
// (name, version and status, which Helm keeps on each record, and Strata's
// digest), in one request: the records themselves hold whole charts,
// compressed.
func (e *Engine) deployedReleases(ctx context.Context) (map[string]lastRelease, error) {
	list, err := e.metadata.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(InventoryNamespace).
		List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil {
		return nil, fmt.Errorf("release records in %s: %w", InventoryNamespace, err)
	}
	versions := map[string]int{}
	out := map[string]lastRelease{}
	for _, r := range list.Items {
		name := r.Labels["name"]
		version, err := strconv.Atoi(r.Labels["version"])
		if err != nil || name == "" || version <= versions[name] {
			continue
		}
		versions[name] = version
		out[name] = lastRelease{deployed: r.Labels["status"] == string(releasecommon.StatusDeployed), digest: r.Labels[releaseDigestLabel]}
	}
	return out, nil
}

// shortDigest is the first 12 hex digits of a sha256 digest, as people read them.
func shortDigest(d string) string {
	if i := strings.Index(d, ":"); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}
