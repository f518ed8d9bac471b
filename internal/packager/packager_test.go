package packager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/signing"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

func runPackage(t *testing.T, spec Spec) *Result {
	t.Helper()
	res, err := Package(context.Background(), spec)
	if err != nil {
		t.Fatalf("Package: %v", err)
	}
	return res
}

func artifact(t *testing.T, res *Result, name, format string) Artifact {
	t.Helper()
	for _, a := range res.Artifacts {
		if a.Name == name && a.Format == format {
			return a
		}
	}
	t.Fatalf("no %s package %s among %+v", format, name, res.Artifacts)
	return Artifact{}
}

func output(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var installedSizeRE = regexp.MustCompile(`(?m)^Installed-Size: [0-9]+$`)

// debContents lists a .deb's data the way dpkg-deb --contents shows it,
// without the sizes (they depend on the compiler that built the fixture).
func debContents(t *testing.T, path string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(output(t, nil, "dpkg-deb", "--contents", path)), "\n") {
		f := strings.Fields(line)
		// perms owner/group size date time path [-> target]
		b.WriteString(f[0] + " " + f[1] + " " + f[3] + " " + f[4] + " " + strings.Join(f[5:], " ") + "\n")
	}
	return b.String()
}

func TestPackageDebSingleReplace(t *testing.T) {
	testutil.RequireTool(t, "dpkg-deb", "dpkg")
	testutil.RequireTool(t, "dpkg-query", "dpkg")
	out := t.TempDir()
	res := runPackage(t, baseSpec(t, out))
	if len(res.Artifacts) != 1 {
		t.Fatalf("want one package, got %+v", res.Artifacts)
	}
	deb := artifact(t, res, "criu", FormatDeb)
	if deb.File != "criu_3.17.1+forge3-1~deb12_amd64.deb" {
		t.Errorf("file name %s", deb.File)
	}

	control := output(t, nil, "dpkg-deb", "--field", deb.Path)
	testutil.Golden(t, "deb-single.control", []byte(installedSizeRE.ReplaceAllString(control, "Installed-Size: N")))
	testutil.Golden(t, "deb-single.contents", []byte(debContents(t, deb.Path)))
	if !strings.Contains(control, "Depends: libc6 (>= ") || !strings.Contains(control, "zlib1g (>= ") {
		t.Errorf("Depends should come from DT_NEEDED through dpkg (libc6, zlib1g):\n%s", control)
	}
	if !dpkgNewer(t, deb.Version, "3.17.1-2+deb12u2") {
		t.Errorf("%s does not sort above bookworm's criu", deb.Version)
	}

	// The manifest shipped inside is the external one without artifacts.
	root := t.TempDir()
	output(t, nil, "dpkg-deb", "-x", deb.Path, root)
	inside := readManifest(t, filepath.Join(root, "usr/share/doc/criu/criu-forge.json"))
	outside := readManifest(t, res.Manifest)
	if len(inside.Artifacts) != 0 || inside.PackagedAt != "" {
		t.Errorf("shipped manifest must not list artifacts or a time: %+v", inside)
	}
	if len(outside.Artifacts) != 1 || outside.Artifacts[0].SHA256 != deb.SHA256 || outside.PackagedAt == "" {
		t.Errorf("external manifest artifacts: %+v", outside.Artifacts)
	}
	outside.Artifacts, outside.PackagedAt = nil, ""
	a, _ := json.Marshal(inside)
	b, _ := json.Marshal(outside)
	if !bytes.Equal(a, b) {
		t.Errorf("shipped and external manifests differ beyond artifacts:\n%s\n%s", a, b)
	}
	if inside.Upstream.Commit == "" || len(inside.Patches) != 2 || inside.Patches[0].URL == "" || inside.BuildKey != "bk-2222" {
		t.Errorf("manifest lacks provenance: %+v", inside)
	}
	checkSBOM(t, res.SBOM, deb, inside)

	changelog := output(t, nil, "sh", "-c", "gzip -dc "+filepath.Join(root, "usr/share/doc/criu/changelog.Debian.gz"))
	testutil.Golden(t, "deb-single.changelog", []byte(changelog))
	for _, want := range []string{"PR #2449", "PR #2539", "CRIU 3.17.1"} {
		if !strings.Contains(changelog, want) {
			t.Errorf("changelog lacks %q:\n%s", want, changelog)
		}
	}
}

