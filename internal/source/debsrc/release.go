package debsrc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"pault.ag/go/debian/control"
)

// Default keyrings, as installed by debian-archive-keyring and
// ubuntu-keyring.
const (
	DebianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
	UbuntuKeyring = "/usr/share/keyrings/ubuntu-archive-keyring.gpg"
)

// release is the part of a Release file this package uses.
type release struct {
	Origin        string
	Suite         string
	Codename      string
	ValidUntil    string `control:"Valid-Until"`
	AcquireByHash bool   `control:"Acquire-By-Hash"`
	Components    []string
	SHA256        []control.SHA256FileHash `delim:"\n" strip:"\n\r\t "`
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// parseRelease parses the text of a Release file (already verified) and
// checks the fields this package relies on.
func parseRelease(text []byte) (*release, error) {
	pr, err := control.NewParagraphReader(bytes.NewReader(text), nil)
	if err != nil {
		return nil, err
	}
	p, err := pr.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty Release file")
		}
		return nil, err
	}
	var rel release
	if err := control.UnpackFromParagraph(*p, &rel); err != nil {
		return nil, fmt.Errorf("Release file: %w", err)
	}
	for _, f := range rel.SHA256 {
		if !sha256Hex.MatchString(f.Hash) || f.Size < 0 {
			return nil, fmt.Errorf("Release file: bad SHA256 entry for %q", f.Filename)
		}
	}
	return &rel, nil
}

// index returns the Release's SHA256 entry for path.
func (r *release) index(path string) (control.SHA256FileHash, bool) {
	for _, f := range r.SHA256 {
		if f.Filename == path {
			return f, true
		}
	}
	return control.SHA256FileHash{}, false
}

// names reports whether the Release describes suite (as its suite or its
// codename): a mirror must not serve one suite's Release under another's
// name.
func (r *release) names(suite string) bool {
	return suite != "" && (r.Suite == suite || r.Codename == suite)
}

// validUntil parses the Valid-Until field; zero when absent.
func (r *release) validUntil() (time.Time, error) {
	if r.ValidUntil == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC1123, time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, r.ValidUntil); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("Valid-Until %q is not a date", r.ValidUntil)
}

const signedHeader = "-----BEGIN PGP SIGNED MESSAGE-----"

// splitClearsigned separates an InRelease into its signed block and refuses
// anything outside that block, so no unsigned text can be read as signed.
func splitClearsigned(data []byte) (*clearsign.Block, error) {
	if !bytes.HasPrefix(data, []byte(signedHeader)) {
		return nil, errors.New("not a clear-signed file")
	}
	block, rest := clearsign.Decode(data)
	if block == nil {
		return nil, errors.New("malformed clear-signed file")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the signature")
	}
	return block, nil
}

// unverifiedOrigin peeks at the Origin of a clear-signed Release before its
// signature is checked, only to choose the keyring that must then verify it.
func unverifiedOrigin(data []byte) string {
	block, err := splitClearsigned(data)
	if err != nil {
		return ""
	}
	rel, err := parseRelease(block.Plaintext)
	if err != nil {
		return ""
	}
	return rel.Origin
}

// readKeyring loads a binary or ASCII-armored OpenPGP keyring.
func readKeyring(path string) (openpgp.EntityList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys openpgp.EntityList
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN PGP")) {
		keys, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		keys, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys in it")
	}
	return keys, nil
}

// verifyInRelease checks the InRelease signature against keys and returns
// the signed Release text, parsed.
func verifyInRelease(data []byte, keys openpgp.EntityList) (*release, error) {
	block, err := splitClearsigned(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if err := verifyAnySignature(block, keys); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	rel, err := parseRelease(block.Plaintext)
	if err != nil {
		return nil, fmt.Errorf("signed Release text: %w", err)
	}
	return rel, nil
}

// verifyAnySignature accepts a clear-signed block when one of its
// signatures verifies with keys, as gpgv does. Debian signs with several
// archive keys at once; go-crypto alone judges only the first signature
// whose key it knows, so one expired key would hide a valid signature.
func verifyAnySignature(block *clearsign.Block, keys openpgp.EntityList) error {
	raw, err := io.ReadAll(block.ArmoredSignature.Body)
	if err != nil {
		return err
	}
	var failures []string
	r := bytes.NewReader(raw)
	for r.Len() > 0 {
		start := len(raw) - r.Len()
		if _, err := packet.Read(r); err != nil {
			failures = append(failures, err.Error())
			break
		}
		one := raw[start : len(raw)-r.Len()]
		_, _, err := openpgp.VerifyDetachedSignature(keys, bytes.NewReader(block.Bytes), bytes.NewReader(one), nil)
		if err == nil {
			return nil
		}
		failures = append(failures, err.Error())
	}
	if len(failures) == 0 {
		return errors.New("no signature")
	}
	return errors.New(strings.Join(failures, "; "))
}

// keyringFor returns the keyring to verify an InRelease with: the one asked
// for, or the distribution's archive keyring by the Release's Origin.
func keyringFor(requested string, inRelease []byte) string {
	if requested != "" {
		return requested
	}
	if strings.EqualFold(unverifiedOrigin(inRelease), "Ubuntu") {
		return UbuntuKeyring
	}
	return DebianKeyring
}
