package zarf

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	chartv2 "helm.sh/helm/v4/pkg/chart/v2"

	v1 "strata.dev/strata/api/v1alpha1"
)

const testdata = "../../../shared/testdata/zarf"

func renderNames(ch *chartv2.Chart, _ map[string]any, name, ns string) (string, error) {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "-" + ch.Metadata.Name + "\n", nil
}

func TestBuiltPackagesLoadVerifiedAndBuild(t *testing.T) {
	for _, p := range []string{
		"packages/compressed/zarf-package-test-amd64-0.0.1.tar.zst",
		"packages/uncompressed/zarf-package-test-uncompressed-amd64-0.0.1.tar",
	} {
		src, err := Load(filepath.Join(testdata, p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		res, err := Build(src, BuildOptions{RenderChart: renderNames})
		if err != nil || res.Err() != nil {
			t.Fatalf("%s: %v %v", p, err, res.Err())
		}
		if len(res.Documents) != 1 || !strings.Contains(res.Documents[0].YAML, "namespace: nginx") || !strings.Contains(res.Documents[0].YAML, "name: nginx-deployment") {
			t.Errorf("%s: documents %+v", p, res.Documents)
		}
		if strings.Join(res.Images, ",") != "docker.io/library/alpine:3.20" {
			t.Errorf("%s: images %v", p, res.Images)
		}
	}
}

func TestTamperedArchiveIsRefused(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testdata, "packages/uncompressed/zarf-package-test-uncompressed-amd64-0.0.1.tar"))
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite the archive with one byte of the component changed.
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if h.Name == "components/test.tar" {
			body[len(body)/2] ^= 0xff
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "zarf-package-tampered.tar")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if err == nil || !strings.Contains(err.Error(), "components/test.tar has sha256") {
		t.Fatalf("error = %v, want a checksum mismatch naming components/test.tar", err)
	}
}

func TestDefinitionVariablesConstantsAndSelection(t *testing.T) {
	src, err := Load(filepath.Join(testdata, "examples/variables"))
	if err != nil {
		t.Fatal(err)
	}
	// The constant is a package template that `zarf package create` fills.
	if _, err := Build(src, BuildOptions{RenderChart: renderNames}); err == nil || !strings.Contains(err.Error(), "variable SITE_NAME has no value: set it in the layer's values as variables.SITE_NAME") {
		t.Fatalf("error = %v, want the missing SITE_NAME named", err)
	}
	if _, err := Build(src, BuildOptions{RenderChart: renderNames, Variables: map[string]string{"SITE_NAME": "x"}}); err == nil || !strings.Contains(err.Error(), "constant NGINX_VERSION is ###ZARF_PKG_TMPL_NGINX_VERSION###") {
		t.Fatalf("error = %v, want the package template named", err)
	}
	opts := BuildOptions{
		RenderChart: renderNames,
		Constants:   map[string]string{"NGINX_VERSION": "1.27.1"},
		Variables:   map[string]string{"SITE_NAME": "Lula Website", "SECRET": "hush-123"},
	}
	res, err := Build(src, opts)
	if err != nil || res.Err() != nil {
		t.Fatalf("%v %v", err, res.Err())
	}
	all := ""
	for _, d := range res.Documents {
		all += d.YAML
	}
	for _, want := range []string{"image: nginx:1.27.1", "Welcome to Lula Website!", "Brought to you by Defense Unicorns.", "extra-key: extra-value"} {
		if !strings.Contains(all, want) {
			t.Errorf("rendered manifests lack %q", want)
		}
	}
	// autoIndent: the multi-line STYLE keeps its indentation in the HTML.
	if !strings.Contains(all, "body { font-family: sans-serif; color: white; background: #0a0e2e; }\n          pre { color: white; background: black; }") {
		t.Errorf("STYLE not indented under its placeholder:\n%s", all)
	}

	opts.Variables = map[string]string{"SITE_NAME": "bad/name!"}
	if _, err := Build(src, opts); err == nil || !strings.Contains(err.Error(), `variable SITE_NAME: "bad/name!" does not match pattern`) {
		t.Errorf("pattern: %v", err)
	}
	opts.Variables = map[string]string{"NOPE": "x"}
	if _, err := Build(src, opts); err == nil || !strings.Contains(err.Error(), `defines no variable "NOPE"`) {
		t.Errorf("unknown variable: %v", err)
	}
	opts.Variables, opts.Components = nil, []string{"ghost"}
	if _, err := Build(src, opts); err == nil || !strings.Contains(err.Error(), `has no component "ghost"`) {
		t.Errorf("unknown component: %v", err)
	}
}

func TestRemoteChartsFailAloneAndLocalOnesBuild(t *testing.T) {
	src, err := Load(filepath.Join(testdata, "examples/helm-charts"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Build(src, BuildOptions{
		RenderChart: renderNames,
		FetchChart: func(c *v1.ChartSource) (*chartv2.Chart, error) {
			return nil, errors.New("cannot reach " + c.Repository)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// All four charts are in one component: the remote ones make it fail.
	msg := res.Err()
	if msg == nil || !strings.Contains(msg.Error(), "component demo-helm-charts: chart podinfo-oci: cannot reach oci://ghcr.io/stefanprodan/charts/podinfo") {
		t.Errorf("error = %v", msg)
	}
}
