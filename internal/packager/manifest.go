package packager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ManifestSchema identifies the manifest format.
const ManifestSchema = "criu-forge.manifest/v1"

// ManifestSuffix ends the name of every manifest Package writes to OutDir.
const ManifestSuffix = ".manifest.json"

// Manifest records what went into one build. The copy shipped inside each
// package (/usr/share/doc/<package>/criu-forge.json) has no Artifacts and no
// PackagedAt: a package cannot contain its own checksum, and a wall-clock
// time would break reproducibility. The copy in OutDir adds both.
type Manifest struct {
	Schema          string       `json:"schema"`
	Name            string       `json:"name"`
	Target          Target       `json:"target"`
	Mode            string       `json:"mode"`
	Split           string       `json:"split"`
	Version         Version      `json:"version"`
	Upstream        Upstream     `json:"upstream"`
	Patches         []Patch      `json:"patches"`
	BuilderID       string       `json:"builder_id,omitempty"`
	BuildKey        string       `json:"build_key,omitempty"`
	SourceDateEpoch int64        `json:"source_date_epoch"`
	Packages        []PackageDoc `json:"packages"`
	Libraries       []Dependency `json:"libraries,omitempty"`
	Artifacts       []Artifact   `json:"artifacts,omitempty"`
	PackagedAt      string       `json:"packaged_at,omitempty"`
}

// Upstream is the base the patches were applied to.
type Upstream struct {
	URL        string `json:"url"`
	Ref        string `json:"ref,omitempty"`
	Commit     string `json:"commit"`
	Version    string `json:"version"`
	SourceKind string `json:"source_kind,omitempty"` // git, tarball, debian-source
}

// Patch is one entry of the patch series.
type Patch struct {
	Name    string   `json:"name"`
	Source  string   `json:"source,omitempty"` // "PR #2449"
	URL     string   `json:"url,omitempty"`    // the PR's page
	Commits []string `json:"commits,omitempty"`
	SHA256  string   `json:"sha256"` // hash of the normalized patch
}

// PackageDoc describes one package of the build.
type PackageDoc struct {
	Name      string   `json:"name"`
	Format    string   `json:"format"`
	Version   string   `json:"version"`
	Arch      string   `json:"arch"`
	Depends   []string `json:"depends,omitempty"`
	Provides  []string `json:"provides,omitempty"`
	Conflicts []string `json:"conflicts,omitempty"`
	Replaces  []string `json:"replaces,omitempty"` // rpm: Obsoletes
	Breaks    []string `json:"breaks,omitempty"`   // deb only
	Files     int      `json:"files"`
}

// Artifact is one package file written to OutDir.
type Artifact struct {
	Path    string `json:"path"` // absolute path in OutDir
	File    string `json:"file"` // base name
	Name    string `json:"name"` // package name
	Version string `json:"version"`
	Arch    string `json:"arch"`
	Format  string `json:"format"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
}

func (m Manifest) marshal() ([]byte, error) { return marshalJSON(m) }

// marshalJSON indents and keeps "<" and ">" readable (relations use them).
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// manifestBase is the file name stem of a build's manifest and SBOM in
// OutDir: one per target, name and version.
func manifestBase(m Manifest) string {
	return fmt.Sprintf("%s_%s_%s", m.Name, m.Target, m.Version.Deb)
}

// Built is one build found in an output directory.
type Built struct {
	Target     Target     `json:"target"`
	Name       string     `json:"name"`
	Version    Version    `json:"version"`
	Upstream   Upstream   `json:"upstream"`
	Patches    int        `json:"patches"`
	PackagedAt time.Time  `json:"packaged_at"`
	Artifacts  []Artifact `json:"artifacts"`
	Manifest   string     `json:"manifest"`
}

// ListVersions reads the manifests in outDir and returns what was built,
// per target (sorted by target, newest build first): the data of
// `criu-forge versions`. A manifest that cannot be read is an error naming
// it; an outDir that does not exist yet holds no builds.
func ListVersions(outDir string) ([]Built, error) {
	paths, err := filepath.Glob(filepath.Join(outDir, "*"+ManifestSuffix))
	if err != nil {
		return nil, err
	}
	var out []Built
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed while we listed
		}
		if err != nil {
			return nil, fmt.Errorf("read manifest %s: %w", p, err)
		}
		var m Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("manifest %s is not valid JSON: %w (delete it or rebuild that target)", p, err)
		}
		if m.Schema != ManifestSchema {
			return nil, fmt.Errorf("manifest %s: schema %q, want %q", p, m.Schema, ManifestSchema)
		}
		at, _ := time.Parse(time.RFC3339, m.PackagedAt)
		out = append(out, Built{Target: m.Target, Name: m.Name, Version: m.Version, Upstream: m.Upstream,
			Patches: len(m.Patches), PackagedAt: at, Artifacts: m.Artifacts, Manifest: p})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if a, b := out[i].Target.String(), out[j].Target.String(); a != b {
			return a < b
		}
		if !out[i].PackagedAt.Equal(out[j].PackagedAt) {
			return out[i].PackagedAt.After(out[j].PackagedAt)
		}
		return strings.Compare(out[i].Manifest, out[j].Manifest) > 0
	})
	return out, nil
}
