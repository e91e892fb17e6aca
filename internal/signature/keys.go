package signature

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// PasswordEnv is where an encrypted cosign key's password is read from,
// as cosign itself reads it.
const PasswordEnv = "COSIGN_PASSWORD"

// ParsePublicKey reads a PEM public key (PKIX, as `cosign generate-key-pair`
// and `openssl pkey -pubout` write it).
func ParsePublicKey(data []byte) (crypto.PublicKey, error) {
	key, err := cryptoutils.UnmarshalPEMToPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("not a PEM public key: %w", err)
	}
	switch key.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
		return key, nil
	default:
		return nil, fmt.Errorf("a %T public key: want ECDSA, RSA or Ed25519", key)
	}
}

// ParsePrivateKey reads a PEM private key: PKCS#8 (`openssl genpkey`), SEC 1
// EC or PKCS#1 RSA, or cosign's encrypted key, whose password password
// returns (asked only for an encrypted key).
func ParsePrivateKey(data []byte, password func() ([]byte, error)) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not a PEM private key")
	}
	der := block.Bytes
	switch block.Type {
	case "ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY":
		pass, err := password()
		if err != nil {
			return nil, err
		}
		if der, err = encrypted.Decrypt(block.Bytes, pass); err != nil {
			return nil, fmt.Errorf("decrypt the %s: wrong password? (%w)", block.Type, err)
		}
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(der)
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(der)
	case "PRIVATE KEY":
	default:
		return nil, fmt.Errorf("a PEM %q block: want a private key", block.Type)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS#8 private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T private key cannot sign", key)
	}
	return signer, nil
}

// fingerprint is the SHA-256 of a public key's PKIX encoding, in hex.
func fingerprint(key crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}
