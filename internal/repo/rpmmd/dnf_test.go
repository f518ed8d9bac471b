package rpmmd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/signing"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

// dnf runs the real dnf against the repository at root, in a throwaway
// install root with no other repositories, and returns its output.
func dnf(t *testing.T, root string, extraOpts []string, args ...string) (string, error) {
	t.Helper()
	installRoot := t.TempDir()
	cmdArgs := append([]string{"-y", "-q", "--installroot=" + installRoot, "--releasever=9",
		"--setopt=reposdir=/dev/null", "--setopt=skip_if_unavailable=False", "--setopt=cachedir=" + filepath.Join(installRoot, "cache"),
		"--repofrompath=local,file://" + root, "--repo=local"}, extraOpts...)
	cmd := exec.Command("dnf", append(cmdArgs, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestDNFReadsRepository(t *testing.T) {
	testutil.RequireTool(t, "dnf", "dnf")
	root := t.TempDir()
	buildSamples(t, root, sampleSpecs())
	writeRepo(t, root)

	out, err := dnf(t, root, []string{"--nogpgcheck"}, "repoquery", "--queryformat", "%{name}-%{epoch}:%{version}-%{release}.%{arch} %{location}", "--forcearch=x86_64", "*")
	if err != nil {
		t.Fatalf("dnf repoquery: %v\n%s", err, out)
	}
	for _, want := range []string{
		"criu-0:4.2.1-3.cf1.x86_64 Packages/criu-4.2.1-3.cf1.x86_64.rpm",
		"criu-noarch-doc-0:0.1~rc1-0.1.noarch",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dnf repoquery does not list %q:\n%s", want, out)
		}
	}

	// dnf resolves our dependency data: what criu requires, and which
	// package provides a virtual name or owns a file (from filelists).
	for _, q := range []struct {
		args []string
		want string
	}{
		{[]string{"--requires", "criu"}, "iproute = 1:6.1.0-3"},
		{[]string{"--whatprovides", "criu-pidfd"}, "criu-0:4.2.1-3.cf1.x86_64"},
		{[]string{"--whatprovides", "/usr/share/doc/criu/README.md"}, "criu-0:4.2.1-3.cf1.x86_64"},
		{[]string{"--changelog", "criu"}, "change m"},
	} {
		out, err := dnf(t, root, []string{"--nogpgcheck"}, append([]string{"repoquery", "--forcearch=x86_64"}, q.args...)...)
		if err != nil || !strings.Contains(out, q.want) {
			t.Errorf("dnf repoquery %v: want %q, err %v:\n%s", q.args, q.want, err, out)
		}
	}
}

// TestDNFRejectsTamperedMetadata checks that dnf verifies what repomd.xml
// says about primary.xml.gz, so a damaged file is noticed, not used.
func TestDNFRejectsTamperedMetadata(t *testing.T) {
	testutil.RequireTool(t, "dnf", "dnf")
	root := t.TempDir()
	buildSamples(t, root, sampleSpecs()[1:2])
	writeRepo(t, root)
	matches, _ := filepath.Glob(filepath.Join(root, "repodata", "*-primary.xml.gz"))
	if len(matches) != 1 {
		t.Fatalf("primary files: %v", matches)
	}
	data, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(matches[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := dnf(t, root, []string{"--nogpgcheck"}, "repoquery", "--forcearch=x86_64", "*")
	if err == nil || !strings.Contains(out, "Failed to download metadata") {
		t.Fatalf("dnf did not refuse a tampered primary.xml.gz (err %v):\n%s", err, out)
	}
}

// TestDNFVerifiesSignedRepomd signs repomd.xml with internal/signing and
// lets dnf check it with repo_gpgcheck against the exported public key; a
// repomd.xml changed after signing is refused.
func TestDNFVerifiesSignedRepomd(t *testing.T) {
	testutil.RequireTool(t, "dnf", "dnf")
	testutil.RequireTool(t, "gpg", "gpg")
	keyDir := t.TempDir()
	gnupg := filepath.Join(keyDir, "gnupg")
	if err := os.Mkdir(gnupg, 0o700); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, keyDir, "gpg", "--homedir", gnupg, "--batch", "--passphrase", "", "--quick-gen-key", "criu-forge test <repo@example.org>", "ed25519", "sign", "1d")
	secret := testutil.Run(t, keyDir, "gpg", "--homedir", gnupg, "--batch", "--armor", "--export-secret-keys")
	keyFile := filepath.Join(keyDir, "secret.asc")
	if err := os.WriteFile(keyFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := signing.Load(signing.KeyOptions{Path: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signer.PublicKey(true)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(keyDir, "public.asc")
	if err := os.WriteFile(pubFile, pub, 0o644); err != nil {
		t.Fatal(err)
	}

	root := t.TempDir()
	buildSamples(t, root, sampleSpecs()[1:2])
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Write(root, func(repomd []byte) ([]byte, error) {
		var sig bytes.Buffer
		err := signer.DetachSign(&sig, repomd, true)
		return sig.Bytes(), err
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := []string{"--nogpgcheck", "--setopt=local.repo_gpgcheck=1", "--setopt=local.gpgkey=file://" + pubFile}
	if out, err := dnf(t, root, checked, "repoquery", "--forcearch=x86_64", "criu-epoch"); err != nil || !strings.Contains(out, "criu-epoch-2:1.0-1") {
		t.Fatalf("dnf with repo_gpgcheck=1 on the signed repository: %v\n%s", err, out)
	}

	repomdPath := filepath.Join(root, "repodata", "repomd.xml")
	data, err := os.ReadFile(repomdPath)
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(data), "<revision>", "<revision>1", 1)
	if err := os.WriteFile(repomdPath, []byte(tampered), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := dnf(t, root, checked, "repoquery", "--forcearch=x86_64", "criu-epoch"); err == nil {
		t.Fatalf("dnf accepted a repomd.xml changed after signing:\n%s", out)
	} else if !strings.Contains(out, "signature") && !strings.Contains(out, "GPG") {
		t.Errorf("dnf refused the changed repomd.xml, but not for its signature:\n%s", out)
	}
}
