package cli

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/signature"
)

// registryFlags say how to reach pack registries. Credentials come from the
// Docker config file, or --username with the password on standard input:
// never from arguments, which other users see in ps.
type registryFlags struct {
	plainHTTP     bool
	caFile        string
	insecure      bool
	username      string
	passwordStdin bool
	cacheDir      string
	verifyKey     string
}

func (f *registryFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.plainHTTP, "plain-http", false, "talk plain HTTP to OCI registries (packs and charts) that have no TLS, e.g. on loopback")
	cmd.Flags().StringVar(&f.caFile, "ca-file", "", "PEM bundle of the CA that signed the registries' certificates")
	cmd.Flags().BoolVar(&f.insecure, "insecure-skip-tls-verify", false, "accept any certificate from the registries")
	cmd.Flags().StringVar(&f.username, "username", "", "registry user (the password is read from standard input with --password-stdin); default: the Docker config file's credentials")
	cmd.Flags().BoolVar(&f.passwordStdin, "password-stdin", false, "read the registry password (or token, without --username) from standard input")
	cmd.Flags().StringVar(&f.cacheDir, "cache-dir", "", "where pulled packs are kept (default: the user cache folder, strata/packs)")
	cmd.Flags().StringVar(&f.verifyKey, "verify-key", "", "cosign public key (PEM): packs from the registries, and the charts of layers with chart.verify, must be signed with its private key, or they are refused")
}

// open connects to the registries at the oci:// endpoints and opens the cache.
func (f *registryFlags) open(endpoints []string, stdin io.Reader) ([]*registry.Registry, *registry.Cache, error) {
	opts := registry.Options{PlainHTTP: f.plainHTTP, InsecureSkipTLSVerify: f.insecure}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, nil, usageError("--ca-file: %v", err)
		}
		opts.CAPEM = pem
	}
	if f.passwordStdin {
		data, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
		if err != nil {
			return nil, nil, usageError("--password-stdin: %v", err)
		}
		secret := strings.TrimRight(string(data), "\r\n")
		if f.username != "" {
			opts.Credentials = &registry.Credentials{Username: f.username, Password: secret}
		} else {
			opts.Credentials = &registry.Credentials{Token: secret}
		}
	} else if f.username != "" {
		return nil, nil, usageError("--username needs --password-stdin: a password on the command line shows in ps")
	}
	if f.verifyKey != "" {
		v, err := readVerifyKey(f.verifyKey)
		if err != nil {
			return nil, nil, usageError("--verify-key: %v", err)
		}
		opts.Verifier = v
	}
	var regs []*registry.Registry
	for _, e := range endpoints {
		ep, err := registry.ParseEndpoint(e)
		if err != nil {
			return nil, nil, usageError("--registry %v", err)
		}
		r, err := registry.New(ep, opts)
		if err != nil {
			return nil, nil, usageError("%v", err)
		}
		regs = append(regs, r)
	}
	dir := f.cacheDir
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir = filepath.Join(base, "strata", "packs")
	}
	cache, err := registry.OpenCache(dir, 0)
	if err != nil {
		return nil, nil, usageError("--cache-dir: %v", err)
	}
	return regs, cache, nil
}

