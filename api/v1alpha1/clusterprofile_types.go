package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProfileType says which layers a profile holds.
// +kubebuilder:validation:Enum=infra;add-on;full
type ProfileType string

// Profile types.
const (
	// ProfileInfra holds exactly one os, k8s, cni and csi layer, in that order.
	ProfileInfra ProfileType = "infra"
	// ProfileAddOn holds only add-on layers.
	ProfileAddOn ProfileType = "add-on"
	// ProfileFull is an infra profile followed by add-on layers.
	ProfileFull ProfileType = "full"
)

// LayerKind is where a layer sits in the stack.
// +kubebuilder:validation:Enum=os;kernel;k8s;cni;csi;addon
type LayerKind string

// Layer kinds, in stack order.
const (
	LayerOS LayerKind = "os"
	// LayerKernel is an optional kernel layer, right after the os layer.
	LayerKernel LayerKind = "kernel"
	LayerK8s    LayerKind = "k8s"
	LayerCNI    LayerKind = "cni"
	LayerCSI    LayerKind = "csi"
	LayerAddon  LayerKind = "addon"
)

// ClusterProfile is one version of a cluster profile: ordered layers,
// variables and a semantic version. Every version of a profile is its own
// object named "<spec.name>-<spec.version>", so versions live side by side,
// the API server guarantees that a version exists once, and a cluster pins
// the version it follows.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cp;profile,categories=strata
// +kubebuilder:printcolumn:name="Profile",type=string,JSONPath=`.spec.name`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Draft",type=boolean,JSONPath=`.spec.draft`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Rollout",type=string,JSONPath=`.status.rollout.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name == self.spec.name + '-' + self.spec.version",message="metadata.name must be <spec.name>-<spec.version>, e.g. web-1.2.0"
type ClusterProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterProfileSpec   `json:"spec"`
	Status ClusterProfileStatus `json:"status,omitempty"`
}

// ClusterProfileSpec describes one version of a profile.
// +kubebuilder:validation:XValidation:rule="self.type != 'add-on' || self.layers.all(l, l.kind == 'addon')",message="an add-on profile holds only addon layers"
type ClusterProfileSpec struct {
	// Name of the profile, shared by all its versions.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Version is a semantic version: major.minor.patch with an optional
	// pre-release, e.g. 1.2.0 or 2.0.0-rc.1.
	// +kubebuilder:validation:Pattern=`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`
	Version string `json:"version"`
	// Type is infra, add-on or full.
	Type ProfileType `json:"type"`
	// Description for people.
	// +optional
	Description string `json:"description,omitempty"`
	// Tags for search and grouping.
	// +optional
	Tags []string `json:"tags,omitempty"`
	// Variables users set per cluster; layers use them as {{.spectro.var.NAME}}.
	// +optional
	// +kubebuilder:validation:MaxItems=128
	// +listType=map
	// +listMapKey=name
	Variables []Variable `json:"variables,omitempty"`
	// UpdatePolicy is the default of the clusters that attach this version
	// and set none themselves: Manual makes them wait for approval.
	// +optional
	UpdatePolicy UpdatePolicy `json:"updatePolicy,omitempty"`
	// Layers in install order.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	Layers []Layer `json:"layers"`
	// Rollout makes this version travel the fleet in waves, halting and
	// rolling back by itself; without it every cluster moves at once.
	// +optional
	Rollout *RolloutPolicy `json:"rollout,omitempty"`
	// Draft keeps the version from every cluster while its effect on the
	// fleet is previewed: version ranges (1.x) skip it, a cluster naming it
	// exactly is Stalled, its roll-out does not start. Publishing is
	// setting it false (strata profile publish).
	// +optional
	Draft bool `json:"draft,omitempty"`
}

