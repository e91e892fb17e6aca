package pack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// LayerKind is where a pack sits in a cluster's stack.
type LayerKind string

// Layer kinds, in stack order.
const (
	LayerOS     LayerKind = "os"
	LayerK8s    LayerKind = "k8s"
	LayerCNI    LayerKind = "cni"
	LayerCSI    LayerKind = "csi"
	LayerAddon  LayerKind = "addon"
	LayerKernel LayerKind = "kernel"
)

// LayerKinds lists the kinds a pack may declare.
var LayerKinds = []LayerKind{LayerOS, LayerK8s, LayerCNI, LayerCSI, LayerAddon, LayerKernel}

// Metadata is pack.json.
type Metadata struct {
	Name          string            `json:"name"`
	DisplayName   string            `json:"displayName,omitempty"`
	Version       string            `json:"version"`
	Layer         LayerKind         `json:"layer"`
	AddonType     string            `json:"addonType,omitempty"`
	CloudTypes    []string          `json:"cloudTypes,omitempty"`
	Charts        []string          `json:"charts,omitempty"`
	KubeManifests []string          `json:"kubeManifests,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
	Constraints   *Constraints      `json:"constraints,omitempty"`
}

// Constraints are the rules a pack sets on the stack around it.
type Constraints struct {
	Dependencies []Dependency `json:"dependencies,omitempty"`
	Resources    []Resource   `json:"resources,omitempty"`
}

// ResourceType is what a resource constraint measures.
type ResourceType string

// Resource types, with the unit of their minLimit in Palette's format.
const (
	ResourceCPU      ResourceType = "cpu"      // millicores
	ResourceMemory   ResourceType = "memory"   // MiB
	ResourceDiskSize ResourceType = "diskSize" // GB per node
)

// Resource is a minimum the nodes of a cluster must offer for the pack.
type Resource struct {
	Type ResourceType `json:"type"`
	// MinLimit is in millicores (cpu), MiB (memory) or GB (diskSize).
	MinLimit float64 `json:"minLimit,omitempty"`
	// Components, when given, replace MinLimit: each names the values
	// holding a request and a replica count.
	Components []ResourceComponent `json:"components,omitempty"`
}

// ResourceComponent is one workload of the pack whose requests count
// toward a resource constraint.
type ResourceComponent struct {
	// ScheduleType is where its pods run: all, control-plane (older packs:
	// master) or worker.
	ScheduleType            string `json:"scheduleType"`
	ResourceRequestParamRef string `json:"resourceRequestParamRef,omitempty"`
	ReplicaCountParamRef    string `json:"replicaCountParamRef,omitempty"`
}

// DependencyType says how a dependency binds.
type DependencyType string

// Dependency types as Palette defines them: required must be present within
// the version range; optional must be within the range when present;
// notSupported must not be present within the range; upgrade binds the
// two packs' upgrades: when present, the other pack must be within the
// range, so a profile that moves this pack to a new version must move the
// other pack along with it (Strata says which version to take).
const (
	DependencyRequired     DependencyType = "required"
	DependencyOptional     DependencyType = "optional"
	DependencyNotSupported DependencyType = "notSupported"
	DependencyUpgrade      DependencyType = "upgrade"
)

// Dependency is one pack constraint on another pack of the stack.
type Dependency struct {
	PackName   string         `json:"packName"`
	Layer      LayerKind      `json:"layer,omitempty"`
	MinVersion string         `json:"minVersion,omitempty"`
	MaxVersion string         `json:"maxVersion,omitempty"`
	Type       DependencyType `json:"type"`
}

// parseMetadata reads pack.json. It refuses only what Palette's own pack
// schema refuses or what leaves the pack unusable; anything else that looks
// off is a warning.
func parseMetadata(file string, data []byte, ps *Problems) (Metadata, bool) {
	var m Metadata
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a byte-order mark some editors write
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		ps.errorf(file, jsonErrorField(err), "invalid JSON: %s", jsonErrorMessage(data, err))
		return m, false
	}
	if m.Name == "" {
		ps.errorf(file, "name", "missing: want the pack name, e.g. \"hello-universe\"")
	}
	if m.DisplayName == "" {
		ps.warnf(file, "displayName", "missing: want the name people see, e.g. \"Hello Universe\"")
	}
	if m.Version == "" {
		ps.errorf(file, "version", "missing: want a version, e.g. \"1.2.0\"")
	} else if _, err := semver.NewVersion(m.Version); err != nil {
		ps.warnf(file, "version", "%q is not a semantic version: other packs' version ranges cannot compare it", m.Version)
	}
	if m.Layer == "" {
		ps.errorf(file, "layer", "missing: want one of %s", kindList())
	} else if !slices.Contains(LayerKinds, m.Layer) {
		ps.errorf(file, "layer", "unknown layer %q: want one of %s", m.Layer, kindList())
	}
	if m.Constraints != nil {
		checkDependencies(file, m.Constraints.Dependencies, ps)
		checkResources(file, m.Constraints.Resources, ps)
	}
	return m, true
}

func checkDependencies(file string, deps []Dependency, ps *Problems) {
	for i, d := range deps {
		field := fmt.Sprintf("constraints.dependencies[%d]", i)
		if d.PackName == "" {
			ps.errorf(file, field+".packName", "missing: want the name of the pack depended on")
		}
		switch d.Type {
		case DependencyRequired, DependencyOptional, DependencyNotSupported, DependencyUpgrade:
		default:
			ps.errorf(file, field+".type", "unknown type %q: want required, optional, notSupported or upgrade", d.Type)
		}
		if d.Layer != "" && !slices.Contains(LayerKinds, d.Layer) {
			ps.errorf(file, field+".layer", "unknown layer %q: want one of %s", d.Layer, kindList())
		}
		for name, v := range map[string]string{"minVersion": d.MinVersion, "maxVersion": d.MaxVersion} {
			if v == "" {
				continue
			}
			if _, err := semver.NewVersion(v); err != nil {
				ps.warnf(file, field+"."+name, "%q is not a version, so this bound is not checked", v)
			}
		}
	}
}

func checkResources(file string, resources []Resource, ps *Problems) {
	for i, r := range resources {
		field := fmt.Sprintf("constraints.resources[%d]", i)
		switch r.Type {
		case ResourceCPU, ResourceMemory, ResourceDiskSize:
		default:
			ps.errorf(file, field+".type", "unknown type %q: want cpu, memory or diskSize", r.Type)
		}
		if r.MinLimit < 0 {
			ps.warnf(file, field+".minLimit", "%v is negative: want a minimum, in millicores (cpu), MiB (memory) or GB (diskSize)", r.MinLimit)
		}
		for j, c := range r.Components {
			switch c.ScheduleType {
			case "all", "master", "control-plane", "worker":
			default:
				ps.errorf(file, fmt.Sprintf("%s.components[%d].scheduleType", field, j), "%q: want all, control-plane (or master) or worker", c.ScheduleType)
			}
		}
	}
}

func kindList() string {
	names := make([]string, len(LayerKinds))
	for i, k := range LayerKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// jsonErrorField names the field a type error is about.
func jsonErrorField(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	return ""
}

// jsonErrorMessage adds a line number to encoding/json's byte offsets.
func jsonErrorMessage(data []byte, err error) string {
	var offset int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		offset = se.Offset
	case errors.As(err, &te):
		return fmt.Sprintf("want %s, got JSON %s (line %d)", te.Type, te.Value, lineOf(data, te.Offset))
	}
	if offset < 0 {
		return err.Error()
	}
	return fmt.Sprintf("%v (line %d)", err, lineOf(data, offset))
}

func lineOf(data []byte, offset int64) int {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	return bytes.Count(data[:offset], []byte("\n")) + 1
}
