package pack

import (
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
}

type numberRange struct{ min, max float64 }

// formatToken finds ${type} and ${type:argument} in a format.
var formatToken = regexp.MustCompile(`\$\{([a-z0-9]+)(?::([^}]*))?\}`)

// parseSchema reads schema.yaml into constraints sorted by path.
func parseSchema(file string, data []byte, ps *Problems) []Constraint {
	var doc map[string]map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		ps.errorf(file, "", "invalid YAML: %v (want `<values.path>: {schema: '{{ ... }}'}` entries)", err)
		return nil
	}
	paths := make([]string, 0, len(doc))
	for p := range doc {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var out []Constraint
	for _, path := range paths {
		raw, ok := doc[path]["schema"].(string)
		if !ok {
			ps.errorf(file, path+".schema", "missing: want a template such as '{{ required | format \"${string}\" }}'")
			continue
		}
		c, err := ParseConstraint(path, raw)
		if err != nil {
			ps.errorf(file, path+".schema", "%v", err)
			continue
		}
		out = append(out, c)
	}
	return out
}

// ParseConstraint reads one schema template.
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
	for _, t := range terms {
		switch t.name {
		case "required":
			c.Required = true
		case "readonly":
			c.ReadOnly = true
		case "hints":
			c.Hints = t.arg
		case "format":
			c.Format = t.arg
			if err := c.compileFormat(); err != nil {
				return c, fmt.Errorf("format %q: %w", t.arg, err)
			}
		default:
			return c, fmt.Errorf("unknown function %q: want required, readonly, format or hints", t.name)
		}
		if (t.name == "format" || t.name == "hints") && !t.hasArg {
			return c, fmt.Errorf("%s needs a quoted argument", t.name)
		}
	}
	return c, nil
}

type pipelineTerm struct {
	name   string
	arg    string
	hasArg bool
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
		if strings.HasPrefix(s, `"`) {
			arg, rest, err := unquotePrefix(s)
			if err != nil {
				return nil, err
			}
			t.arg, t.hasArg, s = arg, true, strings.TrimSpace(rest)
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

// unquotePrefix reads a Go-quoted string at the start of s.
func unquotePrefix(s string) (value, rest string, err error) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			v, err := strconv.Unquote(s[:i+1])
			return v, s[i+1:], err
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

func (c *Constraint) tokenPattern(typ, arg string, group int) (string, error) {
	switch typ {
	case "string":
		if arg != "" {
			if _, err := regexp.Compile(arg); err != nil {
				return "", fmt.Errorf("${string:%s}: invalid regular expression: %w", arg, err)
			}
			return "(?:" + arg + ")", nil
		}
		return ".+?", nil
	case "password":
		if arg != "" {
			return "", fmt.Errorf("${password} takes no argument")
		}
		c.Secret = true
		return ".*?", nil
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
	case "boolean":
		return "true|false", nil
	case "ipv4":
		return `[0-9]{1,3}(?:\.[0-9]{1,3}){3}`, nil
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
		return "", fmt.Errorf("unknown type ${%s}: want string, number, boolean, password, ipv4, version or list:[...]", typ)
	}
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
