package zarf

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"sigs.k8s.io/yaml"
)

// Source is a loaded package: its zarf.yaml and a way to read its files.
type Source struct {
	// Path the package was read from.
	Path    string
	Package Package
	// Built is true for an archive made by `zarf package create`, whose
	// component files live in components/<name>.tar; false for a
	// package-definition folder, whose files are paths relative to it.
	Built bool
	files map[string][]byte // archive contents by path
}

// maxArchive bounds what is read into memory from a package archive.
const maxArchive = 2 << 30

// Load reads a package archive (.tar.zst or .tar) or definition folder.
// An archive's checksums.txt is verified before anything else is used.
func Load(p string) (*Source, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("zarf package %s: %w", p, err)
	}
	if st.IsDir() {
		return loadDefinition(p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if strings.HasSuffix(p, ".zst") {
		dec, err := zstd.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("zarf package %s: %w", p, err)
		}
		defer dec.Close()
		r = dec
	}
	files, err := readTar(io.LimitReader(r, maxArchive))
	if err != nil {
		return nil, fmt.Errorf("zarf package %s: not a readable tar archive: %w", p, err)
	}
	return FromFiles(p, files)
}

// MaxPackageSize bounds what is read of one built package, archive or
// published.
const MaxPackageSize = maxArchive

// FromFiles reads a built package from its files by path inside the package
// (zarf.yaml, checksums.txt, components/NAME.tar, …): what an archive holds,
// or the layers of a package published to an OCI registry, titled by path.
// The same checks apply to both: checksums.txt against zarf.yaml's
// aggregate checksum, every listed file against checksums.txt. name says
// where the files came from, in errors.
func FromFiles(name string, files map[string][]byte) (*Source, error) {
	src := &Source{Path: name, Built: true, files: files}
	if err := src.verify(); err != nil {
		return nil, fmt.Errorf("zarf package %s: %w", name, err)
	}
	if err := yaml.Unmarshal(files["zarf.yaml"], &src.Package); err != nil {
		return nil, fmt.Errorf("zarf package %s: zarf.yaml: %w", name, err)
	}
	return src, src.check()
}

func loadDefinition(dir string) (*Source, error) {
	data, err := os.ReadFile(filepath.Join(dir, "zarf.yaml"))
	if err != nil {
		return nil, fmt.Errorf("zarf package definition %s: %w", dir, err)
	}
	src := &Source{Path: dir}
	if err := yaml.Unmarshal(data, &src.Package); err != nil {
		return nil, fmt.Errorf("zarf package definition %s: zarf.yaml: %w", dir, err)
	}
	return src, src.check()
}

func (s *Source) check() error {
	if s.Package.Kind != "ZarfPackageConfig" {
		return fmt.Errorf("zarf package %s: zarf.yaml: kind %q: want ZarfPackageConfig", s.Path, s.Package.Kind)
	}
	seen := map[string]bool{}
	for i, c := range s.Package.Components {
		if c.Name == "" || seen[c.Name] {
			return fmt.Errorf("zarf package %s: zarf.yaml: components[%d]: want a unique name, got %q", s.Path, i, c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

func readTar(r io.Reader) (map[string][]byte, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[path.Clean(strings.TrimPrefix(h.Name, "./"))] = data
	}
}

// WriteTar writes files as an uncompressed package archive that Load
// reads back, in the order of names.
func WriteTar(w io.Writer, names []string, files map[string][]byte) error {
	tw := tar.NewWriter(w)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	return tw.Close()
}

// verify checks every file listed in checksums.txt, and checksums.txt
// itself against the aggregate checksum in zarf.yaml.
func (s *Source) verify() error {
	sums, ok := s.files["checksums.txt"]
	if !ok {
		return errors.New("no checksums.txt: the package cannot be verified")
	}
	var meta struct {
		Metadata Metadata `json:"metadata"`
	}
	if err := yaml.Unmarshal(s.files["zarf.yaml"], &meta); err == nil && meta.Metadata.AggregateChecksum != "" {
		if got := sha256Hex(sums); got != meta.Metadata.AggregateChecksum {
			return fmt.Errorf("checksums.txt has sha256 %s, zarf.yaml's aggregateChecksum says %s", got, meta.Metadata.AggregateChecksum)
		}
	}
	for n, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			return fmt.Errorf("checksums.txt line %d: want \"<sha256> <path>\"", n+1)
		}
		data, present := s.files[path.Clean(name)]
		if !present {
			return fmt.Errorf("checksums.txt lists %s, which is not in the archive", name)
		}
		if got := sha256Hex(data); got != sum {
			return fmt.Errorf("%s has sha256 %s, checksums.txt says %s", name, got, sum)
		}
	}
	return nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// componentFiles returns the files a built package holds for a component,
// keyed by their path inside components/<name>.tar.
func (s *Source) componentFiles(name string) (map[string][]byte, error) {
	data, ok := s.files["components/"+name+".tar"]
	if !ok {
		return map[string][]byte{}, nil
	}
	return readTar(bytes.NewReader(data))
}

// readDefinitionFile reads a file of a definition folder, refusing paths
// that leave it.
func (s *Source) readDefinitionFile(rel string) ([]byte, error) {
	full := filepath.Join(s.Path, rel)
	if r, err := filepath.Rel(s.Path, full); err != nil || strings.HasPrefix(r, "..") {
		return nil, fmt.Errorf("%s is outside the package folder", rel)
	}
	data, err := os.ReadFile(full)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: not in the package folder", rel)
	}
	return data, err
}
