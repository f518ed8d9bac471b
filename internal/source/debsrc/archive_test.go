package debsrc

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ulikunitz/xz"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

// The criu 4.2.1-1 paragraph of sid's Sources, as the archive lists it; its
// checksums are the real ones of the fixture tarball.
const criuParagraph = `Package: criu
Binary: criu, libcriu2, libcriu-dev, python3-pycriu, libcompel1, libcompel-dev
Version: 4.2.1-1
Maintainer: Salvatore Bonaccorso <carnil@debian.org>
Architecture: amd64 arm64 ppc64el riscv64 s390x all
Standards-Version: 4.7.4
Format: 3.0 (quilt)
Files:
 680c50418f796b55464947dc117a7cf4 2901 criu_4.2.1-1.dsc
 15af4ed4460591e31fc5be6cab994ac9 1038700 criu_4.2.1.orig.tar.xz
 fa44a793db247d17dce76d0cf84033b9 12964 criu_4.2.1-1.debian.tar.xz
Checksums-Sha256:
 9286c86e5adfd70b97a68e117c2905d91bf9e31132296e7ebf57066189a2f0b0 2901 criu_4.2.1-1.dsc
 29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9 1038700 criu_4.2.1.orig.tar.xz
 e9f797a19f0e7dd66d480bea47f2ef261b3d9aee6bab5059882c0074b1b84d2d 12964 criu_4.2.1-1.debian.tar.xz
Homepage: https://www.criu.org/
Directory: pool/main/c/criu
Priority: optional
Section: misc
`

const (
	criuOrigSHA256 = "29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9"
	criuOrigName   = "criu_4.2.1.orig.tar.xz"
	criuOrigPath   = "pool/main/c/criu/" + criuOrigName
	sourcesXZPath  = "dists/sid/main/source/Sources.xz"
)

// otherParagraphs surround criu in the fake index, as in a real one.
const otherParagraphs = `Package: crip
Version: 3.9-3
Directory: pool/main/c/crip
Checksums-Sha256:
 1111111111111111111111111111111111111111111111111111111111111111 100 crip_3.9.orig.tar.gz

`

// fakeArchive is a Debian archive on loopback: a signed dists/sid and the
// criu orig tarball in its pool.
type fakeArchive struct {
	t        *testing.T
	server   *httptest.Server
	signers  []*openpgp.Entity // InRelease carries one signature of each
	keyring  string            // armored public keyring file of the first signer
	mu       sync.Mutex
	files    map[string][]byte
	requests map[string]int
	release  releaseOptions
}

type releaseOptions struct {
	suite, codename, origin string
	validUntil              time.Time
	byHash                  bool
}

func newFakeArchive(t *testing.T) *fakeArchive {
	t.Helper()
	tarball, err := os.ReadFile(testutil.CRIUTarball(t, "4.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	a := &fakeArchive{
		t:        t,
		files:    map[string][]byte{criuOrigPath: tarball},
		requests: map[string]int{},
		release: releaseOptions{suite: "unstable", codename: "sid", origin: "Debian",
			validUntil: time.Now().Add(7 * 24 * time.Hour), byHash: true},
	}
	signer, keyring := newSigner(t, "archive")
	a.signers, a.keyring = []*openpgp.Entity{signer}, keyring
	a.setSources(otherParagraphs + criuParagraph)
	a.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		name := strings.TrimPrefix(r.URL.Path, "/debian/")
		a.requests[name]++
		data, ok := a.files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(a.server.Close)
	a.sign()
	return a
}

// newSigner makes a throwaway archive key and writes its public keyring.
func newSigner(t *testing.T, name string) (*openpgp.Entity, string) {
	t.Helper()
	key := testutil.NewPGPKey(t, testutil.PGPKeyOptions{Name: name})
	keys, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(key.ArmoredPrivate))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".asc")
	if err := os.WriteFile(path, key.ArmoredPublic, 0o644); err != nil {
		t.Fatal(err)
	}
	return keys[0], path
}

func (a *fakeArchive) mirror() string { return a.server.URL + "/debian/" }

