package packview_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/internal/packview"
)

const packCentral = "../../../shared/testdata/pack-central"

// Real packs' logos are served, re-encoded as PNG of the same size.
func TestRealLogosAreServed(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(packCentral, "*", "logo.png"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no pack logos found: %v", err)
	}
	for _, path := range dirs {
		dir := filepath.Dir(path)
		out, err := packview.Logo(dir)
		if err != nil {
			// A real pack's logo too large is refused like any other: say
			// which, so a bound that is too tight shows.
			t.Logf("%s: %v", filepath.Base(dir), err)
			continue
		}
		orig, _, err1 := image.DecodeConfig(bytes.NewReader(must(os.ReadFile(path))))
		got, err2 := png.DecodeConfig(bytes.NewReader(out))
		if err1 != nil || err2 != nil || got.Width != orig.Width || got.Height != orig.Height {
			t.Errorf("%s: re-encoded %dx%d (%v), original %dx%d (%v)", dir, got.Width, got.Height, err2, orig.Width, orig.Height, err1)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A hostile pack's files are not served as they are: a logo that is HTML,
// a PNG whose header claims a huge size, a logo too big in bytes.
func TestHostileLogosAreRefused(t *testing.T) {
	dir := t.TempDir()
	write := func(data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "logo.png"), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write([]byte("<html><script>alert(1)</script></html>"))
	if _, err := packview.Logo(dir); err == nil || !strings.Contains(err.Error(), "not a PNG or JPEG") {
		t.Errorf("HTML as logo: %v", err)
	}
	var big bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 4000, 10))
	img.Set(0, 0, color.White)
	if err := png.Encode(&big, img); err != nil {
		t.Fatal(err)
	}
	write(big.Bytes())
	if _, err := packview.Logo(dir); err == nil || !strings.Contains(err.Error(), "4000×10 pixels") {
		t.Errorf("oversized PNG: %v", err)
	}
	write(bytes.Repeat([]byte{0}, packview.MaxLogoBytes+1))
	if _, err := packview.Logo(dir); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("logo too big: %v", err)
	}
	if _, err := packview.Logo(t.TempDir()); err == nil {
		t.Error("a pack without logo.png has a logo")
	}
}

// The placeholder shows the initials and nothing of the name that is not
// a letter or digit.
func TestPlaceholderInitials(t *testing.T) {
	for name, want := range map[string]string{"hello-universe": "HU", "spegel": "SP", "k8s": "K8", `a"><script>`: "AS", "-": "?"} {
		if got := packview.Initials(name); got != want {
			t.Errorf("Initials(%q) = %q, want %q", name, got, want)
		}
	}
	svg := string(packview.Placeholder(`x"><script>alert(1)</script>`))
	if strings.Contains(svg, "<script") || !strings.HasPrefix(svg, "<svg ") {
		t.Errorf("placeholder: %s", svg)
	}
}

// A README is rendered, and what could run or call out is gone: script,
// raw HTML with event handlers, javascript: links, images.
func TestHostileReadmeIsSanitised(t *testing.T) {
	md := "# Title\n\nSome **bold** text and a [link](https://example.com/docs).\n\n" +
		"<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n" +
		"[click](javascript:alert(3))\n\n![remote](https://tracker.example/pixel.png)\n\n" +
		"| a | b |\n|---|---|\n| 1 | 2 |\n\n```yaml\nkey: value\n```\n"
	html, err := packview.Readme([]byte(md))
	if err != nil {
		t.Fatal(err)
	}
	out := string(html)
	for _, want := range []string{"<h1>Title</h1>", "<strong>bold</strong>", `href="https://example.com/docs"`, "<table>", `class="language-yaml"`} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered README lacks %s:\n%s", want, out)
		}
	}
	for _, bad := range []string{"<script", "onerror", "javascript:", "<img", "tracker.example"} {
		if strings.Contains(out, bad) {
			t.Errorf("rendered README keeps %s:\n%s", bad, out)
		}
	}
}

// A memo makes each item once and forgets the oldest past its bound.
func TestMemo(t *testing.T) {
	m := packview.NewMemo[int](2)
	made := 0
	mk := func() int { made++; return made }
	m.Get("a", mk)
	m.Get("a", mk)
	m.Get("b", mk)
	m.Get("c", mk)
	if made != 3 {
		t.Errorf("made %d times, want 3", made)
	}
	if m.Get("a", mk) != 4 {
		t.Error("the oldest item was kept past the bound")
	}
}
