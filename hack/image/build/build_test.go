package build_test

import (
	"archive/tar"
	"io"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"strata.dev/strata/hack/image/build"
)

// The image pushed to a registry on loopback and read back runs strata as
// the non-root user the chart requires, with Strata's packs where the
// chart's default --packs looks; its tarball loads under the chart's tag.
func TestImageHasWhatTheChartExpects(t *testing.T) {
	t.Parallel()
	img, err := build.Image(build.Options{Root: "../../..", Version: "v0.0.0-test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/strata:v0.0.0-test"
	if err := build.Push(img, ref, true); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := pulled.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || !slices.Equal(cf.Config.Entrypoint, []string{build.Binary}) || cf.OS != "linux" {
		t.Errorf("config: user %q entrypoint %v os %s", cf.Config.User, cf.Config.Entrypoint, cf.OS)
	}
	layers, err := pulled.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %v %d", err, len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]int64{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h.Mode
	}
	if files["usr/local/bin/strata"] != 0o755 {
		t.Errorf("no executable strata in the image: %v", files)
	}
	for _, want := range []string{"packs/kubernetes-1.37.2/pack.json", "packs/ubuntu-24.04/pack.json", "etc/passwd"} {
		if _, ok := files[want]; !ok {
			t.Errorf("image lacks %s", want)
		}
	}

	path := filepath.Join(t.TempDir(), "strata.tar")
	if err := build.WriteTarball(img, "strata:v0.1.0-dev", path); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("strata:v0.1.0-dev")
	loaded, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if got, _ := loaded.Digest(); got != want {
		t.Errorf("tarball image %s, built %s", got, want)
	}
}
