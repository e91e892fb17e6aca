package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Cluster is a target that follows one infra or full profile plus any number
// of add-on profiles, each pinned to a version, with its own variable values
// and layer overrides.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strata
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Cluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterSpec   `json:"spec"`
	Status ClusterStatus `json:"status,omitempty"`
}

// ClusterProvider makes a cluster exist.
// +kubebuilder:validation:Enum=imported;local;capi
type ClusterProvider string

// Providers.
const (
	// ProviderImported is an existing cluster reached through a kubeconfig
	// Secret.
	ProviderImported ClusterProvider = "imported"
	// ProviderLocal is a cluster `strata up` runs on its own machine: a
	// real control plane with simulated nodes, its Kubernetes version
	// taken from the k8s layer.
	ProviderLocal ClusterProvider = "local"
	// ProviderCAPI is a cluster Cluster API provisions from a ClusterClass,
	// on whatever infrastructure the class's providers run: the manager
	// owns a cluster.x-k8s.io Cluster with a managed topology.
	ProviderCAPI ClusterProvider = "capi"
)

// CAPISpec says how Cluster API makes a capi cluster.
type CAPISpec struct {
	// ClassRef names the ClusterClass, of any provider.
	ClassRef ClassRef `json:"classRef"`
	// ControlPlaneReplicas of the topology's control plane; 1 when unset.
	// +kubebuilder:validation:Minimum=1
	// +optional
	ControlPlaneReplicas *int32 `json:"controlPlaneReplicas,omitempty"`
	// Variables are passed to the topology as they are; the class declares
	// and checks them.
	// +optional
	// +listType=map
	// +listMapKey=name
	Variables []CAPIVariable `json:"variables,omitempty"`
}

// ClassRef names a ClusterClass.
type ClassRef struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace of the class; the cluster's when empty.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// CAPIVariable is a value for one of the class's variables.
type CAPIVariable struct {
	// +kubebuilder:validation:MinLength=1
	Name  string               `json:"name"`
	Value apiextensionsv1.JSON `json:"value"`
}

// NodePool is a group of nodes of a local cluster, labelled
// strata.dev/node-pool=<name>.
type NodePool struct {
	// Name of the pool; nodes are named <name>-0, <name>-1, ...
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=40
	Name string `json:"name"`
	// Count of nodes.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=500
	Count int32 `json:"count"`
	// CPU of each node; 32 when unset. Packs' resource constraints are
	// checked against it.
	// +optional
	CPU *resource.Quantity `json:"cpu,omitempty"`
	// Memory of each node; 256Gi when unset.
	// +optional
	Memory *resource.Quantity `json:"memory,omitempty"`
	// Class of a capi cluster's pool: a worker (machineDeployment) class
	// of its ClusterClass.
	// +optional
	Class string `json:"class,omitempty"`
	// DiskSize of each node; 100Gi when unset.
	// +optional
	DiskSize *resource.Quantity `json:"diskSize,omitempty"`
}

// ClusterMode says who applies a cluster's stack.
// +kubebuilder:validation:Enum=push;agent
type ClusterMode string

// Cluster modes.
const (
	// ModePush: the manager connects to the cluster and applies its stack.
	ModePush ClusterMode = "push"
	// ModeAgent: `strata agent`, running in (or beside) the cluster, reads
	// the cluster's desired state from the management plane, applies it and
	// reports back; the manager never connects to the cluster.
	ModeAgent ClusterMode = "agent"
)

// UpdatePolicy says when a cluster takes changes to its stack.
// +kubebuilder:validation:Enum=Automatic;Manual
type UpdatePolicy string

// Update policies.
const (
	// UpdateAutomatic applies every change at once.
	UpdateAutomatic UpdatePolicy = "Automatic"
	// UpdateManual shows the pending plan and applies it once approved.
	UpdateManual UpdatePolicy = "Manual"
)

// DriftPolicy says what happens to objects changed by hand.
// +kubebuilder:validation:Enum=Repair;Report
type DriftPolicy string

