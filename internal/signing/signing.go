// Package signing loads an OpenPGP secret key (from a file or an environment
// variable, optionally passphrase-protected) and makes the signatures that
// package repositories need: clear-signed InRelease, detached Release.gpg and
// repomd.xml.asc, and the exported public key for signed-by.
//
// A key is chosen by full fingerprint or long key id, primary key or subkey
// alike (the ids gpg --list-keys --with-subkey-fingerprints prints); without
// an id the newest valid signing-capable (sub)key is used, as gpg does.
// Signatures use SHA-256. Secret material and the passphrase never appear in
// errors, logs or fmt output.
package signing

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// KeyOptions says where the signing key is and which (sub)key to use.
type KeyOptions struct {
	Path          string // armored or binary secret key file
	Env           string // or: name of an environment variable holding the armored secret key
	PassphraseEnv string // name of the environment variable holding the passphrase ("" = none)
	KeyID         string // optional: full fingerprint or long key id of the (sub)key to sign with
}

// Signer signs with one secret (sub)key.
type Signer struct {
	entity *openpgp.Entity
	key    openpgp.Key
	config *packet.Config
}

// Load reads the key named by opts, decrypts it and selects the signing
// (sub)key.
func Load(opts KeyOptions) (*Signer, error) {
	data, source, err := readKey(opts)
	if err != nil {
		return nil, err
	}
	entities, err := parseKeyRing(data)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: not an OpenPGP secret key: %w", source, err)
	}
	if err := decrypt(entities, opts.PassphraseEnv, source); err != nil {
		return nil, err
	}
	now := time.Now()
	var s *Signer
	if opts.KeyID != "" {
		s, err = selectByID(entities, opts.KeyID, now, source)
	} else {
		s, err = selectNewest(entities, now, source)
	}
	if err != nil {
		return nil, err
	}
	if s.key.PrivateKey == nil || s.key.PrivateKey.Dummy() {
		return nil, fmt.Errorf("signing key %s: key %s has no secret part here (exported public key or a stub from a smartcard): export the secret key with gpg --export-secret-keys", source, s.Fingerprint())
	}
	s.config = &packet.Config{DefaultHash: crypto.SHA256, SigningKeyId: s.key.PublicKey.KeyId}
	return s, nil
}

func readKey(opts KeyOptions) ([]byte, string, error) {
	switch {
	case opts.Path != "" && opts.Env != "":
		return nil, "", errors.New("signing key: give a key file or an environment variable, not both")
	case opts.Path != "":
		data, err := os.ReadFile(opts.Path)
		if err != nil {
			return nil, "", fmt.Errorf("signing key: read key file: %w", err)
		}
		return data, opts.Path, nil
	case opts.Env != "":
		v, ok := os.LookupEnv(opts.Env)
		if !ok || strings.TrimSpace(v) == "" {
			return nil, "", fmt.Errorf("signing key: environment variable %s is not set or empty: export the armored secret key into it", opts.Env)
		}
		return []byte(v), "from $" + opts.Env, nil
	default:
		return nil, "", errors.New("signing key: no key given: name a key file or an environment variable holding the armored secret key")
	}
}

func parseKeyRing(data []byte) (openpgp.EntityList, error) {
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP")) {
		return openpgp.ReadArmoredKeyRing(bytes.NewReader(trimmed))
	}
	return openpgp.ReadKeyRing(bytes.NewReader(data))
}

// decrypt unlocks every encrypted secret key with the passphrase, so that
// whichever (sub)key gets selected is usable.
func decrypt(entities openpgp.EntityList, passphraseEnv, source string) error {
	encrypted := false
	for _, e := range entities {
		if isEncrypted(e) {
			encrypted = true
		}
	}
	if !encrypted {
		return nil
	}
	if passphraseEnv == "" {
		return fmt.Errorf("signing key %s is protected by a passphrase: name the environment variable that holds it", source)
	}
	pass, ok := os.LookupEnv(passphraseEnv)
	if !ok {
		return fmt.Errorf("signing key %s: passphrase environment variable %s is not set", source, passphraseEnv)
	}
	for _, e := range entities {
		if !isEncrypted(e) {
			continue
		}
		if err := e.DecryptPrivateKeys([]byte(pass)); err != nil {
			// The library's message never contains the passphrase; ours does not either.
			return fmt.Errorf("signing key %s: wrong passphrase in %s (or a damaged key)", source, passphraseEnv)
		}
	}
	return nil
}

func isEncrypted(e *openpgp.Entity) bool {
	if e.PrivateKey != nil && e.PrivateKey.Encrypted {
		return true
	}
	for _, sk := range e.Subkeys {
		if sk.PrivateKey != nil && sk.PrivateKey.Encrypted {
			return true
		}
	}
	return false
}

// normalizeID accepts "0x" prefixes and the spaces gpg prints in fingerprints.
func normalizeID(id string) (string, error) {
	id = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(id), " ", ""))
	id = strings.TrimPrefix(id, "0X")
	if _, err := hex.DecodeString(id); err != nil || (len(id) != 16 && len(id) != 40 && len(id) != 64) {
		return "", fmt.Errorf("signing key id %q: give a full fingerprint (40 or 64 hex digits) or a long key id (16 hex digits)", id)
	}
	return id, nil
}

