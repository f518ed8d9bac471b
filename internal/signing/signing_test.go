package signing

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// gpgv checks a signature with the real gpgv and returns its report; it
// fails t when gpgv rejects it. sig == nil means data is clear-signed.
func gpgv(t *testing.T, s *Signer, data, sig []byte) string {
	t.Helper()
	testutil.RequireTool(t, "gpgv", "gpgv")
	dir := t.TempDir()
	pub, err := s.PublicKey(false)
	if err != nil {
		t.Fatal(err)
	}
	keyring := writeFile(t, dir, "keyring.gpg", pub)
	args := []string{"--keyring", keyring}
	if sig != nil {
		args = append(args, writeFile(t, dir, "data.sig", sig))
	}
	args = append(args, writeFile(t, dir, "data", data))
	out, err := exec.Command("gpgv", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("gpgv rejected the signature: %v\n%s", err, out)
	}
	return string(out)
}

// gpgVerify checks with gpg --verify after importing the armored public key.
func gpgVerify(t *testing.T, s *Signer, data, sig []byte) {
	t.Helper()
	testutil.RequireTool(t, "gpg", "gpg")
	home := t.TempDir()
	asc, err := s.PublicKey(true)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, home, "gpg", "--homedir", home, "--batch", "--import", writeFile(t, home, "key.asc", asc))
	testutil.Run(t, home, "gpg", "--homedir", home, "--batch", "--verify", writeFile(t, home, "data.asc", sig), writeFile(t, home, "data", data))
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run() })
}

func TestSignVerifiedByGPG(t *testing.T) {
	plain := testutil.NewPGPKey(t, testutil.PGPKeyOptions{})
	withSubkeys := testutil.NewPGPKey(t, testutil.PGPKeyOptions{SigningSubkeys: 2})
	locked := testutil.NewPGPKey(t, testutil.PGPKeyOptions{SigningSubkeys: 1, Passphrase: "s3cret pass"})
	spaced := func(fp string) string { // as gpg prints it, lower-cased
		var parts []string
		for i := 0; i < len(fp); i += 4 {
			parts = append(parts, fp[i:i+4])
		}
		return strings.ToLower(strings.Join(parts, " "))
	}
	tests := []struct {
		name    string
		key     testutil.PGPKey
		opts    KeyOptions
		fromEnv bool
		pass    string
		want    string // fingerprint that must sign
	}{
		{name: "primary key, default", key: plain, want: plain.Primary},
		{name: "newest signing subkey by default", key: withSubkeys, want: withSubkeys.SigningSubkeys[1]},
		{name: "older subkey by full fingerprint", key: withSubkeys, opts: KeyOptions{KeyID: withSubkeys.SigningSubkeys[0]}, want: withSubkeys.SigningSubkeys[0]},
		{name: "subkey by fingerprint as gpg prints it", key: withSubkeys, opts: KeyOptions{KeyID: spaced(withSubkeys.SigningSubkeys[0])}, want: withSubkeys.SigningSubkeys[0]},
		{name: "subkey by long key id", key: withSubkeys, opts: KeyOptions{KeyID: "0x" + withSubkeys.SigningSubkeys[0][24:]}, want: withSubkeys.SigningSubkeys[0]},
		{name: "primary by fingerprint although subkeys exist", key: withSubkeys, opts: KeyOptions{KeyID: withSubkeys.Primary}, want: withSubkeys.Primary},
		{name: "key from environment", key: plain, fromEnv: true, want: plain.Primary},
		{name: "encrypted key with passphrase", key: locked, opts: KeyOptions{PassphraseEnv: "TEST_PASS"}, pass: "s3cret pass", want: locked.SigningSubkeys[0]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			if tt.fromEnv {
				t.Setenv("TEST_KEY", string(tt.key.ArmoredPrivate))
				opts.Env = "TEST_KEY"
			} else {
				opts.Path = writeFile(t, t.TempDir(), "key.asc", tt.key.ArmoredPrivate)
			}
			if tt.pass != "" {
				t.Setenv(opts.PassphraseEnv, tt.pass)
			}
			s, err := Load(opts)
			if err != nil {
				t.Fatal(err)
			}
			if s.Fingerprint() != tt.want {
				t.Fatalf("signing with %s, want %s", s.Fingerprint(), tt.want)
			}
			data := []byte("Origin: criu-forge\nSuite: bookworm\n-- a line gpg must dash-escape\n")

			var clear bytes.Buffer
			if err := s.ClearSign(&clear, data); err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(clear.Bytes(), []byte("Hash: SHA256")) {
				t.Errorf("clear-signed message does not use SHA256:\n%s", clear.Bytes())
			}
			out := gpgv(t, s, clear.Bytes(), nil)
			if !strings.Contains(out, tt.want) {
				t.Errorf("gpgv did not report key %s:\n%s", tt.want, out)
			}

			var detached bytes.Buffer
			if err := s.DetachSign(&detached, data, true); err != nil {
				t.Fatal(err)
			}
			if out := gpgv(t, s, data, detached.Bytes()); !strings.Contains(out, tt.want) {
				t.Errorf("gpgv did not report key %s:\n%s", tt.want, out)
			}
			gpgVerify(t, s, data, detached.Bytes())

			var binary bytes.Buffer
			if err := s.DetachSign(&binary, data, false); err != nil {
				t.Fatal(err)
			}
			gpgv(t, s, data, binary.Bytes())
		})
	}
}