// Drift policies.
const (
	// DriftRepair puts drifted objects back as the stack says.
	DriftRepair DriftPolicy = "Repair"
	// DriftReport only reports them (condition Drifted, layer phase Drifted).
	DriftReport DriftPolicy = "Report"
)

// ClusterSpec says which profiles a cluster follows and how it differs. An
// imported cluster without kubeconfigSecretRef is reported Stalled rather
// than refused, so clusters can be declared before their credentials exist.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.mode) && self.mode == 'agent' && has(self.provider) && self.provider != 'imported')",message="a local or capi cluster is reached by the manager: mode agent is for imported clusters"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'capi' || has(self.capi)",message="provider capi needs spec.capi.classRef: the ClusterClass Cluster API makes the cluster from"
type ClusterSpec struct {
	// Mode: push (the default) — the manager reaches the cluster through
	// kubeconfigSecretRef; agent — `strata agent` in the cluster pulls its
	// desired state and reports its status, for clusters the manager cannot
	// reach (`strata cluster join-command` starts one).
	// +kubebuilder:default=push
	// +optional
	Mode ClusterMode `json:"mode,omitempty"`
	// Provider makes the cluster exist; imported (the default) reaches an
	// existing cluster through kubeconfigSecretRef.
	// +kubebuilder:default=imported
	// +optional
	Provider ClusterProvider `json:"provider,omitempty"`
	// KubeconfigSecretRef names a Secret in the cluster's namespace holding
	// a kubeconfig for the workload cluster. A local cluster's is written
	// by Strata to <name>-kubeconfig.
	// +optional
	KubeconfigSecretRef *SecretKeyRef `json:"kubeconfigSecretRef,omitempty"`
	// CAPI says how Cluster API makes a capi cluster.
	// +optional
	CAPI *CAPISpec `json:"capi,omitempty"`
	// NodePools of a local cluster (one node in pool "default" when empty),
	// or the worker machineDeployments of a capi cluster.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	NodePools []NodePool `json:"nodePools,omitempty"`
	// Profiles attached to the cluster: exactly one infra or full profile
	// and any number of add-on profiles. Their layers install in this order.
	// +kubebuilder:validation:MinItems=1
	// +listType=map
	// +listMapKey=name
	Profiles []ProfileAttachment `json:"profiles"`
	// UpdatePolicy: Automatic applies changes at once; Manual waits until
	// the pending plan is approved. Unset, the cluster takes its profiles'
	// default: Manual when any attached profile asks for it, else Automatic.
	// +optional
	UpdatePolicy UpdatePolicy `json:"updatePolicy,omitempty"`
	// DriftPolicy: Repair (default) puts objects changed by hand back;
	// Report only reports them.
	// +kubebuilder:default=Repair
	// +optional
	DriftPolicy DriftPolicy `json:"driftPolicy,omitempty"`
	// ApprovedPlan is the digest of the pending plan a user approved
	// (`strata cluster approve`); the plan is applied only while it still
	// matches, so a later change needs its own approval.
	// +optional
	ApprovedPlan string `json:"approvedPlan,omitempty"`
	// Overrides of layer values for this cluster only.
	// +optional
	// +listType=map
	// +listMapKey=layer
	Overrides []LayerOverride `json:"overrides,omitempty"`
}

// SecretKeyRef names a key of a Secret in the same namespace.
type SecretKeyRef struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key in the Secret's data; "kubeconfig" when empty.
	// +optional
	Key string `json:"key,omitempty"`
}

// ProfileAttachment pins a profile version and sets its variables.
type ProfileAttachment struct {
	// Name of the profile (spec.name of its ClusterProfile objects).
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Version of the profile to follow: an exact version (1.2.0), or a
	// semantic-version range (1.x, ~1.2, >=1.0.0 <2.0.0) to follow the
	// newest version in it as versions are published.
	// +kubebuilder:validation:MinLength=1
	Version string `json:"version"`
	// Variables of that profile, by name.
	// +optional
	// +listType=map
	// +listMapKey=name
	Variables []VariableValue `json:"variables,omitempty"`
}

