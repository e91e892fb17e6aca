package profile

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"

	"github.com/Masterminds/semver/v3"

	v1 "strata.dev/strata/api/v1alpha1"
)

// CheckVariableValue tests a value against a variable's format, regex and
// options. Masked values are never repeated in the message.
func CheckVariableValue(v v1.Variable, value string) error {
	shown := strconv.Quote(value)
	if v.Masked {
		shown = "the masked value"
	}
	if value == "" {
		if v.Required {
			return fmt.Errorf("required: want a value")
		}
		return nil
	}
	if err := checkFormat(v.Format, value); err != nil {
		return fmt.Errorf("%s: %w", shown, err)
	}
	if v.Regex != "" {
		re, err := regexp.Compile("^(?:" + v.Regex + ")$")
		if err != nil {
			return fmt.Errorf("regex %q does not compile: %w", v.Regex, err)
		}
		if !re.MatchString(value) {
			return fmt.Errorf("%s does not match regex %q", shown, v.Regex)
		}
	}
	if v.Input == v1.InputDropdown {
		var values []string
		for _, o := range v.Options {
			values = append(values, o.Value)
		}
		if !slices.Contains(values, value) {
			return fmt.Errorf("%s is not one of the options %q", shown, values)
		}
	}
	return nil
}

func checkFormat(f v1.VariableFormat, value string) error {
	switch f {
	case "", v1.FormatString:
		return nil
	case v1.FormatNumber:
		if _, err := strconv.ParseFloat(value, 64); err != nil {
			return fmt.Errorf("want a number")
		}
	case v1.FormatBoolean:
		if value != "true" && value != "false" {
			return fmt.Errorf("want true or false")
		}
	case v1.FormatVersion:
		if _, err := semver.NewVersion(value); err != nil {
			return fmt.Errorf("want a version such as 1.2.3")
		}
	case v1.FormatIPv4:
		if ip := net.ParseIP(value); ip == nil || ip.To4() == nil {
			return fmt.Errorf("want an IPv4 address such as 10.0.0.1")
		}
	case v1.FormatIPv4CIDR:
		ip, _, err := net.ParseCIDR(value)
		if err != nil || ip.To4() == nil {
			return fmt.Errorf("want an IPv4 CIDR such as 10.0.0.0/16")
		}
	case v1.FormatIPv6:
		if ip := net.ParseIP(value); ip == nil || ip.To4() != nil {
			return fmt.Errorf("want an IPv6 address such as fd00::1")
		}
	default:
		return fmt.Errorf("unknown format %q: want string, number, boolean, version, ipv4, ipv4cidr or ipv6", f)
	}
	return nil
}
