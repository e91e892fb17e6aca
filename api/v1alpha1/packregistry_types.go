package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PackRegistry is an OCI registry holding packs in Palette's layout
// (<endpoint>/<baseContentPath>/spectro-packs/archive/<name>:<version>). In
// a project namespace it serves that project's clusters and profiles; in
// strata-system, every project's.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=preg,categories=strata
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.spec.endpoint`
// +kubebuilder:printcolumn:name="Base",type=string,JSONPath=`.spec.baseContentPath`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Packs",type=integer,JSONPath=`.status.packs`
// +kubebuilder:printcolumn:name="Versions",type=integer,JSONPath=`.status.versions`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PackRegistry struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PackRegistrySpec   `json:"spec"`
	Status PackRegistryStatus `json:"status,omitempty"`
}

// PackRegistrySpec says where the registry is and how to reach it.
type PackRegistrySpec struct {
	// Endpoint is host[:port], without scheme.
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9.-]+(:[0-9]+)?$`
	Endpoint string `json:"endpoint"`
	// BaseContentPath is the path below which packs live; empty for the root.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+([._/-][a-z0-9]+)*$`
	BaseContentPath string `json:"baseContentPath,omitempty"`
	// CredentialsSecretRef names a Secret of this namespace with username
	// and password, or token.
	// +optional
	CredentialsSecretRef *LocalObjectRef `json:"credentialsSecretRef,omitempty"`
	// CASecretRef names a Secret of this namespace whose ca.crt is the PEM
	// bundle the registry's certificate is signed by.
	// +optional
	CASecretRef *LocalObjectRef `json:"caSecretRef,omitempty"`
	// InsecureSkipTLSVerify accepts any certificate.
	// +optional
	InsecureSkipTLSVerify bool `json:"insecureSkipTLSVerify,omitempty"`
	// PlainHTTP talks HTTP, not HTTPS (loopback registries and tests).
	// +optional
	PlainHTTP bool `json:"plainHTTP,omitempty"`
	// Priority orders the registries a pack is looked for in: lower first
	// (project and shared registries together, then by name).
	// +optional
	Priority int32 `json:"priority,omitempty"`
	// SyncInterval is how often the registry's packs are listed again.
	// +optional
	// +kubebuilder:default="10m"
	SyncInterval *metav1.Duration `json:"syncInterval,omitempty"`
	// Verify, when set, admits only packs whose signature verifies: a pack
	// unsigned, signed by another key, or whose signature covers another
	// digest than the one pulled is refused before anything of it is
	// unpacked.
	// +optional
	Verify *SignatureVerification `json:"verify,omitempty"`
}

// SignatureProvider names how signatures are made and found.
// +kubebuilder:validation:Enum=cosign;notation
type SignatureProvider string

// Signature providers.
const (
	// SignatureCosign: a cosign signature (a Sigstore bundle referring to
	// the pack, or cosign's older .sig tag) made with a key pair.
	SignatureCosign SignatureProvider = "cosign"
	// SignatureNotation: a Notary Project signature checked against a
	// trust policy and trust store.
	SignatureNotation SignatureProvider = "notation"
)

// SignatureVerification says whose signatures are trusted. Verification is
// offline: no transparency log or certificate authority is asked.
// +kubebuilder:validation:XValidation:rule="self.provider != 'cosign' || has(self.publicKeySecretRef)",message="provider cosign needs publicKeySecretRef"
// +kubebuilder:validation:XValidation:rule="self.provider != 'notation' || (has(self.trustPolicySecretRef) && has(self.trustStoreSecretRef))",message="provider notation needs trustPolicySecretRef and trustStoreSecretRef"
type SignatureVerification struct {
	Provider SignatureProvider `json:"provider"`
	// PublicKeySecretRef (cosign) names a Secret of this namespace and the
	// key holding the signer's PEM public key; key "cosign.pub" when empty.
	// +optional
	PublicKeySecretRef *SecretKeyRef `json:"publicKeySecretRef,omitempty"`
	// TrustPolicySecretRef (notation) names the Secret key holding the
	// trust policy document (JSON); key "trustpolicy.json" when empty.
	// +optional
	TrustPolicySecretRef *SecretKeyRef `json:"trustPolicySecretRef,omitempty"`
	// TrustStoreSecretRef (notation) names a Secret whose keys are PEM
	// certificates: the trust stores the policy names.
	// +optional
	TrustStoreSecretRef *LocalObjectRef `json:"trustStoreSecretRef,omitempty"`
}

// LocalObjectRef names an object of the same namespace.
type LocalObjectRef struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// PackRegistryStatus is what the last sync found.
type PackRegistryStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready (reasons Synced, Unreachable, AuthenticationFailed,
	// TLSError, NotARegistry, InvalidSpec).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// LastSyncTime is when the packs were last listed.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// Packs is how many packs the registry holds; Versions how many versions.
	// +optional
	Packs int32 `json:"packs,omitempty"`
	// +optional
	Versions int32 `json:"versions,omitempty"`
	// Entries are the pack versions found, sorted by name and version; at
	// most 5000 (Truncated says when there were more).
	// +optional
	Entries []PackEntry `json:"entries,omitempty"`
	// +optional
	Truncated bool `json:"truncated,omitempty"`
	// Refused are the pack versions whose signature did not verify, with
	// why; at most 100.
	// +optional
	Refused []RefusedPack `json:"refused,omitempty"`
}

// RefusedPack is a pack version a registry's verification refused.
type RefusedPack struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Digest is the manifest digest the tag pointed at.
	Digest string `json:"digest"`
	// Reason says what was wrong with its signature.
	Reason string `json:"reason"`
}

// PackEntry is one pack version of a registry.
type PackEntry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Layer is the pack's layer kind (os, kernel, k8s, cni, csi, addon).
	// +optional
	Layer string `json:"layer,omitempty"`
	// Digest of the pack's archive.
	Digest string `json:"digest"`
}

// +kubebuilder:object:root=true

// PackRegistryList is a list of PackRegistry.
type PackRegistryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PackRegistry `json:"items"`
}
