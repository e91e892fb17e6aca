package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	helmregistry "helm.sh/helm/v4/pkg/registry"
	"oras.land/oras-go/v2/registry/remote"

	"strata.dev/strata/internal/signature"
	"strata.dev/strata/internal/testenv"
)

// keyFiles writes a P-256 key pair: the private key as openssl genpkey
// writes it (PKCS#8), or encrypted as cosign generate-key-pair writes it;
// and the public key. It returns their paths.
func keyFiles(t *testing.T, password string) (private, public string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	must(t, err)
	block := &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	if password != "" {
		sealed, err := encrypted.Encrypt(der, []byte(password))
		must(t, err)
		block = &pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: sealed}
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	must(t, err)
	dir := t.TempDir()
	private, public = filepath.Join(dir, "signing.key"), filepath.Join(dir, "signing.pub")
	writeFile(t, private, string(pem.EncodeToMemory(block)))
	writeFile(t, public, string(pub))
	return private, public
}

// Packs pushed with --sign-key verify with the matching public key — a
// PKCS#8 key, and cosign's encrypted key whose password comes from the
// environment — and are refused with another key or unsigned, by
// `pack verify` and by `pack pull --verify-key`.
func TestPackSigningCommands(t *testing.T) {
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	endpoint := srv.Endpoint("signed")
	cache := t.TempDir()
	plain, plainPub := keyFiles(t, "")
	sealed, sealedPub := keyFiles(t, "s3cret-pass")
	_, otherPub := keyFiles(t, "")
	hello, spegel, unsigned := filepath.Join(packCentral, "hello-universe-1.2.0"), filepath.Join(packCentral, "spegel-0.0.30"), filepath.Join(packCentral, "spegel-0.0.18")

	if out, errOut, code := runSaying(t, "pack", "push", hello, endpoint, "--plain-http", "--sign-key", plain); code != ExitOK || !strings.Contains(out, "signed") {
		t.Fatalf("push --sign-key: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := runSaying(t, "pack", "push", spegel, endpoint, "--plain-http", "--sign-key", sealed); code != ExitUsage || !strings.Contains(errOut, "COSIGN_PASSWORD") {
		t.Errorf("an encrypted key without its password: exit %d\n%s", code, errOut)
	}
	t.Setenv("COSIGN_PASSWORD", "s3cret-pass")
	if out, errOut, code := runSaying(t, "pack", "push", spegel, endpoint, "--plain-http", "--sign-key", sealed); code != ExitOK || !strings.Contains(out, "signed") {
		t.Fatalf("push --sign-key with cosign's encrypted key: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, _, code := runSaying(t, "pack", "push", unsigned, endpoint, "--plain-http"); code != ExitOK {
		t.Fatalf("push without signing: exit %d", code)
	}

	verify := func(ref, key string) (string, int) {
		out, errOut, code := runSaying(t, "pack", "verify", ref, "--registry", endpoint, "--plain-http", "--key", key)
		return out + errOut, code
	}
	for ref, key := range map[string]string{"hello-universe:1.2.0": plainPub, "spegel:0.0.30": sealedPub} {
		if out, code := verify(ref, key); code != ExitOK || !strings.Contains(out, "signature verified") {
			t.Errorf("verify %s: exit %d\n%s", ref, code, out)
		}
	}
	if out, code := verify("hello-universe:1.2.0", otherPub); code != ExitFail || !strings.Contains(out, "signature: ") || !strings.Contains(out, "another key") {
		t.Errorf("verify with another key: exit %d\n%s", code, out)
	}
	if out, code := verify("spegel:0.0.18", plainPub); code != ExitFail || !strings.Contains(out, "not signed: ") || !strings.Contains(out, "spegel:0.0.18 (sha256:") {
		t.Errorf("verify an unsigned pack: exit %d\n%s", code, out)
	}

	dest := t.TempDir()
	pull := func(ref, key string) (string, int) {
		out, errOut, code := runSaying(t, "pack", "pull", ref, "--registry", endpoint, "--plain-http", "--cache-dir", cache, "-d", dest, "--verify-key", key)
		return out + errOut, code
	}
	if out, code := pull("hello-universe:1.2.0", plainPub); code != ExitOK {
		t.Errorf("pull --verify-key of a signed pack: exit %d\n%s", code, out)
	}
	if out, code := pull("spegel:0.0.18", plainPub); code != ExitFail || !strings.Contains(out, "signature: ") {
		t.Errorf("pull --verify-key of an unsigned pack: exit %d\n%s", code, out)
	}
	if matches, _ := filepath.Glob(filepath.Join(dest, "spegel*")); len(matches) > 0 {
		t.Errorf("the refused pack was written: %v", matches)
	}
}

// runSaying runs the CLI and returns its outputs, the error it ends with
// appended to standard error as `strata` prints it.
func runSaying(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCommand(&out, &errOut)
	root.SetArgs(args)
	err := root.Execute()
	if err != nil {
		fmt.Fprintln(&errOut, "Error:", err)
	}
	return out.String(), errOut.String(), exitCode(err)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Offline, a chart layer with chart.verify is checked with --verify-key:
// without it nothing is planned, with the signer's key the chart installs,
// with another key it is refused for its signature.
func TestDeployVerifiesChartLayersWithTheVerifyKey(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	private, public := keyFiles(t, "")
	_, otherPublic := keyFiles(t, "")
	data, err := os.ReadFile("../../../shared/testdata/pack-central/spegel-0.0.30/charts/spegel-0.0.30.tgz")
	must(t, err)
	pusher, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP())
	must(t, err)
	_, err = pusher.Push(data, srv.Host+"/charts/spegel:v0.0.30")
	must(t, err)
	repo, err := remote.NewRepository(srv.Host + "/charts/spegel")
	must(t, err)
	repo.PlainHTTP = true
	manifest, err := repo.Resolve(t.Context(), "v0.0.30")
	must(t, err)
	pem, err := os.ReadFile(private)
	must(t, err)
	key, err := signature.ParsePrivateKey(pem, nil)
	must(t, err)
	_, err = signature.SignCosign(t.Context(), repo, manifest, key)
	must(t, err)

	profile := filepath.Join(t.TempDir(), "profile.yaml")
	writeFile(t, profile, fmt.Sprintf(`apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: mirror-1.0.0}
spec:
  name: mirror
  version: 1.0.0
  type: add-on
  layers:
    - name: mirror
      kind: addon
      chart:
        repository: oci://%s/charts
        name: spegel
        version: v0.0.30
        verify: {provider: cosign, publicKeySecretRef: {name: chart-signer}}
`, srv.Host))
	_, kubeconfig := workload(t)
	deploy := func(extra ...string) (string, int) {
		out, errOut, code := runSaying(t, append([]string{"deploy", "--dry-run", "--plain-http", "--kubeconfig", kubeconfig, "-f", profile}, extra...)...)
		return out + errOut, code
	}
	out, code := deploy()
	if code != ExitUsage || !strings.Contains(out, `layer "mirror": chart.verify is set: pass --verify-key FILE`) {
		t.Errorf("without --verify-key: exit %d\n%s", code, out)
	}
	out, code = deploy("--verify-key", public)
	if code != ExitOK || !strings.Contains(out, "mirror  install") {
		t.Errorf("with the signer's key: exit %d\n%s", code, out)
	}
	// The plan refuses the layer, as it refuses one the cluster cannot run.
	out, _ = deploy("--verify-key", otherPublic)
	if !strings.Contains(out, "mirror  refuse") || !strings.Contains(out, "signature: a signature by another key") || !strings.Contains(out, manifest.Digest.String()) {
		t.Errorf("with another key:\n%s", out)
	}
}
