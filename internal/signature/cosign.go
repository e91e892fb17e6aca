package signature

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	sigsig "github.com/sigstore/sigstore/pkg/signature"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
)

// How cosign publishes signatures of an OCI manifest:
//   - a Sigstore bundle (DSSE envelope of an in-toto statement whose
//     subject is the manifest digest) in a manifest referring to it: the
//     OCI referrers API, or the referrers tag sha256-<hex> where a
//     registry lacks it (cosign's --new-bundle-format, cosign 3's default);
//   - older cosign: a manifest tagged sha256-<hex>.sig whose layers are
//     "simple signing" payloads naming the digest, each signature in an
//     annotation.
const (
	bundleMediaType         = "application/vnd.dev.sigstore.bundle.v0.3+json"
	bundleMediaTypePrefix   = "application/vnd.dev.sigstore.bundle"
	inTotoPayloadType       = "application/vnd.in-toto+json"
	inTotoStatementType     = "https://in-toto.io/Statement/v1"
	cosignSignPredicate     = "https://sigstore.dev/cosign/sign/v1"
	simpleSigningMediaType  = "application/vnd.dev.cosign.simplesigning.v1+json"
	simpleSigningAnnotation = "dev.cosignproject.cosign/signature"
	// maxSignatureBytes bounds what is read of a signature object: they
	// are small, and a registry's answer is untrusted input.
	maxSignatureBytes = 1 << 20
	// maxReferrers bounds how many referrers of one manifest are read.
	maxReferrers = 32
)

// Cosign verifies cosign signatures made with one key pair.
type Cosign struct {
	id       string
	verifier *verify.Verifier
	legacy   sigsig.Verifier
}

// NewCosign trusts the holder of the private key of a PEM public key.
func NewCosign(publicKeyPEM []byte) (*Cosign, error) {
	key, err := ParsePublicKey(publicKeyPEM)
	if err != nil {
		return nil, err
	}
	id, err := fingerprint(key)
	if err != nil {
		return nil, err
	}
	legacy, err := sigsig.LoadDefaultVerifier(key)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	// The bundle names its key by a hint cosign and Strata set differently;
	// one key is trusted whatever the hint.
	trusted := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(legacy, time.Time{}, time.Time{}), nil
	})
	// Key-based and offline: no transparency log entry or timestamp to
	// require, and a key does not expire.
	v, err := verify.NewVerifier(trusted, verify.WithNoObserverTimestamps())
	if err != nil {
		return nil, err
	}
	return &Cosign{id: "cosign:" + id, verifier: v, legacy: legacy}, nil
}

// ID is "cosign:" and the key's fingerprint.
func (c *Cosign) ID() string { return c.id }

// Verify looks for a bundle among subject's referrers, then for the older
// .sig tag, and accepts the first signature made by the key over subject.
func (c *Cosign) Verify(ctx context.Context, repo Repository, _ string, subject ocispec.Descriptor) error {
	var found []string
	bundles, err := c.bundlesOf(ctx, repo, subject)
	if err != nil {
		return err
	}
	for _, b := range bundles {
		problem := c.checkBundle(b, subject)
		if problem == "" {
			return nil
		}
		found = append(found, problem)
	}
	legacy, err := c.checkLegacy(ctx, repo, subject)
	if err != nil {
		return err
	}
	if legacy == "" {
		return nil
	}
	if legacy != noLegacy {
		found = append(found, legacy)
	}
	if len(found) == 0 {
		return refuse(subject, "not signed: no cosign signature refers to it (no Sigstore bundle among its referrers, no tag %s)", legacyTag(subject))
	}
	slices.Sort(found)
	return refuse(subject, "%s", strings.Join(slices.Compact(found), "; "))
}