// setSources writes the Sources index (xz and gz) of sid/main.
func (a *fakeArchive) setSources(text string) {
	a.t.Helper()
	var x, g bytes.Buffer
	xw, err := xz.NewWriter(&x)
	if err != nil {
		a.t.Fatal(err)
	}
	gw := gzip.NewWriter(&g)
	for _, w := range []io.WriteCloser{xw, gw} {
		if _, err := w.Write([]byte(text)); err != nil {
			a.t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			a.t.Fatal(err)
		}
	}
	a.files[sourcesXZPath] = x.Bytes()
	a.files["dists/sid/main/source/Sources.gz"] = g.Bytes()
}

// releaseText lists every file below dists/sid/ with its sha256 and size.
func (a *fakeArchive) releaseText() string {
	o := a.release
	var b strings.Builder
	fmt.Fprintf(&b, "Origin: %s\nLabel: %s\nSuite: %s\nCodename: %s\n", o.origin, o.origin, o.suite, o.codename)
	fmt.Fprintf(&b, "Date: %s\n", time.Now().Add(-time.Hour).UTC().Format(time.RFC1123))
	if !o.validUntil.IsZero() {
		fmt.Fprintf(&b, "Valid-Until: %s\n", o.validUntil.UTC().Format(time.RFC1123))
	}
	if o.byHash {
		b.WriteString("Acquire-By-Hash: yes\n")
	}
	b.WriteString("Architectures: amd64\nComponents: main contrib\nDescription: fake archive\nSHA256:\n")
	var names []string
	for name := range a.files {
		if strings.HasPrefix(name, "dists/sid/") && !strings.Contains(name, "/by-hash/") && !strings.HasSuffix(name, "Release") {
			names = append(names, strings.TrimPrefix(name, "dists/sid/"))
		}
	}
	sort.Strings(names)
	for _, name := range names {
		sum := sha256.Sum256(a.files["dists/sid/"+name])
		fmt.Fprintf(&b, " %x %8d %s\n", sum, len(a.files["dists/sid/"+name]), name)
	}
	return b.String()
}

// sign (re)writes dists/sid/InRelease, and the by-hash copies of the
// indexes, from the current files.
func (a *fakeArchive) sign() {
	a.t.Helper()
	a.files["dists/sid/InRelease"] = clearSign(a.t, a.signers, a.releaseText())
	for name, data := range a.files {
		if strings.HasPrefix(name, "dists/sid/main/source/Sources.") {
			sum := sha256.Sum256(data)
			a.files["dists/sid/main/source/by-hash/SHA256/"+hex.EncodeToString(sum[:])] = data
		}
	}
}

func clearSign(t *testing.T, keys []*openpgp.Entity, text string) []byte {
	t.Helper()
	var priv []*packet.PrivateKey
	for _, k := range keys {
		priv = append(priv, k.PrivateKey)
	}
	var buf bytes.Buffer
	w, err := clearsign.EncodeMulti(&buf, priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// expiredSigner makes a key that expired yesterday, as an archive's
// retired key is, and writes a keyring holding it and also.
func expiredSigner(t *testing.T, also ...*openpgp.Entity) (*openpgp.Entity, string) {
	t.Helper()
	made := time.Now().Add(-72 * time.Hour)
	key, err := openpgp.NewEntity("retired", "", "retired@criu-forge.invalid", &packet.Config{
		Algorithm: packet.PubKeyAlgoEdDSA, KeyLifetimeSecs: 24 * 3600, Time: func() time.Time { return made }})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append([]*openpgp.Entity{key}, also...) {
		if err := k.Serialize(w); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "with-retired.asc")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return key, path
}

func (a *fakeArchive) count(name string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests[name]
}

func (a *fakeArchive) total() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, c := range a.requests {
		n += c
	}
	return n
}

func (a *fakeArchive) request(cache string) Request {
	return Request{Package: "criu", Version: "4.2.1-1", Suite: "sid", Mirror: a.mirror(),
		Keyring: a.keyring, CacheDir: cache}
}

// dearmor writes the binary form of an armored keyring, as
// /usr/share/keyrings/*.gpg are.
func dearmor(t *testing.T, armored string) string {
	t.Helper()
	data, err := os.ReadFile(armored)
	if err != nil {
		t.Fatal(err)
	}
	block, err := armor.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var bin bytes.Buffer
	if _, err := bin.ReadFrom(block.Body); err != nil {
		t.Fatal(err)
	}
	path := strings.TrimSuffix(armored, ".asc") + ".gpg"
	if err := os.WriteFile(path, bin.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cacheEntries lists every file below dir (relative), for checking that a
// refused fetch left nothing behind.
func cacheEntries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}