func readManifest(t *testing.T, path string) Manifest {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func TestPackageIsReproducible(t *testing.T) {
	t.Parallel()
	testutil.RequireTool(t, "dpkg-query", "dpkg")
	key := testutil.NewPGPKey(t, testutil.PGPKeyOptions{Name: "Forge Repro"})
	keyFile := filepath.Join(t.TempDir(), "key.asc")
	if err := os.WriteFile(keyFile, key.ArmoredPrivate, 0o600); err != nil {
		t.Fatal(err)
	}
	var first []Artifact
	for i := 0; i < 2; i++ {
		spec := baseSpec(t, t.TempDir())
		spec.Formats = []string{FormatDeb, FormatRPM}
		spec.Split = SplitDistro
		res := runPackage(t, spec)
		if i == 0 {
			first = res.Artifacts
			continue
		}
		if len(res.Artifacts) != len(first) {
			t.Fatalf("second run made %d packages, first %d", len(res.Artifacts), len(first))
		}
		for j, a := range res.Artifacts {
			if a.File != first[j].File || a.SHA256 != first[j].SHA256 {
				t.Errorf("%s differs between two runs (%s vs %s)", a.File, a.SHA256, first[j].SHA256)
			}
			x, _ := os.ReadFile(a.Path)
			y, _ := os.ReadFile(first[j].Path)
			if !bytes.Equal(x, y) {
				t.Errorf("%s: bytes differ", a.File)
			}
		}
	}
}

func TestPackageRPMSignedFromDebianTree(t *testing.T) {
	t.Parallel() // gpg waits for entropy
	testutil.RequireTool(t, "rpm", "rpm")
	// A key made by gpg, as users make theirs: testutil.NewPGPKey's signing
	// subkeys carry their back-signature in the hashed area, which rpm
	// 4.18 refuses to import.
	keyFile, pubFile, subkey := gpgKeyWithSigningSubkey(t, "s3cret-pass")
	passEnv := fmt.Sprintf("CRIU_FORGE_TEST_RPM_PASSPHRASE_%d", os.Getpid())
	os.Setenv(passEnv, "s3cret-pass") // a name of its own: the test runs in parallel
	t.Cleanup(func() { os.Unsetenv(passEnv) })

	spec := baseSpec(t, t.TempDir())
	spec.Formats = []string{FormatRPM}
	spec.RPMSign = &signing.KeyOptions{Path: keyFile, PassphraseEnv: passEnv, KeyID: subkey}
	res := runPackage(t, spec)
	r := artifact(t, res, "criu", FormatRPM)
	if r.File != "criu-3.17.1+forge3-1.deb12.x86_64.rpm" {
		t.Errorf("file name %s", r.File)
	}
	env := []string{"TZ=UTC", "LC_ALL=C"}
	info := output(t, env, "rpm", "-qip", "--nosignature", r.Path)
	info = regexp.MustCompile(`(?m)^Size\s*:.*$`).ReplaceAllString(info, "Size        : N")
	info = regexp.MustCompile(`(?m)^Signature\s*:.*$`).ReplaceAllString(info, "Signature   : SIGNED")
	testutil.Golden(t, "rpm-single.info", []byte(info))
	testutil.Golden(t, "rpm-single.files", []byte(output(t, env, "rpm", "-qlp", "--nosignature", r.Path)))
	reqs := output(t, env, "rpm", "-qp", "--requires", "--nosignature", r.Path)
	if !strings.Contains(reqs, "libc6 >= ") {
		t.Errorf("requires:\n%s", reqs)
	}
	changelog := output(t, env, "rpm", "-qp", "--changelog", "--nosignature", r.Path)
	if !strings.Contains(changelog, "PR #2449") {
		t.Errorf("rpm changelog lacks the patch's PR:\n%s", changelog)
	}

	// rpm -K with the public key imported into a private database.
	db := t.TempDir()
	output(t, nil, "rpm", "--dbpath", db, "--import", pubFile)
	check := output(t, nil, "rpm", "--dbpath", db, "-Kv", r.Path)
	if !strings.Contains(check, "Header V4 EdDSA/SHA256 Signature, key ID "+strings.ToLower(subkey[len(subkey)-8:])+": OK") {
		t.Errorf("rpm -Kv shows no header signature:\n%s", check)
	}
	if strings.Contains(check, "NOKEY") || strings.Contains(check, "BAD") {
		t.Errorf("rpm -K does not verify:\n%s", check)
	}
	// Without the key, rpm must not call it good.
	if out, err := exec.Command("rpm", "--dbpath", t.TempDir(), "-K", r.Path).CombinedOutput(); err == nil {
		t.Errorf("rpm -K passed without the public key:\n%s", out)
	}
	// A wrong passphrase is an error that names the key, never the secret.
	os.Setenv(passEnv, "wrong-s3cret")
	spec.OutDir = t.TempDir()
	if _, err := Package(context.Background(), spec); err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "rpm signing") {
		t.Errorf("wrong passphrase: %v", err)
	}
	if entries, _ := os.ReadDir(spec.OutDir); len(entries) > 0 {
		t.Errorf("output left behind after a signing failure: %v", entries)
	}
}

