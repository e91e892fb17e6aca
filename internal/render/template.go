package render

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	kubefake "helm.sh/helm/v4/pkg/kube/fake"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"

	"strata.dev/strata/internal/stack"
)

// Manifests renders a layer to multi-document YAML, client-side. Each
// document is preceded by a "# Source:" comment naming its template.
func Manifests(l stack.Layer, opts Options) (string, error) {
	ch, values, err := LayerChart(l, opts)
	if err != nil {
		return "", err
	}
	caps := common.DefaultCapabilities.Copy()
	if opts.KubeVersion != "" {
		kv, err := common.ParseKubeVersion("v" + strings.TrimPrefix(opts.KubeVersion, "v"))
		if err != nil {
			return "", fmt.Errorf("layer %q: kubernetes version %q: %w", l.Name, opts.KubeVersion, err)
		}
		caps.KubeVersion = *kv
	}
	manifest, err := Chart(ch, values, l.ReleaseName, l.Namespace, caps)
	if err != nil {
		return "", fmt.Errorf("layer %q: %w", l.Name, err)
	}
	return fmt.Sprintf("# Layer: %s (profile %s %s, %s %s %s)\n%s", l.Name, l.Profile, l.ProfileVersion, l.Source, l.Package, l.Version, manifest), nil
}

// Chart renders a chart as Helm would install it as release name in
// namespace ns on a cluster with caps: templates, CRDs and hooks, as
// multi-document YAML.
func Chart(ch *chartv2.Chart, values map[string]any, name, ns string, caps *common.Capabilities) (string, error) {
	cfg := action.NewConfiguration()
	cfg.Releases = storage.Init(driver.NewMemory())
	cfg.KubeClient = &kubefake.PrintingKubeClient{Out: io.Discard}

	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.Replace = true
	install.ReleaseName = name
	install.Namespace = ns
	install.IncludeCRDs = true
	install.KubeVersion = &caps.KubeVersion
	install.APIVersions = caps.APIVersions
	res, err := install.Run(ownCopy(ch), values)
	if err != nil {
		return "", fmt.Errorf("render chart %s: %w", ch.Metadata.Name, err)
	}
	rel, ok := res.(*releasev1.Release)
	if !ok {
		return "", errors.New("helm returned an unknown release type")
	}
	var b strings.Builder
	if m := strings.TrimSpace(rel.Manifest); m != "" {
		b.WriteString(m + "\n")
	}
	for _, h := range rel.Hooks {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", h.Path, strings.TrimSpace(h.Manifest))
	}
	return b.String(), nil
}
