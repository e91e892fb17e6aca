package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/singleflight"
)

// Cache keeps pulled packs on disk, unpacked, by the digest of their
// archive: verified once, shared by every registry and tag that names the
// same content, reused after a restart. It is bounded in size; the packs
// used longest ago are evicted first.
type Cache struct {
	dir      string
	maxBytes int64
	flight   singleflight.Group
	mu       sync.Mutex // guards eviction and ref records
}

// DefaultCacheSize bounds a cache when no size is given.
const DefaultCacheSize = 2 << 30

// OpenCache opens (creating) the cache in dir.
func OpenCache(dir string, maxBytes int64) (*Cache, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheSize
	}
	for _, sub := range []string{"packs", "refs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("pack cache: %w", err)
		}
	}
	// Left-overs of a pull interrupted by a crash.
	entries, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(dir, "tmp", e.Name()))
	}
	return &Cache{dir: dir, maxBytes: maxBytes}, nil
}

// Dir is the cache's folder.
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) entry(d digest.Digest) string { return entryIn(c.dir, d) }

func entryIn(dir string, d digest.Digest) string {
	return filepath.Join(dir, "packs", d.Algorithm().String()+"-"+d.Encoded())
}

// Lookup returns the pack folder of a cached archive, marking it used.
func (c *Cache) Lookup(d digest.Digest) (string, bool) {
	if d.Validate() != nil {
		return "", false
	}
	entry := c.entry(d)
	meta, err := readMeta(entry)
	if err != nil {
		return "", false
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(entry, metaFile), now, now)
	return filepath.Join(entry, meta.Top), true
}

// verifiedPath is the marker of a manifest digest a verifier (by its ID)
// accepted.
func (c *Cache) verifiedPath(verifier string, d digest.Digest) string {
	sum := sha256.Sum256([]byte(verifier))
	return filepath.Join(c.dir, "verified", hex.EncodeToString(sum[:8]), d.Algorithm().String()+"-"+d.Encoded())
}

// verified tells whether verifier accepted the manifest digest d before.
func (c *Cache) verified(verifier string, d digest.Digest) bool {
	if c == nil || d.Validate() != nil {
		return false
	}
	_, err := os.Stat(c.verifiedPath(verifier, d))
	return err == nil
}

// markVerified remembers that verifier accepted d, across restarts: a
// resync, or a manager started again, does not verify it again. A
// marker that cannot be written only costs a verification later.
func (c *Cache) markVerified(verifier string, d digest.Digest) {
	if c == nil {
		return
	}
	p := c.verifiedPath(verifier, d)
	if os.MkdirAll(filepath.Dir(p), 0o700) == nil {
		_ = os.WriteFile(p, nil, 0o600)
	}
}

