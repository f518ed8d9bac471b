package testutil

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// PGPKeyOptions describes a throw-away OpenPGP key for tests.
type PGPKeyOptions struct {
	Name, Email string
	// SigningSubkeys adds that many signing-capable subkeys (besides the
	// certify+sign primary key and its encryption subkey).
	SigningSubkeys int
	// Passphrase, when set, encrypts every secret key with it.
	Passphrase string
}

// PGPKey is a generated key: armored secret and public key blocks and the
// fingerprints (upper-case hex) of the primary key and its signing subkeys.
type PGPKey struct {
	ArmoredPrivate []byte
	ArmoredPublic  []byte
	Primary        string
	SigningSubkeys []string
}

// NewPGPKey generates an Ed25519 key (fast to make, accepted by the gpg and
// gpgv of every supported distro).
func NewPGPKey(t testing.TB, opts PGPKeyOptions) PGPKey {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "criu-forge test"
	}
	if opts.Email == "" {
		opts.Email = "test@criu-forge.invalid"
	}
	// Keys are back-dated so that every subkey is valid now and the later
	// subkeys are the newer ones ("the newest signing subkey" is well defined).
	created := time.Now().Add(-time.Hour)
	at := func(t time.Time) func() time.Time { return func() time.Time { return t } }
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: at(created)}
	e, err := openpgp.NewEntity(opts.Name, "", opts.Email, cfg)
	if err != nil {
		t.Fatalf("generate OpenPGP key: %v", err)
	}
	key := PGPKey{Primary: fingerprint(e.PrimaryKey.Fingerprint)}
	for i := 0; i < opts.SigningSubkeys; i++ {
		sub := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: at(created.Add(time.Duration(i+1) * time.Minute))}
		if err := e.AddSigningSubkey(sub); err != nil {
			t.Fatalf("add signing subkey: %v", err)
		}
		key.SigningSubkeys = append(key.SigningSubkeys, fingerprint(e.Subkeys[len(e.Subkeys)-1].PublicKey.Fingerprint))
	}
	if opts.Passphrase != "" {
		if err := e.EncryptPrivateKeys([]byte(opts.Passphrase), nil); err != nil {
			t.Fatalf("encrypt OpenPGP key: %v", err)
		}
	}
	key.ArmoredPrivate = armored(t, openpgp.PrivateKeyType, func(w *bytes.Buffer) error { return e.SerializePrivateWithoutSigning(w, nil) })
	key.ArmoredPublic = armored(t, openpgp.PublicKeyType, func(w *bytes.Buffer) error { return e.Serialize(w) })
	return key
}

func armored(t testing.TB, blockType string, serialize func(*bytes.Buffer) error) []byte {
	t.Helper()
	var raw, out bytes.Buffer
	if err := serialize(&raw); err != nil {
		t.Fatalf("serialize OpenPGP key: %v", err)
	}
	w, err := armor.Encode(&out, blockType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func fingerprint(fp []byte) string { return strings.ToUpper(hex.EncodeToString(fp)) }
