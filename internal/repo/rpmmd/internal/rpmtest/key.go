package rpmtest

import (
	"bytes"
	"os"
	"path/filepath"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// SigningKey writes a fresh, unprotected Ed25519 OpenPGP secret key to
// dir/secret.asc for signing test repositories, and returns its path.
func SigningKey(dir string) (string, error) {
	e, err := openpgp.NewEntity("criu-forge test", "", "repo@example.org", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		return "", err
	}
	if err := e.SerializePrivate(w, nil); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "secret.asc")
	return path, os.WriteFile(path, buf.Bytes(), 0o600)
}
