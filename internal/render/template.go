package render

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	kubefake "helm.sh/helm/v4/pkg/kube/fake"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"

	"strata.dev/strata/internal/stack"
)

// Manifests renders a layer to multi-document YAML, client-side. Each
// document is preceded by a "# Source:" comment naming its template.
func Manifests(l stack.Layer, opts Options) (string, error) {
	kubeVersion := opts.KubeVersion
	ch, values, err := LayerChart(l, opts)
	if err != nil {
		return "", err
	}
	cfg := action.NewConfiguration()
	cfg.Releases = storage.Init(driver.NewMemory())
	cfg.KubeClient = &kubefake.PrintingKubeClient{Out: io.Discard}
	cfg.Capabilities = common.DefaultCapabilities.Copy()

	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.Replace = true
	install.ReleaseName = l.ReleaseName
	install.Namespace = l.Namespace
	install.IncludeCRDs = true
	if kubeVersion != "" {
		kv, err := common.ParseKubeVersion("v" + strings.TrimPrefix(kubeVersion, "v"))
		if err != nil {
			return "", fmt.Errorf("layer %q: kubernetes version %q: %w", l.Name, kubeVersion, err)
		}
		install.KubeVersion = kv
	}
	res, err := install.Run(ch, values)
	if err != nil {
		return "", fmt.Errorf("layer %q: render chart %s: %w", l.Name, ch.Metadata.Name, err)
	}
	rel, ok := res.(*releasev1.Release)
	if !ok {
		return "", errors.New("helm returned an unknown release type")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Layer: %s (profile %s %s, %s %s %s)\n", l.Name, l.Profile, l.ProfileVersion, l.Source, l.Package, l.Version)
	if m := strings.TrimSpace(rel.Manifest); m != "" {
		b.WriteString(m + "\n")
	}
	for _, h := range rel.Hooks {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", h.Path, strings.TrimSpace(h.Manifest))
	}
	return b.String(), nil
}