// VariableValue sets one profile variable.
type VariableValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// LayerOverride changes the values of one layer for this cluster.
type LayerOverride struct {
	// Layer name, unique across the cluster's profiles.
	Layer string `json:"layer"`
	// Values (YAML) merged over the profile's layer values.
	Values string `json:"values"`
}

// ClusterPhase summarises where a cluster stands.
type ClusterPhase string

// Cluster phases.
const (
	ClusterPending ClusterPhase = "Pending"
	// ClusterProvisioning: Cluster API is making the cluster; its layers
	// wait for the control plane.
	ClusterProvisioning ClusterPhase = "Provisioning"
	ClusterReconciling  ClusterPhase = "Reconciling"
	ClusterReady        ClusterPhase = "Ready"
	ClusterFailed       ClusterPhase = "Failed"
	ClusterDeleting     ClusterPhase = "Deleting"
)

// Condition types of a Cluster.
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
	// ConditionUpdatesAvailable is True while a Manual cluster has a plan
	// waiting for approval.
	ConditionUpdatesAvailable = "UpdatesAvailable"
	// ConditionDrifted is True while objects changed by hand are reported
	// and not repaired (drift policy Report).
	ConditionDrifted = "Drifted"
	// ConditionAgentConnected is True while an agent-mode cluster's agent
	// sends its heartbeat.
	ConditionAgentConnected = "AgentConnected"
	// ConditionVersionRefused is True while a cluster following a range
	// keeps the version it runs because the newest one the range picks
	// refuses it (its values break the new schema, a constraint fails).
	ConditionVersionRefused = "VersionRefused"
	// ConditionProvisioned mirrors, for a capi cluster, Cluster API's
	// Available condition of its Cluster, with its reason and message.
	ConditionProvisioned = "Provisioned"
)

// ClusterStatus is observed state of a cluster.
type ClusterStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase summarises the conditions.
	// +optional
	Phase ClusterPhase `json:"phase,omitempty"`
	// KubernetesVersion the workload cluster reports.
	// +optional
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	// UpdatePolicy in effect: the cluster's own, else its profiles'.
	// +optional
	UpdatePolicy UpdatePolicy `json:"updatePolicy,omitempty"`
	// Profiles are the versions the cluster runs — for an attachment by
	// range, the version the range picked — and the newest version of
	// each profile that the cluster may use.
	// +optional
	Profiles []ProfileStatus `json:"profiles,omitempty"`
	// Layers the cluster runs, in install order.
	// +optional
	Layers []LayerStatus `json:"layers,omitempty"`
	// PendingPlan is the change waiting for approval on a Manual cluster:
	// exactly what approving it applies.
	// +optional
	PendingPlan *PendingPlan `json:"pendingPlan,omitempty"`
	// Conditions: Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// HealthChecks are the roll-out gates of the versions it is moving to,
	// as last checked.
	// +optional
	HealthChecks []HealthCheckResult `json:"healthChecks,omitempty"`
	// Agent is what the agent of an agent-mode cluster last reported.
	// +optional
	Agent *AgentStatus `json:"agent,omitempty"`
	// CAPI is what Cluster API says of a capi cluster.
	// +optional
	CAPI *CAPIStatus `json:"capi,omitempty"`
}

// CAPIStatus is a capi cluster as Cluster API reports it.
type CAPIStatus struct {
	// Phase of the Cluster API Cluster: Pending, Provisioning,
	// Provisioned, Deleting, Failed.
	// +optional
	Phase string `json:"phase,omitempty"`
	// ControlPlane replicas ready of desired.
	// +optional
	ControlPlane ReplicaCount `json:"controlPlane,omitempty"`
	// Workers replicas ready of desired, all pools together.
	// +optional
	Workers ReplicaCount `json:"workers,omitempty"`
	// Version of Kubernetes the control plane runs.
	// +optional
	Version string `json:"version,omitempty"`
}

// ReplicaCount is how many of the desired replicas are ready.
type ReplicaCount struct {
	Ready   int32 `json:"ready"`
	Desired int32 `json:"desired"`
}

