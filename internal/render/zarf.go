package render

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/stack"
	"strata.dev/strata/internal/zarf"
)

// Zarf turns a Zarf layer into a generated chart that applies the selected
// components' manifests (and their charts, rendered) as they are, and
// reports what the components run. The layer's values hold `variables:`
// and `constants:` by name. A component that cannot deploy is reported in
// the result, and the chart holds the others; when none can, it is an error.
func Zarf(l stack.Layer, opts Options) (*chartv2.Chart, *zarf.Result, error) {
	src, err := loadZarf(l.Spec.Zarf.Package, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("layer %q: %w", l.Name, err)
	}
	caps := common.DefaultCapabilities.Copy()
	if opts.KubeVersion != "" {
		if kv, err := common.ParseKubeVersion("v" + strings.TrimPrefix(opts.KubeVersion, "v")); err == nil {
			caps.KubeVersion = *kv
		}
	}
	build := zarf.BuildOptions{
		Components: l.Spec.Zarf.Components,
		Variables:  stringMap(l.Values["variables"]),
		Constants:  stringMap(l.Values["constants"]),
		RenderChart: func(ch *chartv2.Chart, values map[string]any, name, ns string) (string, error) {
			return Chart(ch, values, name, ns, caps)
		},
	}
	if opts.Charts != nil {
		// Charts a Zarf package names carry no verify of their own.
		build.FetchChart = func(src *v1.ChartSource) (*chartv2.Chart, error) { return opts.Charts.Fetch(src, nil) }
	}
	res, err := zarf.Build(src, build)
	if err != nil {
		return nil, nil, fmt.Errorf("layer %q: zarf package %s: %w", l.Name, zarfName(l.Spec.Zarf.Package), err)
	}
	if len(res.Components) == 0 && res.Err() != nil {
		return nil, nil, fmt.Errorf("layer %q: %w", l.Name, res.Err())
	}
	ch := emptyChart(l.Name, chartVersion(zarfVersion(src)))
	for i, d := range res.Documents {
		file := fmt.Sprintf("zarf/%03d-%s.yaml", i, strings.NewReplacer("/", "_", " ", "_").Replace(d.Name))
		ch.Files = append(ch.Files, &common.File{Name: file, Data: []byte(d.YAML)})
		ch.Templates = append(ch.Templates, &common.File{
			Name: "templates/" + strings.TrimPrefix(file, "zarf/"),
			Data: []byte(fmt.Sprintf("{{ .Files.Get %q }}", file)),
		})
	}
	return ch, res, nil
}

// zarfPullTimeout bounds fetching a published package, so a registry that
// stops answering fails the layer instead of holding a worker.
const zarfPullTimeout = 5 * time.Minute

// loadZarf reads a Zarf layer's package: a path to an archive or definition
// folder, or oci://… for a package published to a registry.
func loadZarf(pkg string, opts Options) (*zarf.Source, error) {
	if !strings.HasPrefix(pkg, "oci://") {
		return zarf.Load(pkg)
	}
	if opts.Zarf == nil {
		return nil, fmt.Errorf("zarf package %s: published packages are not fetched here (offline)", pkg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), zarfPullTimeout)
	defer cancel()
	src, _, err := opts.Zarf.FetchZarf(ctx, pkg)
	return src, err
}

func zarfVersion(src *zarf.Source) string {
	if v := src.Package.Metadata.Version; v != "" {
		return v
	}
	return "0.0.0"
}

// zarfName is how errors name a package: an archive by file name, a
// published package by its reference.
func zarfName(pkg string) string {
	if strings.HasPrefix(pkg, "oci://") {
		return pkg
	}
	return filepath.Base(pkg)
}

func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := map[string]string{}
	for k, x := range m {
		out[k] = fmt.Sprint(x)
	}
	return out
}
