// Package packview turns what a pack ships for people — its logo.png and
// README.md — into what a browser may safely show. Both are untrusted
// input: a logo is served only when it decodes as a PNG or JPEG within
// bounds of bytes and pixels, and is then re-encoded as a PNG (so the bytes
// sent are ones Go wrote); a README is rendered from Markdown with goldmark
// and sanitised with bluemonday (no script, no event handler, no
// javascript: link, no image). A pack without a usable logo gets a drawn
// placeholder with its initials.
package packview

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"image"
	_ "image/jpeg" // logos may be JPEG; they are re-encoded as PNG
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"unicode"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// Bounds on what a pack's files may be.
const (
	// MaxLogoBytes bounds logo.png as read.
	MaxLogoBytes = 512 << 10
	// MaxLogoPixels bounds each side of a logo, checked from its header
	// before it is decoded (an image small in bytes may claim to be huge).
	MaxLogoPixels = 1024
	// MaxReadmeBytes bounds README.md as read.
	MaxReadmeBytes = 256 << 10
)

// Logo reads a pack folder's logo and returns it as PNG, or an error
// saying why it is not shown.
func Logo(dir string) ([]byte, error) {
	data, err := readBounded(filepath.Join(dir, "logo.png"), MaxLogoBytes)
	if err != nil {
		return nil, err
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("logo.png: not a PNG or JPEG image: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > MaxLogoPixels || cfg.Height > MaxLogoPixels {
		return nil, fmt.Errorf("logo.png: %d×%d pixels, at most %d×%d", cfg.Width, cfg.Height, MaxLogoPixels, MaxLogoPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("logo.png: %w", err)
	}
	var out bytes.Buffer
	if err := png.Encode(&out, img); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Placeholder draws a pack's initials as an SVG: the logo of a pack that
// has none (or one that is not shown). Only letters and digits of the
// name reach the drawing.
func Placeholder(name string) []byte {
	initials := Initials(name)
	hue := 0
	for _, r := range name {
		hue = (hue*31 + int(r)) % 360
	}
	return fmt.Appendf(nil, `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64" role="img" aria-label="%s">`+
		`<rect width="64" height="64" rx="10" fill="hsl(%d,45%%,42%%)"/>`+
		`<text x="32" y="41" font-family="sans-serif" font-size="24" font-weight="600" fill="#fff" text-anchor="middle">%s</text></svg>`,
		initials, hue, initials)
}

// Initials are the first letters of the first two words of a pack name
// ("hello-universe": "HU"), or its first two letters.
func Initials(name string) string {
	words := strings.FieldsFunc(name, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	var out []rune
	for _, w := range words {
		if len(out) == 2 {
			break
		}
		r := []rune(w)
		out = append(out, unicode.ToUpper(r[0]))
	}
	if len(out) == 1 && len(words) == 1 && len([]rune(words[0])) > 1 {
		out = append(out, unicode.ToUpper([]rune(words[0])[1]))
	}
	// ASCII letters and digits only: nothing here is markup.
	ascii := strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return -1
	}, string(out))
	if ascii == "" {
		return "?"
	}
	return ascii
}

var (
	markdown = goldmark.New(goldmark.WithExtensions(extension.GFM)) // raw HTML is escaped, never passed through
	policy   = readmePolicy()
)

// readmePolicy lets through the elements Markdown makes, links to web and
// mail addresses only, and no image: a README's remote image would tell
// another site who reads it, and the page's CSP would block it anyway.
func readmePolicy() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements("h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "ul", "ol", "li", "blockquote",
		"pre", "code", "em", "strong", "del", "table", "thead", "tbody", "tr", "th", "td", "a", "input")
	p.AllowAttrs("href").OnElements("a")
	p.AllowURLSchemes("http", "https", "mailto")
	p.RequireParseableURLs(true)
	p.RequireNoFollowOnLinks(true)
	p.RequireNoReferrerOnLinks(true)
	p.AllowAttrs("class").Matching(regexp.MustCompile(`^language-[A-Za-z0-9_+-]+$`)).OnElements("code")
	p.AllowAttrs("align").Matching(regexp.MustCompile(`^(left|right|center)$`)).OnElements("th", "td")
	// GFM task lists: a disabled checkbox.
	p.AllowAttrs("type").Matching(regexp.MustCompile(`^checkbox$`)).OnElements("input")
	p.AllowAttrs("checked", "disabled").OnElements("input")
	return p
}

// Readme renders Markdown to sanitised HTML.
func Readme(md []byte) (template.HTML, error) {
	var out bytes.Buffer
	if err := markdown.Convert(md, &out); err != nil {
		return "", err
	}
	//nolint:gosec // sanitised by bluemonday just above
	return template.HTML(policy.SanitizeBytes(out.Bytes())), nil
}

// ReadmeOf reads and renders a pack folder's README.md; "" when it has none.
func ReadmeOf(dir string) (template.HTML, error) {
	data, err := readBounded(filepath.Join(dir, "README.md"), MaxReadmeBytes)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return Readme(data)
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes", filepath.Base(path), limit)
	}
	return data, nil
}

// Memo keeps what was made from a pack version — its logo, its rendered
// README — so that it is made once, not per request. Keys name the content
// (a pack's archive digest, or its folder for packs read from folders).
type Memo[T any] struct {
	mu    sync.Mutex
	items map[string]T
	order []string
	max   int
}

// NewMemo keeps at most max items; the oldest go first.
func NewMemo[T any](max int) *Memo[T] {
	return &Memo[T]{items: map[string]T{}, max: max}
}

// Get returns the item for key, made with make when absent.
func (m *Memo[T]) Get(key string, make func() T) T {
	m.mu.Lock()
	if v, ok := m.items[key]; ok {
		m.mu.Unlock()
		return v
	}
	m.mu.Unlock()
	v := make()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.items[key]; !ok {
		m.items[key] = v
		m.order = append(m.order, key)
		if len(m.order) > m.max {
			delete(m.items, m.order[0])
			m.order = m.order[1:]
		}
	}
	return v
}