// AgentStatus is an agent's own report.
type AgentStatus struct {
	// Version of strata the agent runs.
	// +optional
	Version string `json:"version,omitempty"`
	// LastHeartbeatTime is when the agent last reported; the cluster shows
	// the agent disconnected after three missed heartbeats.
	LastHeartbeatTime metav1.Time `json:"lastHeartbeatTime"`
	// HeartbeatSeconds is how often the agent reports.
	// +kubebuilder:validation:Minimum=1
	HeartbeatSeconds int32 `json:"heartbeatSeconds"`
	// LayersRemoved is set by the agent of a deleted cluster once its
	// layers are gone (or left running, with strata.dev/orphan): the
	// manager then lets the Cluster go.
	// +optional
	LayersRemoved bool `json:"layersRemoved,omitempty"`
}

// ProfileStatus is an attached profile as the cluster runs it.
type ProfileStatus struct {
	Name string `json:"name"`
	// Version applied to the cluster.
	Version string `json:"version"`
	// Latest version of the profile visible to the cluster's project; a
	// newer one than Version is an update the cluster may move to.
	// +optional
	Latest string `json:"latest,omitempty"`
	// LastGood is the last version the cluster ran with every layer Ready:
	// the one a roll-back returns it to.
	// +optional
	LastGood string `json:"lastGood,omitempty"`
	// Rejected are versions this cluster failed in a roll-out; following a
	// range does not pick them again until a user retries.
	// +optional
	Rejected []string `json:"rejected,omitempty"`
	// Refused is the newest version the cluster's range picks and the
	// cluster cannot take, and why; it keeps running Version meanwhile.
	// +optional
	Refused *RefusedVersion `json:"refused,omitempty"`
}

// RefusedVersion is a profile version a cluster does not take.
type RefusedVersion struct {
	Version string `json:"version"`
	// Reason lists what the version refuses in this cluster, each naming
	// the file, object and field.
	Reason string `json:"reason"`
}

// PendingPlan is a plan waiting for approval.
type PendingPlan struct {
	// Digest identifies the plan; approving sets spec.approvedPlan to it.
	Digest string `json:"digest"`
	// Summary in one line, e.g. "1 to install, 1 to upgrade, 1 to remove".
	Summary string `json:"summary"`
	// Layers that would change.
	Layers []PlannedLayer `json:"layers"`
}

// PlannedLayer is one layer's pending change.
type PlannedLayer struct {
	Name        string `json:"name"`
	Action      string `json:"action"`
	FromVersion string `json:"fromVersion,omitempty"`
	ToVersion   string `json:"toVersion,omitempty"`
	// FromDigest and ToDigest are the pack's content digests (packs from
	// registries): a tag pushed again with other content shows here.
	// +optional
	FromDigest string `json:"fromDigest,omitempty"`
	// +optional
	ToDigest string `json:"toDigest,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// ValuesDiff is a unified diff of the layer's values, masked values redacted.
	ValuesDiff string `json:"valuesDiff,omitempty"`
}

// LayerStatus is what one layer of the cluster runs and how it stands.
type LayerStatus struct {
	Name           string `json:"name"`
	Profile        string `json:"profile"`
	ProfileVersion string `json:"profileVersion"`
	// Source is pack, chart, manifests or zarf; Package and Version say which.
	Source  string `json:"source"`
	Package string `json:"package,omitempty"`
	Version string `json:"version,omitempty"`
	// Digest of the pack's content, for a pack from a registry.
	// +optional
	Digest string `json:"digest,omitempty"`
	// Phase: Pending, Installing, Upgrading, Ready, Failed, Blocked, Removing, Drifted.
	Phase   string `json:"phase"`
	Message string `json:"message,omitempty"`
	// LastAppliedTime is when Strata last changed the layer.
	// +optional
	LastAppliedTime *metav1.Time `json:"lastAppliedTime,omitempty"`
	// Images a Zarf layer's components run.
	// +optional
	Images []string `json:"images,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterList is a list of Cluster.
type ClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Cluster `json:"items"`
}