func TestTamperedDataRejected(t *testing.T) {
	testutil.RequireTool(t, "gpgv", "gpgv")
	key := testutil.NewPGPKey(t, testutil.PGPKeyOptions{})
	s, err := Load(KeyOptions{Path: writeFile(t, t.TempDir(), "k", key.ArmoredPrivate)})
	if err != nil {
		t.Fatal(err)
	}
	var sig bytes.Buffer
	if err := s.DetachSign(&sig, []byte("original\n"), true); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pub, _ := s.PublicKey(false)
	out, err := exec.Command("gpgv", "--keyring", writeFile(t, dir, "k.gpg", pub), writeFile(t, dir, "s", sig.Bytes()), writeFile(t, dir, "d", []byte("tampered\n"))).CombinedOutput()
	if err == nil {
		t.Fatalf("gpgv accepted a signature over other data:\n%s", out)
	}
}

func TestLoadErrors(t *testing.T) {
	withSubkeys := testutil.NewPGPKey(t, testutil.PGPKeyOptions{SigningSubkeys: 1})
	locked := testutil.NewPGPKey(t, testutil.PGPKeyOptions{Passphrase: "hunter2-very-secret"})
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "key.asc", withSubkeys.ArmoredPrivate)
	lockedFile := writeFile(t, dir, "locked.asc", locked.ArmoredPrivate)
	t.Setenv("WRONG_PASS", "hunter3-not-it")
	t.Setenv("EMPTY_KEY", "")
	tests := []struct {
		name string
		opts KeyOptions
		want []string // substrings of the error
	}{
		{"nothing given", KeyOptions{}, []string{"no key given"}},
		{"missing file", KeyOptions{Path: filepath.Join(dir, "nope.asc")}, []string{"nope.asc"}},
		{"unset variable", KeyOptions{Env: "CRIU_FORGE_NO_SUCH_VAR"}, []string{"CRIU_FORGE_NO_SUCH_VAR", "not set"}},
		{"empty variable", KeyOptions{Env: "EMPTY_KEY"}, []string{"EMPTY_KEY"}},
		{"not a key", KeyOptions{Path: writeFile(t, dir, "junk", []byte("hello"))}, []string{"not an OpenPGP secret key"}},
		{"public key only", KeyOptions{Path: writeFile(t, dir, "pub.asc", withSubkeys.ArmoredPublic)}, []string{"no"}},
		{"encrypted, no passphrase variable", KeyOptions{Path: lockedFile}, []string{"passphrase"}},
		{"passphrase variable unset", KeyOptions{Path: lockedFile, PassphraseEnv: "CRIU_FORGE_NO_PASS"}, []string{"CRIU_FORGE_NO_PASS", "not set"}},
		{"wrong passphrase", KeyOptions{Path: lockedFile, PassphraseEnv: "WRONG_PASS"}, []string{"wrong passphrase", "WRONG_PASS"}},
		{"unknown id lists keys", KeyOptions{Path: keyFile, KeyID: strings.Repeat("AB", 20)}, []string{"no key or subkey", withSubkeys.Primary, withSubkeys.SigningSubkeys[0]}},
		{"malformed id", KeyOptions{Path: keyFile, KeyID: "DEADBEEF"}, []string{"full fingerprint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.opts)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, secret := range []string{"hunter2", "hunter3", "PRIVATE KEY"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks secret material: %q", err)
				}
			}
		})
	}
}

