// Package build makes the Strata manager's container image from the source
// tree, with go-containerregistry: no container engine needed.
package build

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// User runs the manager: not root, as the Helm chart requires.
const User = "65532:65532"

// Binary is where strata lives in the image.
const Binary = "/usr/local/bin/strata"

// caBundle is the build machine's CA bundle, for charts and registries
// reached over TLS.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// Options say what to build.
type Options struct {
	// Root is the Strata source tree.
	Root string
	// Version is stamped into the binary.
	Version string
	// Arch is the image's CPU architecture; this machine's when empty.
	Arch string
}

// Image builds strata for linux and lays it, Strata's packs and the CA
// bundle on an empty base.
func Image(opts Options) (v1.Image, error) {
	if opts.Arch == "" {
		opts.Arch = runtime.GOARCH
	}
	tmp, err := os.MkdirTemp("", "strata-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "strata")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X strata.dev/strata/internal/version.Version="+opts.Version, "-o", bin, "./cmd/strata")
	cmd.Dir = opts.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+opts.Arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// Fixed times: the same tree gives the same layer.
	epoch := time.Unix(0, 0)
	dir := func(path string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: path + "/", Mode: 0o755, ModTime: epoch})
	}
	file := func(path string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: mode, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"usr", "usr/local", "usr/local/bin", "etc", "etc/ssl", "etc/ssl/certs", "tmp", "packs"} {
		if err := dir(d); err != nil {
			return nil, err
		}
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	if err := file(Binary[1:], 0o755, data); err != nil {
		return nil, err
	}
	if err := file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nstrata:x:65532:65532:strata:/tmp:/sbin/nologin\n")); err != nil {
		return nil, err
	}
	if ca, err := os.ReadFile(caBundle); err == nil {
		if err := file(caBundle[1:], 0o644, ca); err != nil {
			return nil, err
		}
	}
	packs := filepath.Join(opts.Root, "packs")
	err = filepath.WalkDir(packs, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == packs {
			return err
		}
		rel, err := filepath.Rel(opts.Root, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return dir(filepath.ToSlash(rel))
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return file(filepath.ToSlash(rel), 0o644, data)
	})
	if err != nil {
		return nil, fmt.Errorf("packs: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerData := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerData)), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", opts.Arch
	cf.Config.Entrypoint = []string{Binary}
	cf.Config.Cmd = []string{"manager", "--packs=/packs"}
	cf.Config.User = User
	cf.Config.WorkingDir = "/tmp"
	cf.Config.Env = []string{"SSL_CERT_FILE=" + caBundle, "HOME=/tmp"}
	cf.Config.Labels = map[string]string{"org.opencontainers.image.title": "strata", "org.opencontainers.image.version": opts.Version}
	return mutate.ConfigFile(img, cf)
}

// WriteTarball writes the image as a tarball named tag.
func WriteTarball(img v1.Image, tag, path string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, ref, img)
}

// Push pushes the image to ref.
func Push(img v1.Image, ref string, plainHTTP bool) error {
	var opts []name.Option
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return err
	}
	return remote.Write(r, img)
}
