// Package signature signs and verifies what Strata pulls from OCI
// registries — packs and charts — the way cosign and notation publish
// signatures, offline: trust comes from a key (cosign) or a trust policy
// and trust store (notation) the platform team hands in, never from a
// transparency log or certificate authority on the network.
//
// A signature covers a manifest digest. A tag moved after signing points
// at a manifest nobody signed, so it is refused like an unsigned one.
package signature

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// Repository is what a verifier reads signatures from: a repository of a
// registry, whose referrers it can list (with the tag fallback for
// registries without the referrers API, as oras-go's remote repositories
// do) and whose tags it can resolve.
type Repository interface {
	content.ReadOnlyGraphStorage
	content.Resolver
}

// Verifier checks that a manifest carries a trusted signature.
type Verifier interface {
	// Verify returns nil when subject, a manifest of the repository repo
	// named name (host/path, as trust policies scope it), is signed by a
	// trusted signer; a *Refusal when it is not; another error when it
	// could not tell (the registry did not answer).
	Verify(ctx context.Context, repo Repository, name string, subject ocispec.Descriptor) error
	// ID identifies what the verifier trusts (a key's fingerprint), so
	// that a digest verified under it may be remembered.
	ID() string
}

// Refusal says why a manifest's signature was not accepted.
type Refusal struct {
	// Digest is the manifest digest that was checked.
	Digest string
	// Reason is what was wrong, for people.
	Reason string
}

func (r *Refusal) Error() string { return "signature: " + r.Reason }

// IsRefusal tells whether err is, or wraps, a refused signature.
func IsRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}

func refuse(subject ocispec.Descriptor, format string, args ...any) *Refusal {
	return &Refusal{Digest: subject.Digest.String(), Reason: fmt.Sprintf(format, args...)}
}
