package pack

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Constraint is one rule of schema.yaml on a value path, written as a
// template pipeline: {{ required | readonly | format "${number}" | hints "..." }}.
type Constraint struct {
	// Path is the dotted values path, e.g. "manifests.hello-universe.port".
	Path     string `json:"path"`
	Required bool   `json:"required,omitempty"`
	ReadOnly bool   `json:"readonly,omitempty"`
	// Format is the raw format, e.g. "${string}/${string}:${version}".
	Format string `json:"format,omitempty"`
	Hints  string `json:"hints,omitempty"`
	// Secret is true when the format holds ${password}: the value is masked.
	Secret bool `json:"secret,omitempty"`

	matcher *regexp.Regexp
	ranges  map[int]numberRange // capture group index -> allowed range
	// parsed is false when not even the template's shape was understood.
	parsed bool
}

type numberRange struct{ min, max float64 }

// formatToken finds ${type} and ${type:argument} in a format.
var formatToken = regexp.MustCompile(`\$\{([a-z0-9]+)(?::([^}]*))?\}`)

// parseSchema reads schema.yaml into constraints sorted by path. A rule
// Strata cannot read is a warning, not an error: Palette deploys such a pack,
// and the rule's other terms (required, readonly) still apply.
func parseSchema(file string, data []byte, ps *Problems) []Constraint {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		ps.warnf(file, "", "invalid YAML, so none of its rules are checked: %v (want `<values.path>: {schema: '{{ ... }}'}` entries)", err)
		return nil
	}
	paths := make([]string, 0, len(doc))
	for p := range doc {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var out []Constraint
	for _, path := range paths {
		entry, _ := doc[path].(map[string]any)
		raw, ok := entry["schema"].(string)
		if !ok {
			ps.warnf(file, path+".schema", "missing, so the value is not checked: want a template such as '{{ required | format \"${string}\" }}'")
			continue
		}
		c, err := ParseConstraint(path, raw)
		if err != nil {
			ps.warnf(file, path+".schema", "%v%s", err, c.keptTerms())
		}
		if c.parsed {
			out = append(out, c)
		}
	}
	return out
}

// keptTerms says which terms of a partly understood rule still apply.
func (c Constraint) keptTerms() string {
	var kept []string
	if c.Required {
		kept = append(kept, "required")
	}
	if c.ReadOnly {
		kept = append(kept, "readonly")
	}
	if c.matcher != nil {
		kept = append(kept, "format")
	}
	if len(kept) == 0 {
		return "; the value is not checked"
	}
	return "; only " + strings.Join(kept, " and ") + " is checked"
}

// ParseConstraint reads one schema template. It returns what it understood
// even with an error, so that a rule with one unknown part keeps the rest.
func ParseConstraint(path, template string) (Constraint, error) {
	c := Constraint{Path: path}
	body := strings.TrimSpace(template)
	if !strings.HasPrefix(body, "{{") || !strings.HasSuffix(body, "}}") {
		return c, fmt.Errorf("%q: want a template enclosed in {{ }}", template)
	}
	terms, err := splitPipeline(strings.TrimSpace(body[2 : len(body)-2]))
	if err != nil {
		return c, fmt.Errorf("%q: %w", template, err)
	}
	c.parsed = true
	var problems []string
	for _, t := range terms {
		switch t.name {
		case "required":
			c.Required = true
		case "readonly":
			c.ReadOnly = true
		case "hints":
			if len(t.args) == 0 {
				problems = append(problems, "hints needs a quoted argument")
			}
			c.Hints = strings.Join(t.args, "; ")
		case "format":
			if len(t.args) != 1 {
				problems = append(problems, "format needs one quoted argument")
				continue
			}
			c.Format = t.args[0]
			// A password stays masked even when the rest of its format is
			// not understood.
			c.Secret = strings.Contains(c.Format, "${password")
			if err := c.compileFormat(); err != nil {
				c.matcher, c.ranges = nil, nil
				problems = append(problems, fmt.Sprintf("format %q: %v", c.Format, err))
			}
		default:
			problems = append(problems, fmt.Sprintf("unknown function %q: want required, readonly, format or hints", t.name))
		}
	}
	if len(problems) > 0 {
		return c, errors.New(strings.Join(problems, "; "))
	}
	return c, nil
}

type pipelineTerm struct {
	name string
	args []string
}

