package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/criu-forge/criu-forge/internal/repo/rpmmd"
)

// The yum side: one rpm-md repository per distro release and architecture,
// yum/<release>/<arch>/{Packages/,repodata/}, written by internal/repo/rpmmd
// into each generation (Packages/ holds hard links to pool/yum/ files), so
// it switches with the apt side. A noarch package goes into every
// architecture of its release.

const yumDir = "yum"

// rpmRecord is one .rpm in one release.
type rpmRecord struct {
	Release  string `json:"release"`  // el9, fc41, ...
	Filename string `json:"filename"` // pool/yum/<release>/<name>-<version>-<release>.<arch>.rpm
	Name     string `json:"name"`
	Arch     string `json:"arch"`
	NEVRA    string `json:"nevra"`
	SHA256   string `json:"sha256"`

	pkg    *rpmmd.Package // read by this publish
	source string
}

// evr is the record's [epoch:]version-release, taken from its NEVRA.
func (r *rpmRecord) evr() string {
	return strings.TrimSuffix(strings.TrimPrefix(r.NEVRA, r.Name+"-"), "."+r.Arch)
}

func (r *rpmRecord) id() string {
	return r.Release + "/" + strings.TrimSuffix(path.Base(r.Filename), ".rpm")
}

// rpmReleaseTag finds the dist tag of an rpm Release: "1.el9" -> el9,
// "3.el9_4" -> el9, "1.fc41" -> fc41.
var rpmReleaseTag = regexp.MustCompile(`\.(el\d+|fc\d+)(?:[._]|$)`)

// rpmField: what may go into a pool file name.
var rpmField = regexp.MustCompile(`^[A-Za-z0-9_+~^][A-Za-z0-9._+~^-]*$`)

// readRPMInput reads an .rpm; its release comes from in.Suite or the dist
// tag of its Release.
func readRPMInput(in Input) (*rpmRecord, error) {
	p, err := rpmmd.ReadPackage(in.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Path, err)
	}
	for _, f := range []string{p.Name, p.Version, p.Release, p.Arch} {
		if !rpmField.MatchString(f) {
			return nil, fmt.Errorf("%s: %q in its name, version, release or arch cannot be part of a file name", in.Path, f)
		}
	}
	rel := in.Suite
	if rel == "" {
		m := rpmReleaseTag.FindStringSubmatch(p.Release)
		if m == nil {
			return nil, fmt.Errorf("%s: release %s has no dist tag (.el9, .fc41): name the yum release explicitly", in.Path, p.Release)
		}
		rel = m[1]
	}
	if !suiteName.MatchString(rel) {
		return nil, fmt.Errorf("%s: %q is not a yum release name", in.Path, rel)
	}
	file := fmt.Sprintf("%s-%s-%s.%s.rpm", p.Name, p.Version, p.Release, p.Arch)
	return &rpmRecord{
		Release: rel, Filename: path.Join(poolDir, yumDir, rel, file), Name: p.Name, Arch: p.Arch,
		NEVRA: p.NEVRA(), SHA256: p.Checksum, pkg: p, source: in.Path,
	}, nil
}

// yumPlan is one rpm-md repository of a generation.
type yumPlan struct {
	digest string
	recs   []*rpmRecord
}

// yumPlans groups the rpms by release and architecture.
func yumPlans(st *state, opts *PublishOptions) map[string]*yumPlan {
	archs := map[string][]string{}
	for _, r := range st.Rpms {
		if r.Arch != "noarch" && !slices.Contains(archs[r.Release], r.Arch) {
			archs[r.Release] = append(archs[r.Release], r.Arch)
		}
	}
	plans := map[string]*yumPlan{}
	for _, r := range st.Rpms {
		as := archs[r.Release]
		if r.Arch != "noarch" {
			as = []string{r.Arch}
		} else if len(as) == 0 {
			as = []string{"x86_64"}
		}
		for _, a := range as {
			key := r.Release + "/" + a
			if plans[key] == nil {
				plans[key] = &yumPlan{}
			}
			plans[key].recs = append(plans[key].recs, r)
		}
	}
	for _, p := range plans {
		h := sha256.New()
		fmt.Fprintf(h, "%d\n%s\n", stateFormat, opts.Signer.Fingerprint())
		lines := make([]string, 0, len(p.recs))
		for _, r := range p.recs {
			lines = append(lines, r.Filename+" "+r.SHA256)
		}
		sort.Strings(lines)
		for _, l := range lines {
			fmt.Fprintln(h, l)
		}
		p.digest = hex.EncodeToString(h.Sum(nil))
	}
	return plans
}

