package wire

import (
	"crypto/rand"
)

// maxSourceIDLen is the longest Oversync-Source-ID the protocol allows, in bytes.
const maxSourceIDLen = 256

// ValidSourceID reports whether s is a source id: 1 to 256 bytes, each visible ASCII ('!' … '~'),
// compared byte for byte with no trimming or case folding (docs/protocol-v1.md §2.3).
func ValidSourceID(s string) bool {
	if len(s) == 0 || len(s) > maxSourceIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}

// ValidUUID reports whether s is a UUID in the one form the protocol carries: 36 characters,
// lowercase hex, dashes after the 8th, 12th, 16th and 20th digit, any version
// (docs/protocol-v1.md §1.4).
func ValidUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isLowerHex(s[i]) {
				return false
			}
		}
	}
	return true
}

// ValidHash reports whether s is a hash as the protocol carries it: 64 lowercase hex digits.
func ValidHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLowerHex(s[i]) {
			return false
		}
	}
	return true
}

func isLowerHex(b byte) bool {
	return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f')
}

// NewUUID returns a random (version 4) UUID in the canonical lowercase form, from crypto/rand.
func NewUUID() string {
	var u [16]byte
	rand.Read(u[:]) // never fails: the runtime aborts if the system's random source does
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	const digits = "0123456789abcdef"
	var out [36]byte
	j := 0
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = digits[b>>4], digits[b&0xf]
		j += 2
	}
	return string(out[:])
}
