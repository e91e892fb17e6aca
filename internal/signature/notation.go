package signature

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/notaryproject/notation-go"
	notationregistry "github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
)

// How notation publishes a signature of an OCI manifest: a manifest of
// artifact type application/vnd.cncf.notary.signature referring to it
// (the referrers API, or the referrers tag where a registry lacks it),
// whose one layer is a JWS or COSE envelope.
var notationEnvelopes = []string{"application/jose+json", "application/cose"}

// Notation verifies Notary Project signatures with notation-go's own
// verifier, against a trust policy document and the trust stores it names.
type Notation struct {
	id       string
	verifier notation.Verifier
}

// NewNotation trusts what a trust policy (trustpolicy.json, version 1.0)
// lets its trust stores sign. stores holds the trust stores' certificates,
// PEM, by key "<type>.<store name>" with an optional .crt or .pem, where
// the type is ca, signingAuthority or tsa: "ca.acme.crt" is the store the
// policy names "ca:acme". Verification is offline: a certificate's
// revocation is checked only where it names where to ask.
func NewNotation(policyJSON []byte, stores map[string][]byte) (*Notation, error) {
	var doc trustpolicy.Document
	dec := json.NewDecoder(bytes.NewReader(policyJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("trust policy: not a trust policy document: %w", err)
	}
	store, err := newTrustStore(stores)
	if err != nil {
		return nil, err
	}
	for _, p := range doc.TrustPolicies {
		for _, named := range p.TrustStores {
			typ, name, _ := strings.Cut(named, ":")
			if p.SignatureVerification.VerificationLevel != trustpolicy.LevelSkip.Name && store.certs[truststore.Type(typ)][name] == nil {
				return nil, fmt.Errorf("trust policy %q names trust store %q: the trust store Secret has no key %s.%s.crt", p.Name, named, typ, name)
			}
		}
	}
	v, err := verifier.New(&doc, store, nil)
	if err != nil {
		return nil, fmt.Errorf("trust policy document: %w", err)
	}
	h := sha256.New()
	h.Write(policyJSON)
	for _, k := range slices.Sorted(maps.Keys(stores)) {
		h.Write([]byte{0})
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write(stores[k])
	}
	return &Notation{id: "notation:" + hex.EncodeToString(h.Sum(nil))[:16], verifier: v}, nil
}

// ID is "notation:" and a hash of the policy and trust stores.
func (n *Notation) ID() string { return n.id }

// skipper is notation's own verifier telling that the trust policy for a
// reference says not to verify (verification level "skip").
type skipper interface {
	SkipVerify(ctx context.Context, opts notation.VerifierVerifyOptions) (bool, *trustpolicy.VerificationLevel, error)
}

// Verify accepts subject when one of the Notary Project signatures
// referring to it passes the trust policy that applies to name (the
// repository, host/path, as policies scope it).
func (n *Notation) Verify(ctx context.Context, repo Repository, name string, subject ocispec.Descriptor) error {
	opts := notation.VerifierVerifyOptions{ArtifactReference: name + "@" + subject.Digest.String()}
	if s, ok := n.verifier.(skipper); ok {
		skip, _, err := s.SkipVerify(ctx, opts)
		var none notation.NoApplicableTrustPolicyError
		if errors.As(err, &none) {
			return refuse(subject, "no trust policy applies to %s", name)
		}
		if err != nil {
			return err
		}
		if skip {
			return nil // the policy for this scope says so
		}
	}
	refs, err := registry.Referrers(ctx, repo, subject, notationregistry.ArtifactTypeNotation)
	if err != nil && !errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("list the signatures referring to %s: %w", subject.Digest, err)
	}
	var found []string
	for i, ref := range refs {
		if i == maxReferrers {
			break
		}
		var m ocispec.Manifest
		if err := fetchJSON(ctx, repo, ref, &m); err != nil {
			return err
		}
		if len(m.Layers) != 1 || !slices.Contains(notationEnvelopes, m.Layers[0].MediaType) {
			found = append(found, "a Notary Project signature manifest without one JWS or COSE envelope")
			continue
		}
		envelope, err := fetch(ctx, repo, m.Layers[0])
		if err != nil {
			return err
		}
		opts.SignatureMediaType = m.Layers[0].MediaType
		outcome, err := n.verifier.Verify(ctx, subject, envelope, opts)
		if err != nil {
			if of := signedDigest(outcome); of != "" && of != subject.Digest.String() {
				found = append(found, fmt.Sprintf("a Notary Project signature of %s, not of %s", of, subject.Digest))
			} else {
				found = append(found, "a Notary Project signature the trust policy refuses: "+err.Error())
			}
			continue
		}
		return nil
	}
	if len(found) == 0 {
		return refuse(subject, "not signed: no Notary Project signature refers to it")
	}
	sort.Strings(found)
	return refuse(subject, "%s", strings.Join(slices.Compact(found), "; "))
}

// signedDigest is the digest a verified envelope's payload names, or ""
// when the envelope was not read that far.
func signedDigest(o *notation.VerificationOutcome) string {
	if o == nil || o.EnvelopeContent == nil {
		return ""
	}
	var payload struct {
		TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
	}
	if json.Unmarshal(o.EnvelopeContent.Payload.Content, &payload) != nil {
		return ""
	}
	return payload.TargetArtifact.Digest.String()
}

// trustStore holds a Secret's certificates by store type and name.
type trustStore struct {
	certs map[truststore.Type]map[string][]*x509.Certificate
}

func newTrustStore(files map[string][]byte) (*trustStore, error) {
	s := &trustStore{certs: map[truststore.Type]map[string][]*x509.Certificate{}}
	for _, key := range slices.Sorted(maps.Keys(files)) {
		base := strings.TrimSuffix(strings.TrimSuffix(key, ".crt"), ".pem")
		typ, name, ok := strings.Cut(base, ".")
		if !ok || name == "" || !slices.Contains(truststore.Types, truststore.Type(typ)) {
			return nil, fmt.Errorf("trust store key %q: want <type>.<store name>.crt, the type ca, signingAuthority or tsa", key)
		}
		certs, err := parseCertificates(files[key])
		if err != nil {
			return nil, fmt.Errorf("trust store key %q: %w", key, err)
		}
		if err := truststore.ValidateCertificates(certs); err != nil {
			return nil, fmt.Errorf("trust store key %q: %w", key, err)
		}
		t := truststore.Type(typ)
		if s.certs[t] == nil {
			s.certs[t] = map[string][]*x509.Certificate{}
		}
		s.certs[t][name] = append(s.certs[t][name], certs...)
	}
	return s, nil
}

// GetCertificates is notation's view of a trust store.
func (s *trustStore) GetCertificates(_ context.Context, t truststore.Type, name string) ([]*x509.Certificate, error) {
	certs := s.certs[t][name]
	if len(certs) == 0 {
		return nil, truststore.TrustStoreError{Msg: fmt.Sprintf("the trust store %q of type %q does not exist", name, t)}
	}
	return certs, nil
}

// parseCertificates reads PEM certificates (or one DER certificate).
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		c, err := x509.ParseCertificates(data)
		if err != nil || len(c) == 0 {
			return nil, errors.New("holds no PEM certificate")
		}
		out = c
	}
	return out, nil
}
