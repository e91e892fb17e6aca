// Package profile reads cluster profiles and clusters from YAML documents
// and validates them: alone (the profile's own rules) and together with the
// packs they use (the cluster's rules). It is pure: files in, findings out.
package profile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	v1 "strata.dev/strata/api/v1alpha1"
)

// Source says where a document came from, for error messages.
type Source struct {
	File string `json:"file"`
	// Doc is the 1-based index of the document in a multi-document file.
	Doc int `json:"doc"`
}

func (s Source) String() string {
	if s.Doc <= 1 {
		return s.File
	}
	return fmt.Sprintf("%s (document %d)", s.File, s.Doc)
}

// Profile is a ClusterProfile and where it was read from.
type Profile struct {
	*v1.ClusterProfile
	Source Source
}

// Cluster is a Cluster and where it was read from.
type Cluster struct {
	*v1.Cluster
	Source Source
}

// Documents is what a set of files held.
type Documents struct {
	Profiles []Profile
	Clusters []Cluster
	// Skipped lists documents of other kinds, so the CLI can say so.
	Skipped []string
}

// ReadFiles reads every YAML document of the files. A document that cannot
// be decoded is an error naming file, document and field.
func ReadFiles(files ...string) (*Documents, error) {
	docs := &Documents{}
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := docs.read(f, data); err != nil {
			errs = append(errs, err)
		}
	}
	return docs, errors.Join(errs...)
}

func (d *Documents) read(file string, data []byte) error {
	reader := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var errs []error
	for n := 1; ; n++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		src := Source{File: file, Doc: n}
		if err != nil {
			return fmt.Errorf("%s: invalid YAML: %w", src, err)
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			n--
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := sigsyaml.Unmarshal(raw, &meta); err != nil {
			errs = append(errs, fmt.Errorf("%s: invalid YAML: %w", src, err))
			continue
		}
		if meta.APIVersion != v1.GroupVersion.String() {
			d.Skipped = append(d.Skipped, fmt.Sprintf("%s: %s %s", src, meta.APIVersion, meta.Kind))
			continue
		}
		switch meta.Kind {
		case "ClusterProfile":
			var p v1.ClusterProfile
			if err := rolloutDurations(raw); err != nil {
				errs = append(errs, fmt.Errorf("%s: ClusterProfile: %w", src, err))
				continue
			}
			if err := sigsyaml.UnmarshalStrict(raw, &p); err != nil {
				errs = append(errs, fmt.Errorf("%s: ClusterProfile: %w", src, err))
				continue
			}
			d.Profiles = append(d.Profiles, Profile{ClusterProfile: &p, Source: src})
		case "Cluster":
			var c v1.Cluster
			if err := sigsyaml.UnmarshalStrict(raw, &c); err != nil {
				errs = append(errs, fmt.Errorf("%s: Cluster: %w", src, err))
				continue
			}
			d.Clusters = append(d.Clusters, Cluster{Cluster: &c, Source: src})
		default:
			d.Skipped = append(d.Skipped, fmt.Sprintf("%s: %s %s", src, meta.APIVersion, meta.Kind))
		}
	}
	return errors.Join(errs...)
}

// stripComments drops comment-only lines, so a document of comments counts
// as empty.
func stripComments(b []byte) []byte {
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out = append(out, line)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

// rolloutDurations checks a profile's roll-out durations before decoding,
// where a duration without its unit ("2") would fail with no field path.
func rolloutDurations(raw []byte) error {
	var doc struct {
		Spec struct {
			Rollout struct {
				ProgressDeadline any `json:"progressDeadline"`
				Waves            []struct {
					Soak any `json:"soak"`
				} `json:"waves"`
			} `json:"rollout"`
		} `json:"spec"`
	}
	if sigsyaml.Unmarshal(raw, &doc) != nil {
		return nil // the typed decode says what is wrong
	}
	check := func(field string, v any) error {
		if v == nil {
			return nil
		}
		if s, ok := v.(string); ok {
			if _, err := time.ParseDuration(s); err == nil {
				return nil
			}
		}
		return fmt.Errorf("%s: %v: want a duration with its unit, e.g. 90s, 5m or 1h30m", field, v)
	}
	if err := check("spec.rollout.progressDeadline", doc.Spec.Rollout.ProgressDeadline); err != nil {
		return err
	}
	for i, w := range doc.Spec.Rollout.Waves {
		if err := check(fmt.Sprintf("spec.rollout.waves[%d].soak", i), w.Soak); err != nil {
			return err
		}
	}
	return nil
}