// splitPipeline splits `a | b "x|y" | c` into terms, honouring quotes.
func splitPipeline(s string) ([]pipelineTerm, error) {
	var terms []pipelineTerm
	for len(strings.TrimSpace(s)) > 0 {
		s = strings.TrimSpace(s)
		end := strings.IndexAny(s, " \t|\"")
		if end < 0 {
			end = len(s)
		}
		t := pipelineTerm{name: s[:end]}
		if t.name == "" {
			return nil, fmt.Errorf("empty term in pipeline")
		}
		s = strings.TrimSpace(s[end:])
		for strings.HasPrefix(s, `"`) {
			arg, rest, err := unquotePrefix(s)
			if err != nil {
				return nil, err
			}
			t.args = append(t.args, arg)
			s = strings.TrimSpace(rest)
		}
		terms = append(terms, t)
		if s == "" {
			break
		}
		if !strings.HasPrefix(s, "|") {
			return nil, fmt.Errorf("unexpected %q after %s: want | between functions", s, t.name)
		}
		s = s[1:]
		if strings.TrimSpace(s) == "" {
			return nil, fmt.Errorf("nothing after the last |")
		}
	}
	return terms, nil
}

// unquotePrefix reads a quoted string at the start of s. Palette's own
// documentation writes regular expressions such as "size=\d+" inside the
// quotes, which are not valid Go escapes: such a string is taken as written,
// with only \" and \\ unescaped.
func unquotePrefix(s string) (value, rest string, err error) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			if v, err := strconv.Unquote(s[:i+1]); err == nil {
				return v, s[i+1:], nil
			}
			raw := strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(s[1:i])
			return raw, s[i+1:], nil
		}
	}
	return "", "", fmt.Errorf("unterminated string %s", s)
}

// compileFormat turns a format into an anchored regular expression with one
// group per ${...} token.
func (c *Constraint) compileFormat() error {
	var re strings.Builder
	re.WriteString("^")
	last := 0
	group := 0
	for _, m := range formatToken.FindAllStringSubmatchIndex(c.Format, -1) {
		re.WriteString(regexp.QuoteMeta(c.Format[last:m[0]]))
		last = m[1]
		typ := c.Format[m[2]:m[3]]
		arg := ""
		if m[4] >= 0 {
			arg = c.Format[m[4]:m[5]]
		}
		group++
		pattern, err := c.tokenPattern(typ, arg, group)
		if err != nil {
			return err
		}
		re.WriteString("(" + pattern + ")")
	}
	re.WriteString(regexp.QuoteMeta(c.Format[last:]))
	re.WriteString("$")
	if group == 0 {
		return fmt.Errorf("no ${type} in it: want e.g. ${string}, ${number}, ${list:[A,B]}")
	}
	var err error
	c.matcher, err = regexp.Compile(re.String())
	return err
}

// tokenPattern is the expression of one ${type} or ${type:argument}. The
// argument is a /regular expression/ (Palette's documented form; a bare
// expression is read the same), a [number range] or a [list of choices].
func (c *Constraint) tokenPattern(typ, arg string, group int) (string, error) {
	if re, ok := slashed(arg); ok && typ != "list" {
		if _, err := regexp.Compile(re); err != nil {
			return "", fmt.Errorf("${%s:%s}: invalid regular expression: %w", typ, arg, err)
		}
		if typ == "password" {
			c.Secret = true
		}
		return "(?:" + unanchored(re) + ")", nil
	}
	switch typ {
	case "string", "password":
		c.Secret = c.Secret || typ == "password"
		if arg != "" {
			if _, err := regexp.Compile(arg); err != nil {
				return "", fmt.Errorf("${%s:%s}: invalid regular expression: %w", typ, arg, err)
			}
			return "(?:" + unanchored(arg) + ")", nil
		}
		if typ == "password" {
			return ".*?", nil
		}
		return ".+?", nil
	case "number":
		if arg != "" {
			r, err := parseRange(arg)
			if err != nil {
				return "", fmt.Errorf("${number:%s}: %w", arg, err)
			}
			if c.ranges == nil {
				c.ranges = map[int]numberRange{}
			}
			c.ranges[group] = r
		}
		return `-?[0-9]+(?:\.[0-9]+)?`, nil
	case "boolean", "bool":
		return "true|false", nil
	case "ipv4":
		return `[0-9]{1,3}(?:\.[0-9]{1,3}){3}`, nil
	case "ipv4cidr":
		return `[0-9]{1,3}(?:\.[0-9]{1,3}){3}/[0-9]{1,2}`, nil
	case "ipv6":
		return `[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*`, nil
	case "version":
		return `v?[0-9]+(?:\.[0-9]+){0,2}(?:[-+][0-9A-Za-z.-]+)?`, nil
	case "list":
		items := strings.Split(strings.Trim(arg, "[]"), ",")
		quoted := make([]string, 0, len(items))
		for _, it := range items {
			if it = strings.TrimSpace(it); it != "" {
				quoted = append(quoted, regexp.QuoteMeta(it))
			}
		}
		if len(quoted) == 0 {
			return "", fmt.Errorf("${list:%s}: want at least one choice, e.g. ${list:[A,B]}", arg)
		}
		return strings.Join(quoted, "|"), nil
	default:
		return "", fmt.Errorf("unknown type ${%s}: want string, number, boolean, password, ipv4, ipv4cidr, ipv6, version or list:[...]", typ)
	}
}