// Layer is one pack, chart, manifest set or Zarf package placed in a
// profile, with its values.
// +kubebuilder:validation:XValidation:rule="[has(self.pack), has(self.chart), has(self.manifests), has(self.zarf)].filter(x, x).size() == 1",message="a layer has exactly one source: pack, chart, manifests or zarf"
type Layer struct {
	// Name is unique in the profile; the same pack may appear twice under
	// different names.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=53
	Name string `json:"name"`
	// Kind is os, kernel, k8s, cni, csi or addon.
	Kind LayerKind `json:"kind"`

	// Pack is a pack from a registry (or a pack folder given to the CLI).
	// +optional
	Pack *PackSource `json:"pack,omitempty"`
	// Chart is a Helm chart from an HTTP repository or an OCI registry.
	// +optional
	Chart *ChartSource `json:"chart,omitempty"`
	// Manifests are raw Kubernetes manifests.
	// +optional
	Manifests *ManifestSource `json:"manifests,omitempty"`
	// Zarf is a Zarf package.
	// +optional
	Zarf *ZarfSource `json:"zarf,omitempty"`

	// Values (YAML) merged over the source's defaults and presets.
	// +optional
	Values string `json:"values,omitempty"`
	// Presets to enable, as "Group:name"; one per group replaces the pack's
	// default choice for that group.
	// +optional
	Presets []string `json:"presets,omitempty"`
	// Namespace overrides the pack's target namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// InstallPriority orders layers of a profile: lower installs first.
	// Defaults to the pack's spectrocloud.com/install-priority, else 0.
	// +optional
	InstallPriority *int32 `json:"installPriority,omitempty"`
	// DependsOn names layers (of any profile of the cluster) that must be
	// Ready before this one installs.
	// +optional
	DependsOn []string `json:"dependsOn,omitempty"`
}

// PackSource names a pack.
type PackSource struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +kubebuilder:validation:MinLength=1
	Version string `json:"version"`
	// Registry names the PackRegistry to take the pack from (offline: an
	// oci:// endpoint given with --registry); empty searches the registries
	// the project sees by priority, then the pack folders.
	// +optional
	Registry string `json:"registry,omitempty"`
}

// ChartSource names a Helm chart.
// +kubebuilder:validation:XValidation:rule="!has(self.verify) || self.repository.startsWith('oci://')",message="verify needs an oci:// repository: signatures are read from the OCI registry"
type ChartSource struct {
	// Repository is an HTTP(S) Helm repository URL or an oci:// reference.
	// +kubebuilder:validation:MinLength=1
	Repository string `json:"repository"`
	// Name of the chart (empty for a full oci:// reference to the chart).
	// +optional
	Name string `json:"name,omitempty"`
	// +kubebuilder:validation:MinLength=1
	Version string `json:"version"`
	// Verify, when set, admits the chart (oci:// only) only when its
	// manifest carries a trusted signature, as a PackRegistry's verify
	// does for packs; its Secrets are read from the profile's namespace.
	// A chart refused is not applied: its layer fails and says why.
	// +optional
	Verify *SignatureVerification `json:"verify,omitempty"`
}

// ManifestSource holds raw manifests.
// +kubebuilder:validation:XValidation:rule="has(self.inline) != has(self.fromPack)",message="manifests are either inline or fromPack"
type ManifestSource struct {
	// Inline is multi-document YAML.
	// +optional
	Inline string `json:"inline,omitempty"`
	// FromPack takes only the kubeManifests of a pack.
	// +optional
	FromPack *PackSource `json:"fromPack,omitempty"`
}

// ZarfSource names a Zarf package and the components to deploy.
type ZarfSource struct {
	// Package is where the Zarf package is: the path of an archive
	// (zarf-package-*.tar.zst or .tar) or package-definition folder, or
	// oci://HOST/REPOSITORY:TAG of a package published to a registry.
	// +kubebuilder:validation:MinLength=1
	Package string `json:"package"`
	// Components to deploy besides the required and default ones.
	// +optional
	Components []string `json:"components,omitempty"`
}

// VariableInput is how a variable is entered.
// +kubebuilder:validation:Enum=text;dropdown
type VariableInput string

// Variable inputs.
const (
	InputText     VariableInput = "text"
	InputDropdown VariableInput = "dropdown"
)

// VariableFormat constrains a variable's value.
// +kubebuilder:validation:Enum=string;number;boolean;version;ipv4;ipv4cidr;ipv6
type VariableFormat string

// Variable formats.
const (
	FormatString   VariableFormat = "string"
	FormatNumber   VariableFormat = "number"
	FormatBoolean  VariableFormat = "boolean"
	FormatVersion  VariableFormat = "version"
	FormatIPv4     VariableFormat = "ipv4"
	FormatIPv4CIDR VariableFormat = "ipv4cidr"
	FormatIPv6     VariableFormat = "ipv6"
)