// readVerifyKey reads a cosign public key file.
func readVerifyKey(path string) (*signature.Cosign, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := signature.NewCosign(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// readSignKey reads a private key file; an encrypted cosign key's password
// comes from COSIGN_PASSWORD, never from an argument.
func readSignKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := signature.ParsePrivateKey(data, func() ([]byte, error) {
		pass, ok := os.LookupEnv(signature.PasswordEnv)
		if !ok {
			return nil, fmt.Errorf("%s is an encrypted key: set %s to its password", path, signature.PasswordEnv)
		}
		return []byte(pass), nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// registryContext bounds one command's registry work.
func registryContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Minute)
}

func newPackPushCommand() *cobra.Command {
	var (
		rf      registryFlags
		force   bool
		output  string
		signKey string
	)
	cmd := &cobra.Command{
		Use:   "push DIR... oci://HOST[:PORT]/BASE",
		Short: "Push packs to an OCI registry in Palette's layout",
		Long: `Lints each pack and pushes it as HOST/BASE/spectro-packs/archive/NAME:VERSION,
its single layer the gzipped tar of the pack folder — the layout Palette reads.
A pack with lint errors is refused. A tag that already holds other content is
not moved unless --force. With --sign-key, each pack is signed as cosign signs
(a Sigstore bundle referring to its manifest), so registries that verify admit
it. Prints each pack's digest. Exit code 0 when every pack was pushed (or
already there), 1 otherwise, 2 on usage errors.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return usageError("--output: want table or json, got %q", output)
			}
			regs, _, err := rf.open(args[len(args)-1:], cmd.InOrStdin())
			if err != nil {
				return err
			}
			var key crypto.Signer
			if signKey != "" {
				if key, err = readSignKey(signKey); err != nil {
					return usageError("--sign-key: %v", err)
				}
			}
			var paths []string
			for _, arg := range args[:len(args)-1] {
				found, err := pack.Discover(arg)
				if err != nil {
					return usageError("%v", err)
				}
				paths = append(paths, found...)
			}
			ctx, cancel := registryContext()
			defer cancel()
			results := []registry.Pushed{}
			var failures []string
			for _, path := range paths {
				p, problems := pack.Load(path)
				if err := problems.Err(); err != nil || p == nil || p.PlainChart {
					reason := "not a Palette pack folder"
					if err != nil {
						reason = "lint errors:\n" + err.Error()
					}
					failures = append(failures, fmt.Sprintf("%s: refused, %s", path, reason))
					continue
				}
				out, err := regs[0].Push(ctx, p, force)
				if err == nil && key != nil {
					_, err = regs[0].Sign(ctx, p.Name, p.Version, key)
					out.Signed = err == nil
				}
				if err != nil {
					failures = append(failures, fmt.Sprintf("%s: %v", path, err))
					continue
				}
				results = append(results, out)
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(results); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PACK\tVERSION\tLAYER\tDIGEST\t")
				for _, r := range results {
					var notes []string
					if r.Unchanged {
						notes = append(notes, "already there")
					}
					if r.Signed {
						notes = append(notes, "signed")
					}
					note := ""
					if len(notes) > 0 {
						note = "(" + strings.Join(notes, ", ") + ")"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Version, r.Layer, r.Digest, note)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			for _, f := range failures {
				fmt.Fprintf(cmd.ErrOrStderr(), "error: %s\n", f)
			}
			if len(failures) > 0 {
				return &exitError{code: ExitFail, err: fmt.Errorf("%d of %d packs not pushed", len(failures), len(paths))}
			}
			return nil
		},
	}
	rf.register(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "move a tag that holds other content to this pack")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().StringVar(&signKey, "sign-key", "", "PEM private key (PKCS#8 as openssl genpkey writes it, or cosign's encrypted key with its password in "+signature.PasswordEnv+") to sign each pack with")
	return cmd
}

func newPackVerifyCommand() *cobra.Command {
	var (
		rf         registryFlags
		registries []string
		keyFile    string
	)
	cmd := &cobra.Command{
		Use:   "verify NAME:VERSION --registry oci://HOST/BASE --key FILE",
		Short: "Check that a pack in a registry is signed with a key",
		Long: `Resolves NAME:VERSION in the registry and checks that the manifest it points at
carries a cosign signature (a Sigstore bundle among its referrers, or older
cosign's .sig tag) made with the private key of the PEM public key FILE.
Offline: no transparency log is asked. Exit code 0 when it is, 1 when it is
not (the reason is printed), 2 on usage errors.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, ok := strings.Cut(args[0], ":")
			if !ok || name == "" || version == "" {
				return usageError("%q: want NAME:VERSION", args[0])
			}
			if len(registries) != 1 || keyFile == "" {
				return usageError("one --registry and --key FILE are required")
			}
			v, err := readVerifyKey(keyFile)
			if err != nil {
				return usageError("--key: %v", err)
			}
			regs, _, err := rf.open(registries, cmd.InOrStdin())
			if err != nil {
				return err
			}
			ctx, cancel := registryContext()
			defer cancel()
			manifest, err := regs[0].Verify(ctx, name, version, v)
			if err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s: signature verified (%s)\n", name, version, manifest.Digest, v.ID())
			return nil
		},
	}
	rf.register(cmd)
	cmd.Flags().StringArrayVar(&registries, "registry", nil, "oci://HOST[:PORT]/BASE holding the pack")
	cmd.Flags().StringVar(&keyFile, "key", "", "the signer's cosign public key (PEM)")
	return cmd
}

func newPackPullCommand() *cobra.Command {
	var (
		rf         registryFlags
		registries []string
		dest       string
	)
	cmd := &cobra.Command{
		Use:   "pull NAME:VERSION --registry oci://HOST/BASE -d DIR",
		Short: "Pull a pack from an OCI registry into a folder",
		Long: `Pulls NAME:VERSION from the first registry that has it (digest verified, the
archive checked to be one pack folder) and copies the pack folder into DIR.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, ok := strings.Cut(args[0], ":")
			if !ok || name == "" || version == "" {
				return usageError("%q: want NAME:VERSION", args[0])
			}
			if len(registries) == 0 || dest == "" {
				return usageError("--registry and -d DIR are required")
			}
			regs, cache, err := rf.open(registries, cmd.InOrStdin())
			if err != nil {
				return err
			}
			catalog := &registry.Catalog{Registries: regs, Cache: cache}
			p, err := catalog.Pack(name, version)
			if err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			target := filepath.Join(dest, p.ID())
			if err := os.CopyFS(target, os.DirFS(p.Path)); err != nil {
				return &exitError{code: ExitFail, err: fmt.Errorf("copy to %s: %w", target, err)}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s -> %s\n", p.Name, p.Version, p.Digest, target)
			return nil
		},
	}
	rf.register(cmd)
	cmd.Flags().StringArrayVar(&registries, "registry", nil, "oci://HOST[:PORT]/BASE to pull from; repeatable, searched in order")
	cmd.Flags().StringVarP(&dest, "dir", "d", "", "folder to write the pack folder into")
	return cmd
}

func newPackListCommand() *cobra.Command {
	var (
		rf         registryFlags
		registries []string
		output     string
	)
	cmd := &cobra.Command{
		Use:   "list --registry oci://HOST/BASE [-o json]",
		Short: "List the packs of OCI registries",
		Long: `Lists every pack version below each registry's base path with its layer and the
digest of its content. -o json prints a list of {name, version, layer, digest}.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return usageError("--output: want table or json, got %q", output)
			}
			if len(registries) == 0 {
				return usageError("--registry oci://HOST/BASE is required")
			}
			regs, cache, err := rf.open(registries, cmd.InOrStdin())
			if err != nil {
				return err
			}
			ctx, cancel := registryContext()
			defer cancel()
			entries := []registry.Entry{}
			var errs []error
			for _, r := range regs {
				list, err := r.List(ctx, cache)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				entries = append(entries, list...)
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(entries); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PACK\tVERSION\tLAYER\tDIGEST")
				for _, e := range entries {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Name, e.Version, e.Layer, e.Digest)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if len(errs) > 0 {
				return &exitError{code: ExitFail, err: errors.Join(errs...)}
			}
			return nil
		},
	}
	rf.register(cmd)
	cmd.Flags().StringArrayVar(&registries, "registry", nil, "oci://HOST[:PORT]/BASE to list; repeatable")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func newPackMirrorCommand() *cobra.Command {
	var (
		rf    registryFlags
		force bool
	)
	cmd := &cobra.Command{
		Use:   "mirror oci://SRC/BASE oci://DST/BASE",
		Short: "Copy every pack of one registry into another, digests unchanged (air-gapped sites)",
		Long: `Copies each pack version of SRC into DST as it is, manifest and archive byte
for byte, so digests stay the same; versions DST already holds with the same
content are skipped, and a DST tag holding other content is moved only with
--force. Credentials for both come from the Docker config file.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rf.username != "" || rf.passwordStdin {
				return usageError("mirror reads both registries' credentials from the Docker config file (docker login, oras login)")
			}
			regs, _, err := rf.open(args, cmd.InOrStdin())
			if err != nil {
				return err
			}
			ctx, cancel := registryContext()
			defer cancel()
			copied, err := registry.Mirror(ctx, regs[0], regs[1], force)
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PACK\tVERSION\tDIGEST\t")
			for _, p := range copied {
				note := "copied"
				if p.Unchanged {
					note = "(already there)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Version, p.Digest, note)
			}
			if ferr := tw.Flush(); ferr != nil {
				return ferr
			}
			if err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			return nil
		},
	}
	rf.register(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "move DST tags that hold other content")
	return cmd
}
