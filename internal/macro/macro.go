// Package macro expands Palette's macros in layer values:
// {{.spectro.var.NAME}} (profile variables), {{.spectro.system.PATH}}
// (facts about the cluster) and {{.spectro.pack.PACK.PATH}} (a value of
// another layer), with the template functions Helm users know (sprig).
// Template actions that do not mention .spectro are left for Helm.
package macro

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

// Kind of macro reference.
type Kind string

// Kinds.
const (
	Var    Kind = "var"
	System Kind = "system"
	Pack   Kind = "pack"
)

// Ref is one macro reference found in a text.
type Ref struct {
	Kind Kind
	// Name is the variable, the system path or the pack name.
	Name string
	// Path is the value path inside a pack (Pack refs only).
	Path string
}

func (r Ref) String() string {
	if r.Kind == Pack {
		return "{{.spectro.pack." + r.Name + "." + r.Path + "}}"
	}
	return "{{.spectro." + string(r.Kind) + "." + r.Name + "}}"
}

var (
	action = regexp.MustCompile(`\{\{-?(.*?)-?\}\}`)
	// Pack names and paths may hold hyphens, which template field syntax
	// does not allow, so references become function calls before parsing.
	packRef   = regexp.MustCompile(`\.spectro\.pack\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_.-]+)`)
	varRef    = regexp.MustCompile(`\.spectro\.var\.([A-Za-z0-9_]+)`)
	systemRef = regexp.MustCompile(`\.spectro\.system\.([A-Za-z0-9_.]+)`)
)

// Find lists the macro references of a text, in order of appearance.
func Find(text string) []Ref {
	var refs []Ref
	for _, m := range action.FindAllStringSubmatch(withoutComments(text), -1) {
		body := m[1]
		if !strings.Contains(body, ".spectro.") {
			continue
		}
		for _, p := range packRef.FindAllStringSubmatch(body, -1) {
			refs = append(refs, Ref{Kind: Pack, Name: p[1], Path: p[2]})
		}
		for _, v := range varRef.FindAllStringSubmatch(body, -1) {
			refs = append(refs, Ref{Kind: Var, Name: v[1]})
		}
		for _, s := range systemRef.FindAllStringSubmatch(body, -1) {
			refs = append(refs, Ref{Kind: System, Name: s[1]})
		}
	}
	return refs
}

// withoutComments drops YAML comment lines, where macros are only prose.
func withoutComments(text string) string {
	lines := strings.Split(text, "\n")
	kept := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "\n")
}

// Env supplies the values macros refer to.
type Env struct {
	// Vars are the profile's variables by name.
	Vars map[string]string
	// System maps dotted paths ("cluster.name") to values.
	System map[string]string
	// PackValue returns the value at path of the layer using pack name.
	PackValue func(pack, path string) (any, error)
}

// Expand replaces every .spectro action of text with its value. YAML
// comment lines are left alone: a macro mentioned in a comment is prose.
func Expand(text string, env Env) (string, error) {
	if !strings.Contains(text, ".spectro.") {
		return text, nil
	}
	var firstErr error
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "#") || !strings.Contains(line, ".spectro.") {
			continue
		}
		lines[i] = action.ReplaceAllStringFunc(line, func(a string) string {
			if firstErr != nil || !strings.Contains(a, ".spectro.") {
				return a
			}
			v, err := expandAction(a, env)
			if err != nil {
				firstErr = err
				return a
			}
			return v
		})
	}
	return strings.Join(lines, "\n"), firstErr
}

// templates caches parsed actions: the same macro appears in many layers and
// clusters, and parsing (with sprig's large function map) dominates.
var templates sync.Map // action text -> *template.Template

// funcs are sprig's functions plus Strata's lookups. The lookups receive the
// Env as their first argument ($, the template data), so one parsed template
// serves every cluster.
var funcs = sync.OnceValue(func() template.FuncMap {
	fm := sprig.TxtFuncMap()
	bounded(fm)
	fm["strataVar"] = func(env Env, name string) (string, error) {
		v, ok := env.Vars[name]
		if !ok {
			return "", fmt.Errorf("no variable %q is defined", name)
		}
		return v, nil
	}
	fm["strataSystem"] = func(env Env, path string) (string, error) {
		v, ok := env.System[path]
		if !ok {
			return "", fmt.Errorf("unknown system macro .spectro.system.%s: want one of %s", path, systemList(env.System))
		}
		return v, nil
	}
	fm["strataPack"] = func(env Env, pack, path string) (string, error) {
		if env.PackValue == nil {
			return "", fmt.Errorf("pack references are not available here")
		}
		v, err := env.PackValue(pack, path)
		if err != nil {
			return "", err
		}
		return scalar(v)
	}
	return fm
})

