package pack

import (
	"strings"
	"testing"
)

func TestConstraintCheck(t *testing.T) {
	cases := []struct {
		schema  string
		value   any
		present bool
		wantErr string // empty: valid
	}{
		{`{{ required | format "${number}" }}`, 3.0, true, ""},
		{`{{ required | format "${number}" }}`, "three", true, `"three" does not match format "${number}"`},
		{`{{ required | format "${number}" }}`, nil, false, "required value is empty"},
		{`{{ required }}`, "", true, "required value is empty"},
		{`{{ format "${number}" }}`, nil, false, ""},
		{`{{ format "${boolean}" }}`, true, true, ""},
		{`{{ format "${boolean}" }}`, "yes", true, "does not match"},
		{`{{ format "${ipv4}" }}`, "10.0.0.1", true, ""},
		{`{{ format "${ipv4}" }}`, "10.0.0.300", true, "not an IPv4 address"},
		{`{{ format "${version}" }}`, "1.29.3", true, ""},
		{`{{ format "${string}/${string}:${version}" }}`, "ghcr.io/spectrocloud/hello-universe:1.1.1", true, ""},
		{`{{ format "${string}/${string}:${version}" }}`, "hello-universe", true, "does not match"},
		{`{{ format "${list:[PreferNoSchedule,NoSchedule,NoExecute]}" }}`, "NoSchedule", true, ""},
		{`{{ format "${list:[PreferNoSchedule,NoSchedule,NoExecute]}" }}`, "Sometimes", true, "does not match"},
		{`{{ format "${number:[1-5]}" }}`, 5.0, true, ""},
		{`{{ format "${number:[1-5]}" }}`, 6.0, true, "out of range"},
		{`{{ format "${number:[-10,-1]}" }}`, -3.0, true, ""},
		{`{{ format "${string:^[a-z]+$}" }}`, "abc", true, ""},
		{`{{ format "${string:^[a-z]+$}" }}`, "ABC", true, "does not match"},
		{`{{ format "${password}" }}`, "hunter2", true, ""},
		{`{{ format "${string}" }}`, []any{"a"}, true, "want a single value"},
		// Palette's documented forms: /regex/ arguments, ${bool}, cidr.
		{`{{ format "${string:/^([a-z0-9].*)$/}" }}`, "abc", true, ""},
		{`{{ format "${string:/^([a-z0-9].*)$/}" }}`, "-abc", true, "does not match"},
		{`{{ format "${number:/^(500[0-5])$/}" }}`, 5003.0, true, ""},
		{`{{ format "${number:/^(500[0-5])$/}" }}`, 5006.0, true, "does not match"},
		{`{{ format "${string}, ${string:/size=\d+/}" }}`, "type-zeroedthick, size=150", true, ""},
		{`{{ format "${string}, ${string:/size=\d+/}" }}`, "type-zeroedthick, size=s", true, "does not match"},
		{`{{ format "${bool}" }}`, false, true, ""},
		{`{{ format "${ipv4cidr}" }}`, "10.0.0.0/16", true, ""},
		{`{{ hints "description A" "description B" }}`, "x", true, ""},
	}
	for _, tc := range cases {
		c, err := ParseConstraint("a.b", tc.schema)
		if err != nil {
			t.Fatalf("%s: %v", tc.schema, err)
		}
		err = c.Check(tc.value, tc.present)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s with %v: unexpected error %v", tc.schema, tc.value, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s with %v: error %v, want one containing %q", tc.schema, tc.value, err, tc.wantErr)
		}
	}
}

func TestPasswordValuesNeverAppearInErrors(t *testing.T) {
	for _, schema := range []string{`{{ format "pw-${password}" }}`, `{{ format "${password:/^[a-z]+$/}" }}`} {
		c, err := ParseConstraint("x", schema)
		if err != nil || !c.Secret {
			t.Fatalf("%s: %v, secret %v", schema, err, c.Secret)
		}
		err = c.Check("S3CR3T", true)
		if err == nil || strings.Contains(err.Error(), "S3CR3T") {
			t.Errorf("%s: error %v: want a mismatch that does not show the value", schema, err)
		}
	}
}

func TestParseConstraintRejectsMalformedTemplates(t *testing.T) {
	for _, s := range []string{
		`required`,
		`{{ required | }}`,
		`{{ format }}`,
		`{{ format "${string" }}`,
		`{{ hints "unterminated }}`,
		`{{ required format "${string}" }}`,
		`{{ format "${list:[]}" }}`,
		`{{ format "${number:[9-1]}" }}`,
	} {
		if c, err := ParseConstraint("x", s); err == nil {
			t.Errorf("%s: parsed as %+v, want an error", s, c)
		}
	}
}

func FuzzParseConstraint(f *testing.F) {
	for _, s := range []string{
		`{{ required | format "${string}/${string}:${version}" | hints "x" }}`,
		`{{ readonly }}`, `{{ format "${list:[A,B]}" }}`, `{{ format "${number:[1-10]}" }}`,
	} {
		f.Add(s, "value")
	}
	f.Fuzz(func(t *testing.T, schema, value string) {
		c, err := ParseConstraint("p", schema)
		if err != nil {
			return
		}
		_ = c.Check(value, true)
	})
}

// A rule with a part Strata does not know keeps the parts it does.
func TestUnknownFormatKeepsRequired(t *testing.T) {
	c, err := ParseConstraint("x", `{{ required | format "${input}" | hints "free text" }}`)
	if err == nil || !strings.Contains(err.Error(), "unknown type ${input}") {
		t.Fatalf("error %v: want one naming ${input}", err)
	}
	if !c.Required || c.Hints != "free text" {
		t.Errorf("constraint %+v: want required and its hints kept", c)
	}
	if err := c.Check("any text", true); err != nil {
		t.Errorf("a value under an unknown format: %v, want it accepted", err)
	}
	if err := c.Check("", true); err == nil {
		t.Errorf("an empty value: accepted, want required enforced")
	}
}
