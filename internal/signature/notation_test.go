package signature_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"strata.dev/strata/internal/signature"
	"strata.dev/strata/internal/testenv"
)

func policy(t *testing.T, level string, scopes ...string) []byte {
	t.Helper()
	statement := map[string]any{"name": "packs", "registryScopes": scopes, "signatureVerification": map[string]any{"level": level}}
	if level != "skip" {
		statement["trustStores"], statement["trustedIdentities"] = []string{"ca:acme"}, []string{"*"}
	}
	doc := map[string]any{"version": "1.0", "trustPolicies": []any{statement}}
	data, err := json.Marshal(doc)
	must(t, err)
	return data
}

// A pack signed by notation with a certificate the trust store's CA issued
// verifies, through the referrers API and the referrers tag; unsigned,
// signed under another CA, a signature of another digest, a tag moved
// after signing and a repository no policy covers are each refused with
// their reason.
func TestNotationSignaturesAreCheckedAgainstTheTrustPolicy(t *testing.T) {
	t.Parallel()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	ctx := context.Background()
	acme, other := testenv.NewNotationSigner(t, "acme"), testenv.NewNotationSigner(t, "other")
	stores := map[string][]byte{"ca.acme.crt": acme.RootPEM}
	for _, api := range []bool{true, false} {
		name := map[bool]string{true: "api/pack", false: "tagged/pack"}[api]
		repo := repository(t, reg, name, api)
		scope := reg.Host + "/" + name
		v, err := signature.NewNotation(policy(t, "strict", scope), stores)
		must(t, err)

		signed := pushArtifact(t, repo, "1.0.0", "signed pack")
		acme.Sign(t, repo, signed)
		if err := v.Verify(ctx, repo, scope, signed); err != nil {
			t.Errorf("referrers API %v: a pack signed under the trusted CA: %v", api, err)
		}

		unsigned := pushArtifact(t, repo, "2.0.0", "unsigned pack")
		refused(t, v.Verify(ctx, repo, scope, unsigned), "not signed: no Notary Project signature")

		byOther := pushArtifact(t, repo, "3.0.0", "pack signed under another CA")
		other.Sign(t, repo, byOther)
		refused(t, v.Verify(ctx, repo, scope, byOther), "the trust policy refuses")

		elsewhere := pushArtifact(t, repo, "4.0.0", "pack whose signature is another's")
		referTo(t, repo, signed, elsewhere)
		refused(t, v.Verify(ctx, repo, scope, elsewhere), "a Notary Project signature of "+signed.Digest.String()+", not of "+elsewhere.Digest.String())

		moved := pushArtifact(t, repo, "1.0.0", "signed pack, changed afterwards")
		refused(t, v.Verify(ctx, repo, scope, moved), "not signed: ")

		elsewhereScope, err := signature.NewNotation(policy(t, "strict", "registry.test/other"), stores)
		must(t, err)
		refused(t, elsewhereScope.Verify(ctx, repo, scope, signed), "no trust policy applies to "+scope)

		skip, err := signature.NewNotation(policy(t, "skip", "*"), stores)
		must(t, err)
		if err := skip.Verify(ctx, repo, scope, unsigned); err != nil {
			t.Errorf("a policy whose level is skip refused: %v", err)
		}
	}
}

// What a team writes wrong is said, naming the key or policy.
func TestNotationTrustConfigurationErrors(t *testing.T) {
	t.Parallel()
	acme := testenv.NewNotationSigner(t, "acme")
	for _, c := range []struct {
		name   string
		policy []byte
		stores map[string][]byte
		want   string
	}{
		{"not JSON", []byte("{"), map[string][]byte{"ca.acme.crt": acme.RootPEM}, "not a trust policy document"},
		{"unknown field", []byte(`{"version":"1.0","policies":[]}`), nil, `unknown field "policies"`},
		{"key without type", policy(t, "strict", "*"), map[string][]byte{"acme.crt": acme.RootPEM}, `trust store key "acme.crt": want <type>.<store name>.crt`},
		{"not a certificate", policy(t, "strict", "*"), map[string][]byte{"ca.acme.crt": []byte("hello")}, `trust store key "ca.acme.crt": holds no PEM certificate`},
		{"store missing", policy(t, "strict", "*"), map[string][]byte{"ca.other.crt": acme.RootPEM}, `trust policy "packs" names trust store "ca:acme": the trust store Secret has no key ca.acme.crt`},
		{"bad level", policy(t, "loose", "*"), map[string][]byte{"ca.acme.crt": acme.RootPEM}, "trust policy document: "},
	} {
		_, err := signature.NewNotation(c.policy, c.stores)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error saying %q", c.name, err, c.want)
		}
	}
}