func TestEncryptionSubkeyCannotSign(t *testing.T) {
	key := testutil.NewPGPKey(t, testutil.PGPKeyOptions{})
	s, err := Load(KeyOptions{Path: writeFile(t, t.TempDir(), "k", key.ArmoredPrivate)})
	if err != nil {
		t.Fatal(err)
	}
	var encSubkey string
	for _, sk := range s.entity.Subkeys {
		if !sk.Sig.FlagSign {
			encSubkey = fpr(sk.PublicKey)
		}
	}
	if encSubkey == "" {
		t.Fatal("test key has no encryption subkey")
	}
	_, err = Load(KeyOptions{Path: writeFile(t, t.TempDir(), "k", key.ArmoredPrivate), KeyID: encSubkey})
	if err == nil || !strings.Contains(err.Error(), "cannot sign") {
		t.Fatalf("selecting the encryption subkey: got %v, want a 'cannot sign' error", err)
	}
}

func TestSignerPrintsNoSecret(t *testing.T) {
	key := testutil.NewPGPKey(t, testutil.PGPKeyOptions{})
	s, err := Load(KeyOptions{Path: writeFile(t, t.TempDir(), "k", key.ArmoredPrivate)})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := strings.TrimSpace(sprintf(format, s)); got != "OpenPGP signer "+key.Primary {
			t.Errorf("%s of a Signer = %q", format, got)
		}
	}
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

// TestKeyExportedByGPG loads what users actually have: a passphrase-protected
// key made and exported by gpg, with a signing subkey chosen by fingerprint.
func TestKeyExportedByGPG(t *testing.T) {
	testutil.RequireTool(t, "gpg", "gpg")
	home := t.TempDir()
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run() })
	// A fixed S2K count: gpg-agent otherwise calibrates it against the CPU,
	// which takes seconds per key on a busy machine.
	if err := os.WriteFile(filepath.Join(home, "gpg-agent.conf"), []byte("s2k-count 65536\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gpg := func(args ...string) string {
		base := []string{"--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", "gpg pass"}
		return testutil.Run(t, home, "gpg", append(base, args...)...)
	}
	gpg("--quick-gen-key", "Forge Test <forge@test.invalid>", "ed25519", "cert", "never")
	var primary string
	for _, line := range strings.Split(gpg("--with-colons", "--list-secret-keys"), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && primary == "" {
			primary = f[9]
		}
	}
	gpg("--quick-add-key", primary, "ed25519", "sign", "never")
	gpg("--quick-add-key", primary, "rsa2048", "sign", "never")
	var fprs []string
	for _, line := range strings.Split(gpg("--with-colons", "--list-secret-keys"), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" {
			fprs = append(fprs, f[9])
		}
	}
	if len(fprs) != 3 {
		t.Fatalf("expected 3 fingerprints from gpg, got %v", fprs)
	}
	keyFile := filepath.Join(home, "secret.asc")
	gpg("--armor", "--output", keyFile, "--export-secret-keys", primary)
	t.Setenv("GPG_PASS", "gpg pass")

	if _, err := Load(KeyOptions{Path: keyFile, PassphraseEnv: "GPG_PASS", KeyID: primary}); err == nil || !strings.Contains(err.Error(), "cannot sign") {
		t.Errorf("certify-only primary key: got %v, want a 'cannot sign' error", err)
	}
	for _, sub := range fprs[1:] {
		s, err := Load(KeyOptions{Path: keyFile, PassphraseEnv: "GPG_PASS", KeyID: sub})
		if err != nil {
			t.Fatal(err)
		}
		var sig bytes.Buffer
		if err := s.DetachSign(&sig, []byte("data\n"), true); err != nil {
			t.Fatal(err)
		}
		if out := gpgv(t, s, []byte("data\n"), sig.Bytes()); !strings.Contains(out, sub) {
			t.Errorf("gpgv did not report subkey %s:\n%s", sub, out)
		}
	}
}