// Fill returns the pack folder of the archive with digest d, fetching it
// with open when it is not cached. Concurrent fills of one digest fetch it
// once. The archive is checked against d before anything is unpacked.
func (c *Cache) Fill(d digest.Digest, size int64, open func() (io.ReadCloser, error)) (string, error) {
	if dir, ok := c.Lookup(d); ok {
		return dir, nil
	}
	v, err, _ := c.flight.Do(d.String(), func() (any, error) {
		if dir, ok := c.Lookup(d); ok {
			return dir, nil
		}
		return c.fill(d, size, open)
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func (c *Cache) fill(d digest.Digest, size int64, open func() (io.ReadCloser, error)) (string, error) {
	if err := d.Validate(); err != nil || d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("digest %q: want sha256:<64 hex>", d)
	}
	if size > MaxPackSize {
		return "", fmt.Errorf("the archive is %d MiB: more than a pack may be (%d MiB)", size>>20, MaxPackSize>>20)
	}
	tmp, err := os.MkdirTemp(filepath.Join(c.dir, "tmp"), "pull-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	blob := filepath.Join(tmp, "archive")
	if err := download(blob, d, size, open); err != nil {
		return "", err
	}
	f, err := os.Open(blob)
	if err != nil {
		return "", err
	}
	dir, err := extractPack(f, filepath.Join(tmp, "unpacked"))
	f.Close()
	if err != nil {
		return "", err
	}
	unpacked := filepath.Dir(dir)
	used, err := folderSize(unpacked)
	if err != nil {
		return "", err
	}
	if err := writeMeta(unpacked, cacheMeta{Digest: d.String(), Top: filepath.Base(dir), Size: used}); err != nil {
		return "", err
	}
	entry := c.entry(d)
	if err := os.Rename(unpacked, entry); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	c.evict(entry)
	return filepath.Join(entry, filepath.Base(dir)), nil
}

// download writes the blob to path and checks its size and digest.
func download(path string, d digest.Digest, size int64, open func() (io.ReadCloser, error)) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rc, MaxPackSize+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", d, err)
	}
	if n > MaxPackSize {
		return fmt.Errorf("the archive is more than %d MiB: not a pack", MaxPackSize>>20)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Encoded() || (size >= 0 && n != size) {
		return fmt.Errorf("the blob does not match its digest: want %s (%d bytes), got sha256:%s (%d bytes); nothing was kept", d, size, got, n)
	}
	return nil
}

// evict removes the least recently used packs until the cache fits its
// bound; keep is never removed.
func (c *Cache) evict(keep string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	type item struct {
		path string
		size int64
		used time.Time
	}
	var items []item
	var total int64
	entries, _ := os.ReadDir(filepath.Join(c.dir, "packs"))
	for _, e := range entries {
		p := filepath.Join(c.dir, "packs", e.Name())
		meta, err := readMeta(p)
		if err != nil {
			continue
		}
		st, err := os.Stat(filepath.Join(p, metaFile))
		if err != nil {
			continue
		}
		items = append(items, item{p, meta.Size, st.ModTime()})
		total += meta.Size
	}
	sort.Slice(items, func(i, j int) bool { return items[i].used.Before(items[j].used) })
	for _, it := range items {
		if total <= c.maxBytes {
			return
		}
		if it.path == keep {
			continue
		}
		if os.RemoveAll(it.path) == nil {
			total -= it.size
		}
	}
}

// Size is what the cached packs take on disk.
func (c *Cache) Size() int64 {
	var total int64
	entries, _ := os.ReadDir(filepath.Join(c.dir, "packs"))
	for _, e := range entries {
		if meta, err := readMeta(filepath.Join(c.dir, "packs", e.Name())); err == nil {
			total += meta.Size
		}
	}
	return total
}

// ref is what a tag of a registry last pointed at, so a registry that is
// down does not stop clusters whose packs are cached.
type ref struct {
	Manifest string `json:"manifest"`
	Layer    string `json:"layer"`
	Size     int64  `json:"size"`
}

func (c *Cache) refPath(repo, version string) string {
	return filepath.Join(c.dir, "refs", filepath.FromSlash(strings.ReplaceAll(repo, ":", "_")), version+".json")
}

func (c *Cache) saveRef(repo, version string, r ref) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.refPath(repo, version)
	data, _ := json.Marshal(r)
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		_ = os.WriteFile(p+".tmp", data, 0o644)
		_ = os.Rename(p+".tmp", p)
	}
}

func (c *Cache) loadRef(repo, version string) (ref, bool) {
	data, err := os.ReadFile(c.refPath(repo, version))
	if err != nil {
		return ref{}, false
	}
	var r ref
	return r, json.Unmarshal(data, &r) == nil && r.Layer != ""
}

const metaFile = ".strata-cache.json"

type cacheMeta struct {
	Digest string `json:"digest"`
	Top    string `json:"top"`
	Size   int64  `json:"size"`
}

func readMeta(entry string) (cacheMeta, error) {
	var m cacheMeta
	data, err := os.ReadFile(filepath.Join(entry, metaFile))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil || m.Top == "" {
		return m, fmt.Errorf("%s: damaged cache entry", entry)
	}
	return m, nil
}

func writeMeta(entry string, m cacheMeta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(entry, metaFile), data, 0o644)
}

func folderSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if info, err := d.Info(); err == nil && !d.IsDir() {
			total += info.Size()
		}
		return nil
	})
	return total, err
}

// CachedPackDir finds the pack folder of a cached archive in the cache
// folder dir without opening the cache: for readers beside the process
// that fills it (the dashboard), which must neither clean its temporary
// files nor mark entries used.
func CachedPackDir(dir string, d digest.Digest) (string, bool) {
	if dir == "" || d.Validate() != nil {
		return "", false
	}
	entry := entryIn(dir, d)
	meta, err := readMeta(entry)
	if err != nil {
		return "", false
	}
	return filepath.Join(entry, meta.Top), true
}

// PackFiles finds the folder of a pack version — in the pack cache by the
// digest of its archive, else among pack folders — without pulling it.
type PackFiles struct {
	CacheDir string
	Folders  Packs
}

// Dir is the pack version's folder, when it is on this machine.
func (f PackFiles) Dir(name, version, archiveDigest string) (string, bool) {
	if dir, ok := CachedPackDir(f.CacheDir, digest.Digest(archiveDigest)); ok {
		return dir, true
	}
	if f.Folders == nil {
		return "", false
	}
	p, err := f.Folders.Pack(name, version)
	if err != nil || p.Path == "" {
		return "", false
	}
	if st, err := os.Stat(p.Path); err != nil || !st.IsDir() {
		return "", false // a chart archive read as a pack ships no logo
	}
	return p.Path, true
}
