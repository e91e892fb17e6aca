package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// RolloutPolicy says how a profile version travels the fleet: in waves,
// each waiting for the one before to be healthy, halting when too many
// clusters fail and returning the failed ones to the version they last ran
// healthy. It applies to clusters moving to this version, by a range they
// follow or an attachment changed to it.
type RolloutPolicy struct {
	// Waves in order. A cluster belongs to the first wave whose selector
	// matches its labels (so overlapping waves are allowed: the first
	// wins); a wave without a selector takes the clusters left; clusters
	// matched by no wave form a last wave of their own.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	Waves []Wave `json:"waves,omitempty"`
	// MaxFailures is how many clusters may fail before the roll-out halts.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxFailures *int32 `json:"maxFailures,omitempty"`
	// ProgressDeadline: a cluster not healthy this long after it started
	// updating has failed the version; 5m when unset.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	ProgressDeadline *metav1.Duration `json:"progressDeadline,omitempty"`
	// OnFailure: Rollback (the default) returns failed clusters to the
	// version they last ran healthy; Halt leaves them as they are.
	// +optional
	// +kubebuilder:validation:Enum=Rollback;Halt
	OnFailure RolloutFailureAction `json:"onFailure,omitempty"`
	// HealthChecks are gates beyond every layer Ready: objects of the
	// workload cluster that must be healthy for a cluster to count as
	// healthy on this version, from its update to the end of its wave's soak.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	HealthChecks []HealthCheck `json:"healthChecks,omitempty"`
}

// HealthCheck is one gate: an object and what it must show.
type HealthCheck struct {
	// Name identifies the check in statuses and messages.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Object is the object of the workload cluster to read.
	Object HealthCheckObject `json:"object"`
	// Layer of this profile the object belongs to: without
	// object.namespace, the object is in that layer's namespace as
	// resolved for each cluster (one a variable sets, say).
	// +optional
	Layer string `json:"layer,omitempty"`
	// Condition is a CEL expression over the live object, bound to self,
	// that must be true — written as Kubernetes validation rules are, e.g.
	// `self.status.availableReplicas >= 2`. Without one, the object must be
	// Current as kstatus computes it (available, rolled out).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Condition string `json:"condition,omitempty"`
}

// HealthCheckObject names an object of the workload cluster.
type HealthCheckObject struct {
	// +kubebuilder:validation:MinLength=1
	APIVersion string `json:"apiVersion"`
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`
	// Namespace, for a namespaced object.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// HealthCheckResult is a health check as a cluster last saw it.
type HealthCheckResult struct {
	Profile string `json:"profile"`
	Version string `json:"version"`
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	// Message says what was seen when it is not healthy.
	// +optional
	Message string `json:"message,omitempty"`
}

// RolloutFailureAction is what happens to clusters that fail a version.
type RolloutFailureAction string

// Failure actions.
const (
	RolloutRollback RolloutFailureAction = "Rollback"
	RolloutHalt     RolloutFailureAction = "Halt"
)

// RestWave names the last wave, of the clusters no wave of the policy
// takes. A policy may name its last wave so, to give it a soak, an approval
// or a maxParallel; it is then that wave.
const RestWave = "rest"

// Wave is a group of clusters updated together.
type Wave struct {
	// Name is unique in the policy.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Selector picks the wave's clusters by label; none takes the clusters
	// no earlier wave took.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	// MaxParallel is how many of the wave's clusters update at once: a
	// number (at least 1) or a percentage such as "25%" (at least one
	// cluster); all at once when unset.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=4
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 1 : self.matches('^[1-9][0-9]?%$|^100%$')",message="a number of at least 1 or a percentage from 1% to 100%"
	MaxParallel *intstr.IntOrString `json:"maxParallel,omitempty"`
	// Soak is how long every cluster of the wave must stay healthy before
	// the next wave starts.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	Soak *metav1.Duration `json:"soak,omitempty"`
	// Approval: the wave waits for `strata rollout resume` before it starts.
	// +optional
	Approval bool `json:"approval,omitempty"`
}

// RolloutPhase is where a roll-out stands.
type RolloutPhase string

// Roll-out phases.
const (
	RolloutProgressing RolloutPhase = "Progressing"
	RolloutPaused      RolloutPhase = "Paused"
	RolloutHalted      RolloutPhase = "Halted"
	RolloutRolledBack  RolloutPhase = "RolledBack"
	RolloutCompleted   RolloutPhase = "Completed"
)

// RolloutClusterState is where one cluster stands in a roll-out.
type RolloutClusterState string

// Cluster states in a roll-out.
const (
	ClusterRolloutPending    RolloutClusterState = "Pending"
	ClusterRolloutUpdating   RolloutClusterState = "Updating"
	ClusterRolloutSoaking    RolloutClusterState = "Soaking"
	ClusterRolloutHealthy    RolloutClusterState = "Healthy"
	ClusterRolloutFailed     RolloutClusterState = "Failed"
	ClusterRolloutRolledBack RolloutClusterState = "RolledBack"
)

// RolloutStatus is a profile version's roll-out.
type RolloutStatus struct {
	Phase RolloutPhase `json:"phase"`
	// Reason says why the roll-out halted or waits.
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`
	// Waves in order, with their clusters.
	// +optional
	Waves []WaveStatus `json:"waves,omitempty"`
	// Failures is how many clusters failed this version.
	// +optional
	Failures int32 `json:"failures,omitempty"`
	// Retried is the last retry request handled (the retry annotation).
	// +optional
	Retried string `json:"retried,omitempty"`
}

// WaveStatus is one wave of a roll-out.
type WaveStatus struct {
	Name string `json:"name"`
	// StartTime is when the wave's first cluster started updating.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// HealthyTime is when its last cluster became healthy; the soak runs
	// from then.
	// +optional
	HealthyTime *metav1.Time `json:"healthyTime,omitempty"`
	// Clusters of the wave. A finished roll-out keeps them, with their
	// states and times, when they go on to newer versions.
	// +optional
	Clusters []RolloutCluster `json:"clusters,omitempty"`
	// Counts are how many clusters ended in each state, kept in place of
	// the clusters once newer roll-outs of the profile have finished (the
	// newest keep their clusters), so a profile's statuses stay small.
	// +optional
	Counts map[RolloutClusterState]int32 `json:"counts,omitempty"`
}

// RolloutCluster is one cluster in a roll-out.
type RolloutCluster struct {
	Namespace string              `json:"namespace"`
	Name      string              `json:"name"`
	State     RolloutClusterState `json:"state"`
	// Since is when the cluster entered its state.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// StartTime is when the cluster was let move to the version.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// ReadyTime is when it first ran the version with every layer Ready.
	// +optional
	ReadyTime *metav1.Time `json:"readyTime,omitempty"`
	// From is the version the cluster ran healthy before; the one a roll
	// back returns it to.
	// +optional
	From string `json:"from,omitempty"`
	// Message says why a cluster failed.
	// +optional
	Message string `json:"message,omitempty"`
}
