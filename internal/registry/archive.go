package registry

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"strata.dev/strata/internal/pack"
)

// Limits on a pack archive, so that a hostile or broken one cannot fill the
// disk or the memory of the manager.
const (
	// MaxPackSize is the most a pack may hold once unpacked.
	MaxPackSize = 512 << 20
	// maxEntries is the most files and folders a pack may hold.
	maxEntries = 20000
)

// archivePack writes the folder as a gzipped tar whose single top-level
// folder is top, as `tar -czf NAME-VERSION.tar.gz NAME-VERSION` does. The
// output depends only on the files' names, modes and contents, so the same
// folder pushed twice has the same digest.
func archivePack(dir, top string) ([]byte, error) {
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Join(top, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: name, Mode: int64(info.Mode().Perm()), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
			return tw.WriteHeader(hdr)
		case d.Type()&fs.ModeSymlink != 0:
			// A link could point anywhere on the pusher's machine: its target's
			// content goes in, never the link.
			target, err := os.Stat(p)
			if err != nil || target.IsDir() {
				return fmt.Errorf("%s: a symbolic link to %s: want plain files in a pack", p, describeErr(err, "a folder"))
			}
			info = target
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: not a plain file or folder", p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, int64(len(data)), int64(info.Mode().Perm())
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func describeErr(err error, otherwise string) string {
	if err != nil {
		return err.Error()
	}
	return otherwise
}

// extractPack unpacks a pack archive (gzipped or plain tar) into dest, which
// must not exist, and returns the pack folder inside it. It refuses, before
// writing anything outside dest, an archive that is not one pack folder:
// more than one top-level entry, no pack.json, absolute or ../ paths, links,
// devices, or more than MaxPackSize bytes or maxEntries entries unpacked.
func extractPack(r io.Reader, dest string) (string, error) {
	br := bufio.NewReader(r)
	var tr *tar.Reader
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return "", fmt.Errorf("not a gzipped tar: %w", err)
		}
		defer gz.Close()
		tr = tar.NewReader(gz)
	} else {
		tr = tar.NewReader(br)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return "", err
	}
	if err := os.Mkdir(dest, 0o755); err != nil {
		return "", err
	}
	top := ""
	var total int64
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("not a valid tar archive: %w", err)
		}
		if entries >= maxEntries {
			return "", fmt.Errorf("more than %d entries: not a pack", maxEntries)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if name == "" || name == "." {
			continue
		}
		clean := path.Clean(name)
		if path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(name, "\\") {
			return "", fmt.Errorf("entry %q leaves the pack folder", hdr.Name)
		}
		first, _, _ := strings.Cut(clean, "/")
		switch {
		case top == "":
			top = first
		case first != top:
			return "", fmt.Errorf("two top-level entries, %q and %q: want the pack in one folder (tar -czf NAME-VERSION.tar.gz NAME-VERSION)", top, first)
		}
		target := filepath.Join(dest, filepath.FromSlash(clean))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return "", err
			}
		case tar.TypeReg:
			if clean == top {
				return "", fmt.Errorf("entry %q is a file: want the pack in one folder", hdr.Name)
			}
			total += hdr.Size
			if hdr.Size < 0 || total > MaxPackSize {
				return "", fmt.Errorf("more than %d MiB once unpacked: not a pack", MaxPackSize>>20)
			}
			if err := writeEntry(tr, target, hdr.Size); err != nil {
				return "", err
			}
		default:
			return "", fmt.Errorf("entry %q is a %s: want only files and folders in a pack", hdr.Name, typeName(hdr.Typeflag))
		}
	}
	if top == "" {
		return "", errors.New("the archive is empty")
	}
	dir := filepath.Join(dest, top)
	if _, err := os.Stat(filepath.Join(dir, pack.MetadataFile)); err != nil {
		return "", fmt.Errorf("no %s in its folder %q: not a pack", pack.MetadataFile, top)
	}
	return dir, nil
}

func writeEntry(r io.Reader, target string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, size+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("%s: the archive says %d bytes, holds %d", filepath.Base(target), size, n)
	}
	return err
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "named pipe"
	default:
		return fmt.Sprintf("tar entry of type %q", t)
	}
}