// gpgKeyWithSigningSubkey makes an Ed25519 key with a separate signing
// subkey in a throw-away GNUPGHOME and returns the exported secret key
// (passphrase-protected), the public key and the subkey's fingerprint.
func gpgKeyWithSigningSubkey(t *testing.T, passphrase string) (secret, public, subkey string) {
	testutil.RequireTool(t, "gpg", "gpg")
	home := t.TempDir()
	env := []string{"GNUPGHOME=" + home}
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run() })
	gpg := func(args ...string) string {
		cmd := exec.Command("gpg", append([]string{"--batch", "--pinentry-mode", "loopback", "--passphrase", passphrase}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	gpg("--quick-gen-key", "criu-forge test <test@example.invalid>", "ed25519", "sign", "0")
	primary := ""
	for _, line := range strings.Split(gpg("--list-keys", "--with-colons"), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && primary == "" {
			primary = f[9]
		}
	}
	gpg("--quick-add-key", primary, "ed25519", "sign", "0")
	for _, line := range strings.Split(gpg("--list-keys", "--with-colons", "--with-subkey-fingerprints"), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && f[9] != primary {
			subkey = f[9]
		}
	}
	secret = filepath.Join(home, "secret.asc")
	public = filepath.Join(home, "public.asc")
	os.WriteFile(secret, []byte(gpg("--armor", "--export-secret-keys", primary)), 0o600)
	os.WriteFile(public, []byte(gpg("--armor", "--export", primary)), 0o644)
	return secret, public, subkey
}

// TestRelations pins the package split and the relations that meet the
// distro's own criu, per mode, split and format.
func TestRelations(t *testing.T) {
	testutil.RequireTool(t, "dpkg-query", "dpkg")
	for _, c := range []struct{ name, mode, split string }{
		{"criu", ModeReplace, SplitSingle},
		{"criu", ModeReplace, SplitDistro},
		{"criu-pidfd", ModeDistinct, SplitSingle},
		{"criu-pidfd", ModeDistinct, SplitDistro},
	} {
		t.Run(c.mode+"-"+c.split, func(t *testing.T) {
			spec := baseSpec(t, t.TempDir())
			spec.Name, spec.Mode, spec.Split = c.name, c.mode, c.split
			spec.Formats = []string{FormatDeb, FormatRPM}
			res := runPackage(t, spec)
			m := readManifest(t, res.Manifest)
			got, _ := marshalJSON(m.Packages)
			testutil.Golden(t, "relations-"+c.mode+"-"+c.split+".json", got)
			for _, a := range res.Artifacts {
				if a.Format != FormatDeb {
					continue
				}
				// dpkg itself must accept the relations it reads back.
				control := output(t, nil, "dpkg-deb", "--field", a.Path, "Package", "Depends", "Breaks", "Conflicts", "Provides", "Replaces")
				if !strings.Contains(control, "Package: "+a.Name) {
					t.Errorf("%s control:\n%s", a.File, control)
				}
			}
		})
	}
}

func TestListVersions(t *testing.T) {
	testutil.RequireTool(t, "dpkg-query", "dpkg")
	out := t.TempDir()
	if got, err := ListVersions(filepath.Join(out, "missing")); err != nil || len(got) != 0 {
		t.Fatalf("ListVersions of a missing dir = %v, %v", got, err)
	}
	spec := baseSpec(t, out)
	runPackage(t, spec)
	spec.SeriesRevision = 4
	runPackage(t, spec)
	spec.Target = Target{"debian", "13", "amd64"}
	runPackage(t, spec)
	got, err := ListVersions(out)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, b := range got {
		lines = append(lines, fmt.Sprintf("%s %s %s %d artifacts", b.Target, b.Name, b.Version.Deb, len(b.Artifacts)))
		if b.PackagedAt.IsZero() || b.Upstream.Commit == "" || b.Patches != 2 {
			t.Errorf("incomplete entry %+v", b)
		}
	}
	want := []string{
		"debian-12-amd64 criu 3.17.1+forge4-1~deb12 1 artifacts",
		"debian-12-amd64 criu 3.17.1+forge3-1~deb12 1 artifacts",
		"debian-13-amd64 criu 3.17.1+forge4-1~deb13 1 artifacts",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("ListVersions:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// A broken manifest is named, not skipped.
	os.WriteFile(filepath.Join(out, "broken"+ManifestSuffix), []byte("{"), 0o644)
	if _, err := ListVersions(out); err == nil || !strings.Contains(err.Error(), "broken"+ManifestSuffix) {
		t.Errorf("broken manifest: %v", err)
	}
}

// checkSBOM checks the SPDX document lists what the manifest lists.
func checkSBOM(t *testing.T, path string, deb Artifact, m Manifest) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc spdxDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("SBOM: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || !strings.HasPrefix(doc.DocumentNamespace, "urn:") {
		t.Errorf("SBOM header: %+v", doc)
	}
	byID := map[string]spdxPackage{}
	for _, p := range doc.Packages {
		byID[p.SPDXID] = p
	}
	if up := byID["SPDXRef-Upstream"]; !strings.Contains(up.DownloadLocation, m.Upstream.Commit) {
		t.Errorf("SBOM upstream: %+v", up)
	}
	for i, p := range m.Patches {
		got := byID[fmt.Sprintf("SPDXRef-Patch-%d", i+1)]
		if got.DownloadLocation != p.URL || len(got.Checksums) != 1 || got.Checksums[0].Value != p.SHA256 {
			t.Errorf("SBOM patch %d: %+v", i+1, got)
		}
	}
	art := byID["SPDXRef-Package-1"]
	if art.PackageFileName != deb.File || art.Checksums[0].Value != deb.SHA256 {
		t.Errorf("SBOM artifact: %+v", art)
	}
	rels := map[string]bool{}
	for _, r := range doc.Relationships {
		rels[r.Element+" "+r.Type+" "+r.Related] = true
	}
	for _, want := range []string{"SPDXRef-DOCUMENT DESCRIBES SPDXRef-Package-1", "SPDXRef-Patch-1 PATCH_APPLIED SPDXRef-Upstream",
		"SPDXRef-Package-1 GENERATED_FROM SPDXRef-Upstream", "SPDXRef-Package-1 DEPENDS_ON SPDXRef-Library-1"} {
		if !rels[want] {
			t.Errorf("SBOM lacks relationship %s", want)
		}
	}
}

// BenchmarkPackage packages the fixture tree as .deb and .rpm (split, no
// resolver): the cost of nfpm, xz and the manifest, without the builder.
func BenchmarkPackage(b *testing.B) {
	stage := stagedTree(b, debLibDir)
	for i := 0; i < b.N; i++ {
		spec := baseSpec(b, b.TempDir())
		spec.StageDir, spec.Resolve, spec.Split = stage, nil, SplitDistro
		spec.Formats = []string{FormatDeb, FormatRPM}
		if _, err := Package(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
	}
}