// bundlesOf reads the Sigstore bundles that refer to subject.
func (c *Cosign) bundlesOf(ctx context.Context, repo Repository, subject ocispec.Descriptor) ([]*bundle.Bundle, error) {
	refs, err := registry.Referrers(ctx, repo, subject, "")
	if err != nil && !errors.Is(err, errdef.ErrNotFound) {
		return nil, fmt.Errorf("list the signatures referring to %s: %w", subject.Digest, err)
	}
	var out []*bundle.Bundle
	for i, ref := range refs {
		if i == maxReferrers {
			break
		}
		// cosign has written the bundle type as the artifact type and as
		// an empty config's: read the layers to tell.
		if ref.ArtifactType != "" && ref.ArtifactType != ocispec.MediaTypeEmptyJSON && !strings.HasPrefix(ref.ArtifactType, bundleMediaTypePrefix) {
			continue
		}
		var m ocispec.Manifest
		if err := fetchJSON(ctx, repo, ref, &m); err != nil {
			return nil, err
		}
		for _, l := range m.Layers {
			if !strings.HasPrefix(l.MediaType, bundleMediaTypePrefix) {
				continue
			}
			data, err := fetch(ctx, repo, l)
			if err != nil {
				return nil, err
			}
			b := &bundle.Bundle{}
			if err := b.UnmarshalJSON(data); err == nil {
				out = append(out, b)
			}
		}
	}
	return out, nil
}

// checkBundle says what is wrong with a bundle as a signature of subject,
// or "" when it is one.
func (c *Cosign) checkBundle(b *bundle.Bundle, subject ocispec.Descriptor) string {
	env, err := b.Envelope()
	if err != nil {
		return "a Sigstore bundle that signs no in-toto statement"
	}
	st, err := env.Statement()
	if err != nil || st.GetPredicateType() != cosignSignPredicate {
		return "a Sigstore bundle that is not a cosign signature"
	}
	want, err := hex.DecodeString(subject.Digest.Encoded())
	if err != nil || subject.Digest.Algorithm() != "sha256" {
		return "a digest that is not SHA-256"
	}
	if _, err := c.verifier.Verify(b, verify.NewPolicy(verify.WithArtifactDigest("sha256", want), verify.WithKey())); err != nil {
		// Only a refusal pays for a second check, to tell why.
		if _, err := c.verifier.Verify(b, verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithKey())); err != nil {
			return "a signature by another key than the trusted one"
		}
		var covers []string
		for _, s := range st.GetSubject() {
			for alg, d := range s.GetDigest() {
				covers = append(covers, alg+":"+d)
			}
		}
		return fmt.Sprintf("a signature of %s, not of %s", strings.Join(covers, ", "), subject.Digest)
	}
	return ""
}

// noLegacy marks the absence of an older .sig tag.
const noLegacy = "\x00none"

// checkLegacy verifies the older cosign signatures at the .sig tag: ""
// when one is by the key over subject, noLegacy when there is none, else
// what is wrong with them.
func (c *Cosign) checkLegacy(ctx context.Context, repo Repository, subject ocispec.Descriptor) (string, error) {
	desc, err := repo.Resolve(ctx, legacyTag(subject))
	if errors.Is(err, errdef.ErrNotFound) {
		return noLegacy, nil
	}
	if err != nil {
		return "", fmt.Errorf("read the signature tag %s: %w", legacyTag(subject), err)
	}
	var m ocispec.Manifest
	if err := fetchJSON(ctx, repo, desc, &m); err != nil {
		return "", err
	}
	problem := noLegacy
	for _, l := range m.Layers {
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[simpleSigningAnnotation])
		if l.MediaType != simpleSigningMediaType || err != nil || len(sig) == 0 {
			continue
		}
		payload, err := fetch(ctx, repo, l)
		if err != nil {
			return "", err
		}
		if err := c.legacy.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)); err != nil {
			problem = "a signature by another key than the trusted one"
			continue
		}
		var simple struct {
			Critical struct {
				Image struct {
					Digest string `json:"docker-manifest-digest"`
				} `json:"image"`
			} `json:"critical"`
		}
		if err := json.Unmarshal(payload, &simple); err != nil {
			problem = "a signed payload that is not cosign's simple signing format"
			continue
		}
		if simple.Critical.Image.Digest != subject.Digest.String() {
			problem = fmt.Sprintf("a signature of %s, not of %s", simple.Critical.Image.Digest, subject.Digest)
			continue
		}
		return "", nil
	}
	return problem, nil
}

// legacyTag is where older cosign puts a manifest's signatures.
func legacyTag(subject ocispec.Descriptor) string {
	return subject.Digest.Algorithm().String() + "-" + subject.Digest.Encoded() + ".sig"
}