// Variable is a value set per cluster and used in layer values as
// {{.spectro.var.NAME}}.
// +kubebuilder:validation:XValidation:rule="self.input != 'dropdown' || (has(self.options) && size(self.options) > 0)",message="a dropdown variable needs options"
type Variable struct {
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	Name string `json:"name"`
	// +optional
	DisplayName string `json:"displayName,omitempty"`
	// +optional
	Description string `json:"description,omitempty"`
	// Input is text (default) or dropdown.
	// +kubebuilder:default=text
	// +optional
	Input VariableInput `json:"input,omitempty"`
	// Options of a dropdown.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	Options []VariableOption `json:"options,omitempty"`
	// Format of the value; string by default.
	// +kubebuilder:default=string
	// +optional
	Format VariableFormat `json:"format,omitempty"`
	// Regex the value must match in full.
	// +optional
	Regex string `json:"regex,omitempty"`
	// Required values must be set (or have a default).
	// +optional
	Required bool `json:"required,omitempty"`
	// Default value.
	// +optional
	Default string `json:"default,omitempty"`
	// Masked values are secrets: never printed, logged or shown.
	// +optional
	Masked bool `json:"masked,omitempty"`
	// Hidden variables are not offered to users; they keep their default.
	// +optional
	Hidden bool `json:"hidden,omitempty"`
	// ReadOnly variables cannot be changed per cluster.
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`
}

// VariableOption is one choice of a dropdown variable.
type VariableOption struct {
	Value string `json:"value"`
	// +optional
	Label string `json:"label,omitempty"`
	// +optional
	Description string `json:"description,omitempty"`
}

// ClusterProfileStatus is observed state of a profile version.
type ClusterProfileStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Valid says whether the profile passed validation.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Rollout is this version's roll-out, when its spec has a policy.
	// +optional
	Rollout *RolloutStatus `json:"rollout,omitempty"`
	// Impact is what a draft version would do to the fleet, were it
	// published: the plan of each cluster that would move to it, or why it
	// would refuse it. Only drafts have one.
	// +optional
	Impact *ImpactStatus `json:"impact,omitempty"`
}

// ImpactStatus is a draft version's effect on the clusters that would
// move to it. Nothing is written to any cluster to compute it.
type ImpactStatus struct {
	// ObservedGeneration is the draft's generation it was computed for: an
	// impact of an older generation is not the draft's current one.
	ObservedGeneration int64 `json:"observedGeneration"`
	// ComputedTime is when it was computed.
	ComputedTime metav1.Time `json:"computedTime"`
	// Summary counts every cluster, listed or not.
	Summary ImpactSummary `json:"summary"`
	// Clusters lists each cluster's outcome, by namespace and name: the
	// first 200 (strata profile preview -f … lists every one, offline).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=200
	Clusters []ClusterImpact `json:"clusters,omitempty"`
	// Truncated is true when more clusters would move than are listed.
	// +optional
	Truncated bool `json:"truncated,omitempty"`
}

// ImpactSummary counts clusters by outcome.
type ImpactSummary struct {
	Change    int32 `json:"change"`
	Unchanged int32 `json:"unchanged"`
	Refused   int32 `json:"refused"`
	// Unknown counts clusters the manager has not reached yet, whose
	// Kubernetes version and APIs it does not know.
	Unknown int32 `json:"unknown"`
}

// ClusterImpact is a draft's effect on one cluster.
type ClusterImpact struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// From is the version of the profile the cluster runs now.
	// +optional
	From string `json:"from,omitempty"`
	// Refused is why the cluster would not take the draft.
	// +optional
	Refused string `json:"refused,omitempty"`
	// Unknown says why the outcome is not known.
	// +optional
	Unknown string `json:"unknown,omitempty"`
	// +optional
	// +listType=atomic
	Layers []LayerImpact `json:"layers,omitempty"`
}

// LayerImpact is what one layer of a cluster would do.
type LayerImpact struct {
	Name string `json:"name"`
	// Action is install, upgrade, remove, swap or unchanged.
	Action string `json:"action"`
	// +optional
	FromVersion string `json:"fromVersion,omitempty"`
	// +optional
	ToVersion string `json:"toVersion,omitempty"`
	// +optional
	ValuesChanged bool `json:"valuesChanged,omitempty"`
	// Package is the pack or chart, and FromPackage what it replaces in a
	// swap.
	// +optional
	Package string `json:"package,omitempty"`
	// +optional
	FromPackage string `json:"fromPackage,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterProfileList is a list of ClusterProfile.
type ClusterProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterProfile `json:"items"`
}
