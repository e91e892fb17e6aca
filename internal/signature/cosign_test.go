package signature_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	sigsig "github.com/sigstore/sigstore/pkg/signature"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"

	"strata.dev/strata/internal/signature"
	"strata.dev/strata/internal/testenv"
)

// key makes an ECDSA P-256 key pair and its verifier.
func key(t *testing.T) (*ecdsa.PrivateKey, *signature.Cosign) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	pub, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	must(t, err)
	v, err := signature.NewCosign(pub)
	must(t, err)
	return k, v
}

// pushArtifact pushes a small artifact under tag and returns its manifest.
func pushArtifact(t *testing.T, repo oras.Target, tag, body string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	blob := content.NewDescriptorFromBytes("application/vnd.test.pack", []byte(body))
	must(t, repo.Push(ctx, blob, bytes.NewReader([]byte(body))))
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.test", oras.PackManifestOptions{Layers: []ocispec.Descriptor{blob}})
	must(t, err)
	must(t, repo.Tag(ctx, desc, tag))
	return desc
}

func repository(t *testing.T, reg *testenv.Registry, name string, referrersAPI bool) *remote.Repository {
	t.Helper()
	repo, err := remote.NewRepository(reg.Host + "/" + name)
	must(t, err)
	repo.PlainHTTP = true
	if !referrersAPI {
		// As on a registry without the referrers API: the referrers tag.
		must(t, repo.SetReferrersCapability(false))
	}
	return repo
}

// A manifest signed with the trusted key verifies — through the
// referrers API and through the referrers tag — and every other case is
// refused with its reason: no signature, another key, a signature of
// another digest, the tag moved to other content after signing.
func TestCosignSignaturesAreCheckedAgainstTheKey(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	ctx := context.Background()
	trusted, verifier := key(t)
	other, _ := key(t)
	for _, api := range []bool{true, false} {
		repo := repository(t, reg, map[bool]string{true: "api/pack", false: "tagged/pack"}[api], api)

		signed := pushArtifact(t, repo, "1.0.0", "signed pack")
		_, err := signature.SignCosign(ctx, repo, signed, trusted)
		must(t, err)
		if err := verifier.Verify(ctx, repo, "", signed); err != nil {
			t.Errorf("referrers API %v: a pack signed with the trusted key: %v", api, err)
		}

		unsigned := pushArtifact(t, repo, "2.0.0", "unsigned pack")
		refused(t, verifier.Verify(ctx, repo, "", unsigned), "not signed: ")

		byOther := pushArtifact(t, repo, "3.0.0", "pack signed by someone else")
		_, err = signature.SignCosign(ctx, repo, byOther, other)
		must(t, err)
		refused(t, verifier.Verify(ctx, repo, "", byOther), "another key")

		// A signature of another digest, made to refer to this one.
		elsewhere := pushArtifact(t, repo, "4.0.0", "pack whose signature is another's")
		referTo(t, repo, signed, elsewhere)
		refused(t, verifier.Verify(ctx, repo, "", elsewhere), "a signature of sha256:"+signed.Digest.Encoded()+", not of "+elsewhere.Digest.String())

		// The tag moves to other content after signing: what it points at
		// now was never signed.
		moved := pushArtifact(t, repo, "1.0.0", "signed pack, changed afterwards")
		refused(t, verifier.Verify(ctx, repo, "", moved), "not signed: ")
		if err := verifier.Verify(ctx, repo, "", signed); err != nil {
			t.Errorf("the signed content itself still verifies: %v", err)
		}
	}

	// A signature of one digest attached to another: older cosign's .sig
	// tag of the second holding the first's signed payload.
	repo := repository(t, reg, "legacy/pack", true)
	first := pushArtifact(t, repo, "1.0.0", "first")
	second := pushArtifact(t, repo, "2.0.0", "second")
	attachLegacy(t, repo, first, first, trusted)
	if err := verifier.Verify(ctx, repo, "", first); err != nil {
		t.Errorf("older cosign's .sig signature by the trusted key: %v", err)
	}
	attachLegacy(t, repo, second, first, trusted)
	refused(t, verifier.Verify(ctx, repo, "", second), "a signature of "+first.Digest.String()+", not of "+second.Digest.String())
}

func refused(t *testing.T, err error, want string) {
	t.Helper()
	t.Log(err)
	if !signature.IsRefusal(err) || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want a refusal saying %q", err, want)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "signature: ") {
		t.Errorf("%q does not say it is about the signature", err)
	}
}

// referTo copies the signatures referring to from so that they refer to
// to as well, unchanged.
func referTo(t *testing.T, repo *remote.Repository, from, to ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	refs, err := registry.Referrers(ctx, repo, from, "")
	must(t, err)
	for _, ref := range refs {
		data, err := content.FetchAll(ctx, repo, ref)
		must(t, err)
		var m ocispec.Manifest
		must(t, json.Unmarshal(data, &m))
		m.Subject = &to
		data, err = json.Marshal(m)
		must(t, err)
		must(t, repo.Push(ctx, content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, data), bytes.NewReader(data)))
	}
}

// attachLegacy tags, as cosign before its bundle format did, at
// sha256-<hex of at>.sig a simple-signing payload naming covers, signed
// with key by sigstore's own signer.
func attachLegacy(t *testing.T, repo oras.Target, at, covers ocispec.Descriptor, key crypto.Signer) {
	t.Helper()
	ctx := context.Background()
	payload, err := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": "registry.test/pack"},
			"image":    map[string]string{"docker-manifest-digest": covers.Digest.String()},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
	must(t, err)
	signer, err := sigsig.LoadSigner(key, crypto.SHA256)
	must(t, err)
	sig, err := signer.SignMessage(bytes.NewReader(payload))
	must(t, err)
	layer := content.NewDescriptorFromBytes("application/vnd.dev.cosign.simplesigning.v1+json", payload)
	layer.Annotations = map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)}
	if err := repo.Push(ctx, layer, bytes.NewReader(payload)); err != nil && !strings.Contains(err.Error(), "exists") {
		t.Fatal(err)
	}
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.dev.cosign.artifact.sig.v1+json", oras.PackManifestOptions{Layers: []ocispec.Descriptor{layer}})
	must(t, err)
	must(t, repo.Tag(ctx, desc, "sha256-"+at.Digest.Encoded()+".sig"))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
