package pg

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// UUID is a row key. PostgreSQL uuid columns read and write it directly.
type UUID [16]byte

// ParseUUID accepts the forms the protocol allows for a pk (docs/protocol-v0.md §2): canonical
// 8-4-4-4-12 in any letter case, 32 hex digits, either wrapped in braces, or with a urn:uuid:
// prefix. Any version, the nil UUID included.
func ParseUUID(s string) (UUID, bool) {
	var u UUID
	switch {
	case len(s) == 38 && s[0] == '{' && s[37] == '}':
		s = s[1:37]
	case len(s) == 45 && strings.EqualFold(s[:9], "urn:uuid:"):
		s = s[9:]
	}
	switch len(s) {
	case 32:
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return u, false
		}
		s = s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	default:
		return u, false
	}
	if _, err := hex.Decode(u[:], []byte(s)); err != nil {
		return UUID{}, false
	}
	return u, true
}

// uuidFromBase64 reads the standard padded base64 of 16 bytes, the form in which clients with a
// BLOB key column send UUIDs inside payloads.
func uuidFromBase64(s string) (UUID, bool) {
	var u UUID
	var buf [18]byte // DecodedLen(24): Decode may use all of it
	if len(s) != 24 {
		return u, false
	}
	n, err := base64.StdEncoding.Decode(buf[:], []byte(s))
	if err != nil || n != 16 {
		return u, false
	}
	copy(u[:], buf[:16])
	return u, true
}

// String returns the canonical lower-case hyphenated form.
func (u UUID) String() string {
	return string(u.AppendText(make([]byte, 0, 36)))
}

// AppendText appends the canonical form to b.
func (u UUID) AppendText(b []byte) []byte {
	const digits = "0123456789abcdef"
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, digits[c>>4], digits[c&0xf])
	}
	return b
}
