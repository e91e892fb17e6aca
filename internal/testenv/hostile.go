package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// HostilePack writes a pack folder, evil 1.0.0, that is a valid pack
// (hello-universe's values and manifest from packCentral) whose logo.png
// is HTML and whose README carries script, an event handler, a
// javascript: link and a remote image. It returns the folder holding it.
func HostilePack(t testing.TB, packCentral string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "packs", "evil-1.0.0")
	if err := os.MkdirAll(filepath.Join(dir, "manifests"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(packCentral, "hello-universe-1.2.0")
	files := map[string]string{
		"pack.json": `{"name": "evil", "version": "1.0.0", "layer": "addon", "addonType": "app services", "cloudTypes": ["all"], "kubeManifests": ["manifests/hello-universe.yaml"]}`,
		"logo.png":  `<html><body><script>alert("logo")</script></body></html>`,
		"README.md": "# Evil\n\n<script>alert('readme')</script>\n\n<img src=x onerror=alert(1)>\n\n[docs](javascript:alert(2))\n\n![pixel](https://tracker.example/p.png)\n\nPlain *text* stays.\n",
	}
	for _, f := range []string{"values.yaml", "manifests/hello-universe.yaml"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = string(data)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Dir(dir)
}