// slashed returns the expression of an argument written /like this/.
func slashed(arg string) (string, bool) {
	if len(arg) >= 2 && strings.HasPrefix(arg, "/") && strings.HasSuffix(arg, "/") {
		return arg[1 : len(arg)-1], true
	}
	return "", false
}

// unanchored drops ^ and $ around an expression that is embedded in a
// format's own anchored expression.
func unanchored(re string) string {
	re = strings.TrimPrefix(re, "^")
	if strings.HasSuffix(re, "$") && !strings.HasSuffix(re, `\$`) {
		re = re[:len(re)-1]
	}
	return re
}

// parseRange reads "[1-10]" or "[1,10]"; either bound may be empty.
func parseRange(arg string) (numberRange, error) {
	inner := strings.TrimSpace(strings.Trim(strings.TrimSpace(arg), "[]"))
	if inner == "" {
		return numberRange{}, fmt.Errorf("want a range such as [1-10] or [1,10]")
	}
	sep := strings.LastIndexAny(inner, ",")
	if sep < 0 {
		// "a-b": the separator is the dash that is not a leading sign.
		sep = strings.Index(inner[1:], "-") + 1
		if sep == 0 {
			return numberRange{}, fmt.Errorf("want a range such as [1-10] or [1,10]")
		}
	}
	r := numberRange{min: -1e308, max: 1e308}
	lo, hi := strings.TrimSpace(inner[:sep]), strings.TrimSpace(inner[sep+1:])
	var err error
	if lo != "" {
		if r.min, err = strconv.ParseFloat(lo, 64); err != nil {
			return r, fmt.Errorf("lower bound %q is not a number", lo)
		}
	}
	if hi != "" {
		if r.max, err = strconv.ParseFloat(hi, 64); err != nil {
			return r, fmt.Errorf("upper bound %q is not a number", hi)
		}
	}
	if r.min > r.max {
		return r, fmt.Errorf("lower bound above upper bound")
	}
	return r, nil
}

// Check tests a value found (or not) at the constraint's path. It never
// repeats a secret value in its message.
func (c Constraint) Check(value any, present bool) error {
	if !present || value == nil || value == "" {
		if c.Required {
			return fmt.Errorf("required value is empty")
		}
		return nil
	}
	if c.matcher == nil {
		return nil
	}
	s, ok := scalarString(value)
	if !ok {
		return fmt.Errorf("want a single value matching %q, got %s", c.Format, typeName(value))
	}
	m := c.matcher.FindStringSubmatch(s)
	shown := strconv.Quote(s)
	if c.Secret {
		shown = "a masked value"
	}
	if m == nil {
		return fmt.Errorf("%s does not match format %q", shown, c.Format)
	}
	for g, r := range c.ranges {
		n, _ := strconv.ParseFloat(m[g], 64)
		if n < r.min || n > r.max {
			return fmt.Errorf("%s is out of range in format %q", shown, c.Format)
		}
	}
	if strings.Contains(c.Format, "${ipv4}") {
		for _, part := range m[1:] {
			if strings.Count(part, ".") == 3 && net.ParseIP(part) == nil {
				return fmt.Errorf("%s: %q is not an IPv4 address", shown, part)
			}
		}
	}
	return nil
}

// scalarString renders a YAML scalar as it was written.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	default:
		return "", false
	}
}
