package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/notaryproject/notation-go"
	notationregistry "github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/signer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// NotationSigner is a certificate authority and a code-signing certificate
// it issued, as a team signing with notation holds them.
type NotationSigner struct {
	// RootPEM is the authority's certificate: what a trust store holds.
	RootPEM []byte
	signer  notation.Signer
}

// NewNotationSigner makes an authority named org and its signing
// certificate, valid for a day.
func NewNotationSigner(t testing.TB, org string) *NotationSigner {
	t.Helper()
	rootKey := ecKey(t)
	now := time.Now()
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: org + " root", Organization: []string{org}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	if root, err = x509.ParseCertificate(rootDER); err != nil {
		t.Fatal(err)
	}
	leafKey := ecKey(t)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: org + " packs", Organization: []string{org}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, root, leafKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	if leaf, err = x509.ParseCertificate(leafDER); err != nil {
		t.Fatal(err)
	}
	s, err := signer.NewGenericSigner(leafKey, []*x509.Certificate{leaf, root})
	if err != nil {
		t.Fatal(err)
	}
	return &NotationSigner{RootPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}), signer: s}
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Sign signs a manifest of repo with notation's own signing code, as
// `notation sign` does: a JWS envelope referring to it.
func (s *NotationSigner) Sign(t testing.TB, repo *remote.Repository, subject ocispec.Descriptor) {
	t.Helper()
	_, err := notation.Sign(context.Background(), s.signer, notationregistry.NewRepository(repo), notation.SignOptions{
		SignerSignOptions: notation.SignerSignOptions{SignatureMediaType: "application/jose+json"},
		ArtifactReference: repo.Reference.String() + "@" + subject.Digest.String(),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// NotationPolicy is a trust policy document trusting, for the repositories
// scopes name, what the trust store "ca:<store>" issued.
func NotationPolicy(store string, scopes ...string) []byte {
	doc, _ := json.Marshal(map[string]any{"version": "1.0", "trustPolicies": []any{map[string]any{
		"name": "packs", "registryScopes": scopes, "signatureVerification": map[string]string{"level": "strict"},
		"trustStores": []string{"ca:" + store}, "trustedIdentities": []string{"*"},
	}}})
	return doc
}