func fetch(ctx context.Context, repo content.Fetcher, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > maxSignatureBytes {
		return nil, fmt.Errorf("signature object %s is %d bytes, more than the %d a signature may be", desc.Digest, desc.Size, maxSignatureBytes)
	}
	data, err := content.FetchAll(ctx, repo, desc)
	if err != nil {
		return nil, fmt.Errorf("read signature object %s: %w", desc.Digest, err)
	}
	return data, nil
}

func fetchJSON(ctx context.Context, repo content.Fetcher, desc ocispec.Descriptor, v any) error {
	data, err := fetch(ctx, repo, desc)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("signature manifest %s: %w", desc.Digest, err)
	}
	return nil
}

// SignCosign signs subject with key the way cosign's new bundle format
// does — a DSSE envelope of an in-toto statement naming the digest, in a
// Sigstore bundle — and attaches it to subject as a referrer (oras-go
// falls back to the referrers tag where the registry lacks the API).
func SignCosign(ctx context.Context, repo oras.Target, subject ocispec.Descriptor, key crypto.Signer) (ocispec.Descriptor, error) {
	statement, err := json.Marshal(map[string]any{
		"_type":         inTotoStatementType,
		"subject":       []map[string]any{{"digest": map[string]string{subject.Digest.Algorithm().String(): subject.Digest.Encoded()}}},
		"predicateType": cosignSignPredicate,
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	kp, err := newKeypair(key)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	pb, err := sign.Bundle(&sign.DSSEData{Data: statement, PayloadType: inTotoPayloadType}, kp, sign.BundleOptions{Context: ctx})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("sign %s: %w", subject.Digest, err)
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	data, err := b.MarshalJSON()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	layer := content.NewDescriptorFromBytes(bundleMediaType, data)
	if err := pushIfAbsent(ctx, repo, layer, data); err != nil {
		return ocispec.Descriptor{}, err
	}
	return oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, bundleMediaType, oras.PackManifestOptions{
		Subject: &subject,
		Layers:  []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{
			"dev.sigstore.bundle.content":       "dsse-envelope",
			"dev.sigstore.bundle.predicateType": cosignSignPredicate,
		},
	})
}

func pushIfAbsent(ctx context.Context, repo content.Pusher, desc ocispec.Descriptor, data []byte) error {
	err := repo.Push(ctx, desc, bytes.NewReader(data))
	if errors.Is(err, errdef.ErrAlreadyExists) {
		return nil
	}
	return err
}

// keypair is a private key as sigstore-go's signer takes it.
type keypair struct {
	key     crypto.Signer
	details sigsig.AlgorithmDetails
	hint    []byte
}

func newKeypair(key crypto.Signer) (*keypair, error) {
	details, err := sigsig.GetDefaultAlgorithmDetails(key.Public())
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	id, err := fingerprint(key.Public())
	if err != nil {
		return nil, err
	}
	return &keypair{key: key, details: details, hint: []byte(id)}, nil
}

func (k *keypair) GetHashAlgorithm() protocommon.HashAlgorithm { return k.details.GetProtoHashType() }
func (k *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.details.GetSignatureAlgorithm()
}
func (k *keypair) GetHint() []byte                { return k.hint }
func (k *keypair) GetPublicKey() crypto.PublicKey { return k.key.Public() }
func (k *keypair) GetKeyAlgorithm() string {
	switch k.details.GetKeyType() {
	case sigsig.ECDSA:
		return "ECDSA"
	case sigsig.RSA:
		return "RSA"
	case sigsig.ED25519:
		return "ED25519"
	}
	return ""
}

func (k *keypair) GetPublicKeyPem() (string, error) {
	data, err := cryptoutils.MarshalPublicKeyToPEM(k.key.Public())
	return string(data), err
}

// SignData signs data's digest (Ed25519: data itself) and returns the
// signature and what was signed, as sigstore-go's keypairs do.
func (k *keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	hf := k.details.GetHashType()
	signed := data
	if hf != crypto.Hash(0) {
		h := hf.New()
		h.Write(data)
		signed = h.Sum(nil)
	}
	sig, err := k.key.Sign(rand.Reader, signed, hf)
	return sig, signed, err
}
