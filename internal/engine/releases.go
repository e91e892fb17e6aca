package engine

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strconv"
	"sync"
	"time"

	"helm.sh/helm/v4/pkg/release"
	rspb "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
)

// releaseSecrets keeps Helm's release records as Helm's secrets driver
// does, in its format (the helm CLI and Helm's own driver read them), and
// reads them with it. It writes them with a compressor from a pool: Helm's
// driver makes a new one of some 1.3 MB for each record it writes, three
// per upgrade, which was more than a quarter of what a fleet's profile
// change allocated.
type releaseSecrets struct {
	*driver.Secrets
	secrets typedcorev1.SecretInterface
}

func newReleaseSecrets(secrets typedcorev1.SecretInterface) *releaseSecrets {
	return &releaseSecrets{Secrets: driver.NewSecrets(secrets), secrets: secrets}
}

// Create writes a new record, as Helm's driver does.
func (r *releaseSecrets) Create(key string, rel release.Releaser) error {
	obj, name, err := releaseSecret(key, rel, "createdAt")
	if err != nil {
		return fmt.Errorf("create: failed to encode release %q: %w", name, err)
	}
	if _, err := r.secrets.Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return driver.ErrReleaseExists
		}
		return fmt.Errorf("create: failed to create: %w", err)
	}
	return nil
}

// Update writes a record over the one stored, as Helm's driver does.
func (r *releaseSecrets) Update(key string, rel release.Releaser) error {
	obj, name, err := releaseSecret(key, rel, "modifiedAt")
	if err != nil {
		return fmt.Errorf("update: failed to encode release %q: %w", name, err)
	}
	if _, err := r.secrets.Update(context.Background(), obj, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update: failed to update: %w", err)
	}
	return nil
}

// releaseSecret is the Secret Helm's driver stores a release in: the
// release's own labels, then Helm's (stamp is createdAt or modifiedAt), and
// the release as base64 of gzipped JSON.
func releaseSecret(key string, rel release.Releaser, stamp string) (*corev1.Secret, string, error) {
	var rls *rspb.Release
	switch r := rel.(type) {
	case *rspb.Release:
		rls = r
	case rspb.Release:
		rls = &r
	default:
		return nil, "", fmt.Errorf("unsupported release type: %T", rel)
	}
	data, err := encodeRelease(rls)
	if err != nil {
		return nil, rls.Name, err
	}
	labels := maps.Clone(rls.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[stamp] = strconv.FormatInt(time.Now().Unix(), 10)
	labels["name"] = rls.Name
	labels["owner"] = "helm"
	labels["status"] = rls.Info.Status.String()
	labels["version"] = strconv.Itoa(rls.Version)
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: key, Labels: labels},
		Type:       "helm.sh/release.v1",
		Data:       map[string][]byte{"release": data},
	}, rls.Name, nil
}

// compressors are gzip writers at the level Helm writes records with: the
// records must fit a Secret, and a chart's files are in each.
var compressors = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestCompression)
	return w
}}

func encodeRelease(rls *rspb.Release) ([]byte, error) {
	raw, err := json.Marshal(rls)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := compressors.Get().(*gzip.Writer)
	defer func() {
		zw.Reset(io.Discard)
		compressors.Put(zw)
	}()
	zw.Reset(&buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(buf.Len()))
	base64.StdEncoding.Encode(out, buf.Bytes())
	return out, nil
}