// writeYum writes yum/<release>/<arch>/ of every plan into the generation:
// an unchanged repository is hard-linked from the live generation, a
// changed one is updated by rpmmd from the live one's state (reading only
// the new packages).
func writeYum(g *generationWriter, cur, next *state, plans map[string]*yumPlan, opts *PublishOptions) error {
	next.Yum = map[string]string{}
	keys := make([]string, 0, len(plans))
	for k := range plans {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sign := func(repomd []byte) ([]byte, error) {
		var b bytes.Buffer
		err := opts.Signer.DetachSign(&b, repomd, true)
		return b.Bytes(), err
	}
	for _, key := range keys {
		p := plans[key]
		base := path.Join(yumDir, key)
		next.Yum[key] = p.digest
		prevDir := ""
		if g.prev != "" && cur.Yum[key] != "" {
			prevDir = filepath.Join(g.prev, filepath.FromSlash(base))
		}
		if prevDir != "" && cur.Yum[key] == p.digest {
			if err := g.linkTree(prevDir, base); err != nil {
				return fmt.Errorf("carry %s into the new generation: %w", base, err)
			}
			continue
		}
		dir := filepath.Join(g.root, filepath.FromSlash(base))
		want := map[string]*rpmRecord{}
		for _, r := range p.recs {
			href := "Packages/" + path.Base(r.Filename)
			want[href] = r
			if err := g.linkFrom(filepath.Join(g.repo, filepath.FromSlash(r.Filename)), path.Join(base, href)); err != nil {
				return fmt.Errorf("link %s into %s: %w", r.Filename, base, err)
			}
		}
		// rpmmd reads its state from the repository it opens: give the new
		// one the live one's state, so only new packages are read.
		if prevDir != "" {
			err := g.linkFrom(filepath.Join(prevDir, "repodata", rpmmd.StateFile), path.Join(base, "repodata", rpmmd.StateFile))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		y, err := rpmmd.Open(dir)
		if err != nil {
			return err
		}
		for _, old := range y.Packages() {
			if want[old.Href] == nil { // normally gone already: Open drops packages whose file is not there
				y.Remove(old.Href)
			}
		}
		have := map[string]bool{}
		for _, old := range y.Packages() {
			have[old.Href] = true
		}
		for href, r := range want {
			if have[href] {
				continue
			}
			pkg := r.pkg
			if pkg == nil { // published earlier, new to this architecture's repository
				if pkg, err = rpmmd.ReadPackage(filepath.Join(dir, filepath.FromSlash(href))); err != nil {
					return err
				}
			}
			if err := y.Add(pkg, href); err != nil {
				return fmt.Errorf("%s: %w", base, err)
			}
		}
		if err := y.Write(dir, sign); err != nil {
			return fmt.Errorf("%s: %w", base, err)
		}
		if err := g.adopt(filepath.Join(dir, "repodata")); err != nil {
			return err
		}
	}
	return nil
}

// linkTree hard-links every file below src (of the previous generation)
// to the same place below rel.
func (g *generationWriter) linkTree(src, rel string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		sub, _ := filepath.Rel(src, p)
		return g.linkFrom(p, path.Join(rel, filepath.ToSlash(sub)))
	})
}

// adopt records a directory written by someone else (rpmmd) for the fsync
// before the switch.
func (g *generationWriter) adopt(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			g.files = append(g.files, filepath.Join(dir, e.Name()))
		}
	}
	for d := dir; strings.HasPrefix(d, g.root); d = filepath.Dir(d) {
		g.dirs[d] = true
	}
	return nil
}
