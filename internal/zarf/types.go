// Package zarf reads Zarf packages — built archives (zarf-package-*.tar.zst
// or .tar, checksums verified) and package-definition folders — and turns
// the components a layer selects into manifests, with deploy-time variables
// substituted. The Zarf Go module is not on the module proxy; the format is
// read here from its documentation and real packages.
package zarf

// Package is zarf.yaml.
type Package struct {
	Kind       string      `json:"kind"`
	Metadata   Metadata    `json:"metadata"`
	Constants  []Constant  `json:"constants,omitempty"`
	Variables  []Variable  `json:"variables,omitempty"`
	Components []Component `json:"components"`
}

// Metadata describes the package.
type Metadata struct {
	Name              string `json:"name"`
	Description       string `json:"description,omitempty"`
	Version           string `json:"version,omitempty"`
	Architecture      string `json:"architecture,omitempty"`
	Uncompressed      bool   `json:"uncompressed,omitempty"`
	AggregateChecksum string `json:"aggregateChecksum,omitempty"`
}

// Constant is fixed when the package is created: ###ZARF_CONST_NAME###.
type Constant struct {
	Name       string `json:"name"`
	Value      string `json:"value"`
	Pattern    string `json:"pattern,omitempty"`
	AutoIndent bool   `json:"autoIndent,omitempty"`
}

// Variable is set at deploy time: ###ZARF_VAR_NAME###.
type Variable struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Default     string `json:"default,omitempty"`
	Prompt      bool   `json:"prompt,omitempty"`
	Pattern     string `json:"pattern,omitempty"`
	Sensitive   bool   `json:"sensitive,omitempty"`
	AutoIndent  bool   `json:"autoIndent,omitempty"`
	// Type "file" takes the contents of the file the value names.
	Type string `json:"type,omitempty"`
}

// Component is a deployable part of a package.
type Component struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Required    *bool      `json:"required,omitempty"`
	Default     bool       `json:"default,omitempty"`
	Images      []string   `json:"images,omitempty"`
	Manifests   []Manifest `json:"manifests,omitempty"`
	Charts      []Chart    `json:"charts,omitempty"`
	// Files are copied onto the deploying host by Zarf; Strata places no
	// files, but a file variable may name one's target.
	Files []File `json:"files,omitempty"`
}

// File is a component file: source in the package, target on the host.
type File struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// Manifest is a set of manifest files deployed together.
type Manifest struct {
	Name      string   `json:"name"`
	Namespace string   `json:"namespace,omitempty"`
	Files     []string `json:"files,omitempty"`
	// Template asks for Go templating with Zarf values (not supported yet).
	Template bool `json:"template,omitempty"`
}

// Chart is a Helm chart of a component.
type Chart struct {
	Name        string   `json:"name"`
	Namespace   string   `json:"namespace,omitempty"`
	Version     string   `json:"version,omitempty"`
	URL         string   `json:"url,omitempty"`
	RepoName    string   `json:"repoName,omitempty"`
	GitPath     string   `json:"gitPath,omitempty"`
	LocalPath   string   `json:"localPath,omitempty"`
	ReleaseName string   `json:"releaseName,omitempty"`
	ValuesFiles []string `json:"valuesFiles,omitempty"`
}

// IsRequired reports whether a component always deploys.
func (c Component) IsRequired() bool { return c.Required != nil && *c.Required }