// maxCount bounds what one sprig call may build: a profile is user input,
// and `repeat 999999999` or `until 999999999` must fail, not stall the
// resolver (and the manager with it).
const maxCount = 1 << 16

// bounded replaces sprig's functions that build something of a size the
// caller chooses with versions that refuse sizes past maxCount.
func bounded(fm template.FuncMap) {
	check := func(fn string, n int) error {
		if n > maxCount || n < -maxCount {
			return fmt.Errorf("%s %d: at most %d", fn, n, maxCount)
		}
		return nil
	}
	repeat := fm["repeat"].(func(int, string) string)
	fm["repeat"] = func(n int, s string) (string, error) {
		if err := check("repeat", n*max(1, len(s))); err != nil {
			return "", err
		}
		return repeat(n, s), nil
	}
	until := fm["until"].(func(int) []int)
	fm["until"] = func(n int) ([]int, error) {
		if err := check("until", n); err != nil {
			return nil, err
		}
		return until(n), nil
	}
	untilStep := fm["untilStep"].(func(int, int, int) []int)
	fm["untilStep"] = func(start, stop, step int) ([]int, error) {
		if step == 0 {
			return nil, nil
		}
		if err := check("untilStep", (stop-start)/step); err != nil {
			return nil, err
		}
		return untilStep(start, stop, step), nil
	}
	seq := fm["seq"].(func(...int) string)
	fm["seq"] = func(params ...int) (string, error) {
		for _, p := range params {
			if err := check("seq", p); err != nil {
				return "", err
			}
		}
		return seq(params...), nil
	}
	for _, name := range []string{"indent", "nindent"} {
		f := fm[name].(func(int, string) string)
		fm[name] = func(n int, s string) (string, error) {
			if err := check(name, n); err != nil {
				return "", err
			}
			return f(n, s), nil
		}
	}
	for _, name := range []string{"randAlphaNum", "randAlpha", "randNumeric", "randAscii"} {
		f := fm[name].(func(int) string)
		fm[name] = func(n int) (string, error) {
			if err := check(name, n); err != nil {
				return "", err
			}
			return f(n), nil
		}
	}
}

func expandAction(a string, env Env) (string, error) {
	tmpl, err := parseAction(a)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, env); err != nil {
		return "", fmt.Errorf("macro %s: %w", a, unwrapExecError(err))
	}
	return b.String(), nil
}

func parseAction(a string) (*template.Template, error) {
	if t, ok := templates.Load(a); ok {
		return t.(*template.Template), nil
	}
	body := packRef.ReplaceAllString(a, `(strataPack $$ "$1" "$2")`)
	body = varRef.ReplaceAllString(body, `(strataVar $$ "$1")`)
	body = systemRef.ReplaceAllString(body, `(strataSystem $$ "$1")`)
	tmpl, err := template.New("macro").Funcs(funcs()).Option("missingkey=error").Parse(body)
	if err != nil {
		return nil, fmt.Errorf("macro %s: %w", a, err)
	}
	templates.Store(a, tmpl)
	return tmpl, nil
}

// scalar renders a value for insertion into YAML text: scalars as written,
// mappings and lists as JSON (which YAML reads as flow style).
func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case nil:
		return "", nil
	default:
		b, err := json.Marshal(x)
		return string(b), err
	}
}

func systemList(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// unwrapExecError keeps the message of the function that failed and drops
// text/template's position prefix, which points into our rewritten action.
func unwrapExecError(err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": error calling "); i >= 0 {
		rest := msg[i+len(": error calling "):]
		if j := strings.Index(rest, ": "); j >= 0 {
			return fmt.Errorf("%s", rest[j+2:])
		}
	}
	return err
}