func selectByID(entities openpgp.EntityList, rawID string, now time.Time, source string) (*Signer, error) {
	id, err := normalizeID(rawID)
	if err != nil {
		return nil, err
	}
	for _, e := range entities {
		for _, pk := range publicKeys(e) {
			if !matches(pk, id) {
				continue
			}
			key, ok := e.SigningKeyById(now, pk.KeyId)
			if !ok || key.PublicKey.KeyId != pk.KeyId {
				return nil, fmt.Errorf("signing key %s: key %s cannot sign (not signing-capable, expired or revoked): choose another of %s", source, fpr(pk), strings.Join(signingFingerprints(entities, now), ", "))
			}
			return &Signer{entity: e, key: key}, nil
		}
	}
	return nil, fmt.Errorf("signing key %s: no key or subkey with id %s; keys present: %s", source, id, strings.Join(allFingerprints(entities), ", "))
}

func selectNewest(entities openpgp.EntityList, now time.Time, source string) (*Signer, error) {
	var best *Signer
	for _, e := range entities {
		key, ok := e.SigningKey(now)
		if !ok || key.PrivateKey == nil || key.PrivateKey.Dummy() {
			continue
		}
		if best == nil || key.PublicKey.CreationTime.After(best.key.PublicKey.CreationTime) {
			best = &Signer{entity: e, key: key}
		}
	}
	if best == nil {
		return nil, fmt.Errorf("signing key %s: no valid signing-capable secret key (keys present: %s): add a signing subkey or renew the key", source, strings.Join(allFingerprints(entities), ", "))
	}
	return best, nil
}

func publicKeys(e *openpgp.Entity) []*packet.PublicKey {
	keys := []*packet.PublicKey{e.PrimaryKey}
	for _, sk := range e.Subkeys {
		keys = append(keys, sk.PublicKey)
	}
	return keys
}

func matches(pk *packet.PublicKey, id string) bool {
	if len(id) == 16 {
		return strings.EqualFold(pk.KeyIdString(), id)
	}
	return fpr(pk) == id
}

func fpr(pk *packet.PublicKey) string { return strings.ToUpper(hex.EncodeToString(pk.Fingerprint)) }

func allFingerprints(entities openpgp.EntityList) []string {
	var out []string
	for _, e := range entities {
		for _, pk := range publicKeys(e) {
			out = append(out, fpr(pk))
		}
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

func signingFingerprints(entities openpgp.EntityList, now time.Time) []string {
	var out []string
	for _, e := range entities {
		for _, pk := range publicKeys(e) {
			if k, ok := e.SigningKeyById(now, pk.KeyId); ok && k.PublicKey.KeyId == pk.KeyId {
				out = append(out, fpr(pk))
			}
		}
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// ClearSign writes data as a clear-signed message (InRelease).
func (s *Signer) ClearSign(w io.Writer, data []byte) error {
	pt, err := clearsign.Encode(w, s.key.PrivateKey, s.config)
	if err != nil {
		return fmt.Errorf("clear-sign with %s: %w", s.Fingerprint(), err)
	}
	if _, err := pt.Write(data); err != nil {
		return fmt.Errorf("clear-sign with %s: %w", s.Fingerprint(), err)
	}
	if err := pt.Close(); err != nil {
		return fmt.Errorf("clear-sign with %s: %w", s.Fingerprint(), err)
	}
	return nil
}

// DetachSign writes a detached binary-document signature of data, armored
// (Release.gpg, repomd.xml.asc) or not.
func (s *Signer) DetachSign(w io.Writer, data []byte, armored bool) error {
	sign := openpgp.DetachSign
	if armored {
		sign = openpgp.ArmoredDetachSign
	}
	if err := sign(w, s.entity, bytes.NewReader(data), s.config); err != nil {
		var unsupported pgperrors.UnsupportedError
		if errors.As(err, &unsupported) {
			return fmt.Errorf("sign with %s: key type not supported: %w", s.Fingerprint(), err)
		}
		return fmt.Errorf("sign with %s: %w", s.Fingerprint(), err)
	}
	return nil
}

// PublicKey exports the public half of the whole key (primary, user ids and
// subkeys), binary for an apt signed-by keyring or armored for .asc files.
func (s *Signer) PublicKey(armored bool) ([]byte, error) {
	var raw bytes.Buffer
	if err := s.entity.Serialize(&raw); err != nil {
		return nil, fmt.Errorf("export public key %s: %w", s.Fingerprint(), err)
	}
	if !armored {
		return raw.Bytes(), nil
	}
	var out bytes.Buffer
	w, err := armor.Encode(&out, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Fingerprint is the upper-case hex fingerprint of the signing (sub)key.
func (s *Signer) Fingerprint() string { return fpr(s.key.PublicKey) }

// String names the key and nothing secret, so a stray %v is harmless.
func (s *Signer) String() string { return "OpenPGP signer " + s.Fingerprint() }

// GoString keeps %#v from dumping key material.
func (s *Signer) GoString() string { return s.String() }
