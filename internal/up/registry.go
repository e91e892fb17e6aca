package up

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/ociserver"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/registry"
)

// ToolsDirEnv names the folder of the registry binary; otherwise tools/
// beside the strata executable (make tools puts it in bin/tools).
const ToolsDirEnv = "STRATA_TOOLS_BIN_DIR"

// LocalRegistryName is the PackRegistry of strata up's own registry.
const LocalRegistryName = "local"

// localRegistry is a CNCF Distribution registry on loopback, storing under
// the state folder, so one machine has the shape of production: packs come
// from a registry.
type localRegistry struct {
	Host string
	*ociserver.Server
}

func registryBinary() string {
	if dir := os.Getenv(ToolsDirEnv); dir != "" {
		return filepath.Join(dir, "registry")
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return filepath.Join(filepath.Dir(exe), "tools", "registry")
}

// startRegistry runs the registry on the port it had before when that port
// is free. It returns nil, with a note, when the binary is not built.
func startRegistry(dir string, out io.Writer) (*localRegistry, error) {
	bin := registryBinary()
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(out, "No local pack registry: %s is not built (make tools); packs come from the --packs folders only.\n", bin)
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	portFile := filepath.Join(dir, "port")
	port := 0
	if data, err := os.ReadFile(portFile); err == nil {
		port, _ = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	} else if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	} else {
		return nil, err
	}
	if err := os.WriteFile(portFile, []byte(strconv.Itoa(port)), 0o600); err != nil {
		return nil, err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	srv, err := ociserver.Start(ociserver.Options{Binary: bin, Dir: dir, Host: host})
	if err != nil {
		return nil, fmt.Errorf("local pack registry: %w", err)
	}
	return &localRegistry{Host: host, Server: srv}, nil
}

// Stop ends the registry process; its data stays.
func (r *localRegistry) Stop() {
	if r != nil {
		r.Server.Stop()
	}
}

// publish pushes the packs of the folders into the registry (the folders
// are the truth here: a tag is moved to their content) and registers the
// registry as the PackRegistry "local" of strata-system.
func (r *localRegistry) publish(ctx context.Context, c client.Client, folders []string) (string, error) {
	ep := registry.Endpoint{Host: r.Host, Base: LocalRegistryName}
	reg, err := registry.New(ep, registry.Options{PlainHTTP: true, Credentials: &registry.Credentials{}})
	if err != nil {
		return "", err
	}
	pushed := 0
	for _, folder := range folders {
		paths, err := pack.Discover(folder)
		if err != nil {
			return "", err
		}
		for _, path := range paths {
			p, problems := pack.Load(path)
			if problems.Err() != nil || p == nil || p.PlainChart {
				continue // a broken pack stays reported by its folder
			}
			res, err := reg.Push(ctx, p, true)
			if err != nil {
				return "", fmt.Errorf("push %s to the local registry: %w", p.ID(), err)
			}
			if !res.Unchanged {
				pushed++
			}
		}
	}
	// On loopback a sync is cheap: a pack pushed here is seen within seconds.
	want := v1.PackRegistrySpec{Endpoint: r.Host, BaseContentPath: LocalRegistryName, PlainHTTP: true, SyncInterval: &metav1.Duration{Duration: 10 * time.Second}}
	pr := &v1.PackRegistry{ObjectMeta: metav1.ObjectMeta{Name: LocalRegistryName, Namespace: controller.SharedNamespace}}
	err = c.Get(ctx, client.ObjectKeyFromObject(pr), pr)
	switch {
	case apierrors.IsNotFound(err):
		pr.Spec = want
		err = c.Create(ctx, pr)
	case err == nil && !reflect.DeepEqual(pr.Spec, want):
		pr.Spec = want
		err = c.Update(ctx, pr)
	}
	if err != nil {
		return "", fmt.Errorf("PackRegistry %s: %w", LocalRegistryName, err)
	}
	return fmt.Sprintf("  packs:      oci://%s/%s (PackRegistry %s/%s; %d packs pushed from the --packs folders)\n", r.Host, LocalRegistryName, controller.SharedNamespace, LocalRegistryName, pushed), nil
}
