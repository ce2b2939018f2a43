package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// Algorithms of the asymmetric key families a JWKS may publish.
var (
	rsaAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ecAlgs  = []string{"ES256", "ES384", "ES512"}
)

// minRSABits is the smallest modulus accepted; RFC 7518 §3.3 requires 2048 bits for RS*.
const minRSABits = 2048

// errUnsupportedKey marks a JWK that is well-formed but not for us (an encryption key, another
// key type); such keys are skipped quietly.
var errUnsupportedKey = errors.New("unsupported key")

// jwk is one entry of a JWK Set (RFC 7517) with the members needed for RSA and EC public keys.
type jwk struct {
	Kty string `json:"kty,omitempty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// publicKey is a parsed JWK: the key in the form jwt's signing methods expect and the
// algorithms it may verify.
type publicKey struct {
	key  any // *rsa.PublicKey or *ecdsa.PublicKey
	algs []string
}

// accepts reports whether a token signed with alg may be verified with k. Checking the family
// and, for EC, the curve here keeps an ES256 token from being checked against a P-384 key or an
// RSA key.
func (k publicKey) accepts(alg string) bool {
	return slices.Contains(k.algs, alg)
}

// parseJWK turns a JWK into a verification key. Errors never contain key material.
func parseJWK(j jwk) (publicKey, error) {
	if j.Use != "" && j.Use != "sig" {
		return publicKey{}, fmt.Errorf("%w: use %q", errUnsupportedKey, j.Use)
	}
	var (
		k   publicKey
		err error
	)
	switch j.Kty {
	case "RSA":
		k, err = parseRSA(j)
	case "EC":
		k, err = parseEC(j)
	default:
		return publicKey{}, fmt.Errorf("%w: kty %q", errUnsupportedKey, j.Kty)
	}
	if err != nil {
		return publicKey{}, err
	}
	if j.Alg != "" {
		if !k.accepts(j.Alg) {
			return publicKey{}, fmt.Errorf("alg %q does not fit a %s key", j.Alg, j.Kty)
		}
		k.algs = []string{j.Alg}
	}
	return k, nil
}

func parseRSA(j jwk) (publicKey, error) {
	n, err := decodeB64(j.N, "n")
	if err != nil {
		return publicKey{}, err
	}
	e, err := decodeB64(j.E, "e")
	if err != nil {
		return publicKey{}, err
	}
	mod := new(big.Int).SetBytes(n)
	if mod.BitLen() < minRSABits {
		return publicKey{}, fmt.Errorf("rsa modulus of %d bits, want at least %d", mod.BitLen(), minRSABits)
	}
	// e is a big-endian unsigned integer; 4 bytes cover every exponent crypto/rsa accepts.
	if len(e) == 0 || len(e) > 4 {
		return publicKey{}, errors.New("rsa exponent out of range")
	}
	var exp int64
	for _, b := range e {
		exp = exp<<8 | int64(b)
	}
	if exp < 3 || exp%2 == 0 || exp > 1<<31-1 {
		return publicKey{}, errors.New("rsa exponent out of range")
	}
	return publicKey{key: &rsa.PublicKey{N: mod, E: int(exp)}, algs: rsaAlgs}, nil
}

// ecCurve describes a NIST curve as JWK names it: its coordinate size and its one algorithm.
type ecCurve struct {
	curve elliptic.Curve
	size  int
	alg   string
}

func curveNamed(crv string) (ecCurve, bool) {
	switch crv {
	case "P-256":
		return ecCurve{elliptic.P256(), 32, "ES256"}, true
	case "P-384":
		return ecCurve{elliptic.P384(), 48, "ES384"}, true
	case "P-521":
		return ecCurve{elliptic.P521(), 66, "ES512"}, true
	}
	return ecCurve{}, false
}

func parseEC(j jwk) (publicKey, error) {
	c, ok := curveNamed(j.Crv)
	if !ok {
		return publicKey{}, fmt.Errorf("%w: crv %q", errUnsupportedKey, j.Crv)
	}
	// Uncompressed SEC 1 point: 0x04 || x || y, each coordinate left-padded to the curve size
	// (RFC 7518 asks for full-size coordinates; padding tolerates issuers that trim zeros).
	point := make([]byte, 1+2*c.size)
	point[0] = 4
	for i, coord := range [2]struct{ b64, name string }{{j.X, "x"}, {j.Y, "y"}} {
		b, err := decodeB64(coord.b64, coord.name)
		if err != nil {
			return publicKey{}, err
		}
		if len(b) > c.size {
			return publicKey{}, fmt.Errorf("ec coordinate %s longer than %d bytes", coord.name, c.size)
		}
		end := 1 + (i+1)*c.size
		copy(point[end-len(b):end], b)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(c.curve, point)
	if err != nil {
		return publicKey{}, fmt.Errorf("ec point: %w", err)
	}
	return publicKey{key: pub, algs: []string{c.alg}}, nil
}

// decodeB64 decodes a base64url JWK member. Padding is tolerated although RFC 7515 omits it.
func decodeB64(s, member string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("member %s missing", member)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", member, err)
	}
	return b, nil
}
