package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/pulsesync/pulsesync/internal/jcs"
)

const (
	annID  = "6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01"
	postID = "0b7e3f1a-2c4d-4e6f-8a1b-3c5d7e9f1a2b"
)

// canonical canonicalises a payload as the client sent it, as the store does before hashing.
func canonical(t *testing.T, payload string) []byte {
	t.Helper()
	out, err := jcs.Canonicalize([]byte(payload))
	if err != nil {
		t.Fatalf("canonicalize %s: %v", payload, err)
	}
	return out
}

// wireColumn is one column value as RenderSQL reads it back from PostgreSQL.
type wireColumn struct {
	name string
	kind Kind
	text string
	null bool
}

// wirePayload assembles a wire payload from read-back column texts through AppendWireValue,
// members in canonical order (the names here are ASCII, where byte order is UTF-16 order).
func wirePayload(cols ...wireColumn) []byte {
	b := []byte{'{'}
	for i, c := range cols {
		if i > 0 {
			if cols[i-1].name >= c.name {
				panic("wirePayload: columns out of order")
			}
			b = append(b, ',')
		}
		b = jcs.AppendString(b, c.name)
		b = append(b, ':')
		b = AppendWireValue(b, c.kind, c.text, c.null)
	}
	return append(b, '}')
}

// annWire is the wire payload of business.users row R of docs/protocol-v1.md §7.
func annWire(email, name, visits string) []byte {
	return wirePayload(
		wireColumn{name: "active", kind: KindBool, text: "true"},
		wireColumn{name: "email", kind: KindText, text: email},
		wireColumn{name: "id", kind: KindUUID, text: annID},
		wireColumn{name: "name", kind: KindText, text: name},
		wireColumn{name: "visits", kind: KindInt4, text: visits},
	)
}

func users(version int64, op string, payload []byte) HashRow {
	return HashRow{Schema: "business", Table: "users", Key: CanonicalKey("id", annID), Op: op, Version: version, Payload: payload}
}

// TestRequestHash_Vectors: vector A of docs/protocol-v1.md §4.5 and the request hashes of the
// worked example (§7), from the payloads as the clients sent them.
func TestRequestHash_Vectors(t *testing.T) {
	tests := []struct {
		name string
		rows []HashRow
		want string
	}{
		{"vector A", []HashRow{{
			Schema: "business", Table: "numeric_values", Key: CanonicalKey("id", "n-1"), Op: "INSERT", Version: 0,
			Payload: canonical(t, `{"id":"n-1","amount":"1234567890.123456789","count":"2147483647","enabled":"1",
				"large_count":"9007199254740993","ratio":"1.2345678901234567","score":"5e-324","small_count":"-32768"}`),
		}}, "ce9f4105cdda62a7705ef32476ebb3b3737fb44866a4bf4eedfeaaa571eb443a"},
		{"§7 push 1 (seed)", []HashRow{users(0, "INSERT", canonical(t,
			`{"active":"1","email":"ann@example.com","id":"`+annID+`","name":"Ann","visits":"3"}`))},
			"361fd779dbf72311f02211bed60bca4c1fd2a72b9f8dd6a3a8d62d921ad0c69a"},
		{"§7 laptop rename", []HashRow{users(1, "UPDATE", canonical(t,
			`{"active":"1","email":"ann@example.com","id":"`+annID+`","name":"Ann Lee","visits":"4"}`))},
			"51591ac181cc6899f14aad0ddd73ebe9583041cc52a279500e266a4e82ae6fb4"},
		{"§7 conflicting e-mail change", []HashRow{users(1, "UPDATE", canonical(t,
			`{"active":"1","email":"ann@work.example","id":"`+annID+`","name":"Ann","visits":"3"}`))},
			"628bd53f7671827cbd95e33e4ee2f663ee3f523f58dcf7a86e8ce569b4e0f344"},
		{"§7 merged re-push", []HashRow{users(2, "UPDATE", canonical(t,
			`{"visits":"4","name":"Ann Lee","id":"`+annID+`","email":"ann@work.example","active":"1"}`))},
			"9067eea6bb8ff1380c71044d1525b966eb2bb543637fb3b94fdd751b57a6a3da"},
		{"§7 delete", []HashRow{users(3, "DELETE", nil)},
			"5e07a0e9691c998aaa41e1e7010f1feaa44fd84fa9a35dc8ec720b81a120f992"},
	}
	for _, tt := range tests {
		if got := RequestHash(tt.rows); got != tt.want {
			t.Errorf("%s: RequestHash = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestBundleHash_Vectors: vectors B, C and D of docs/protocol-v1.md §4.5 and the bundle hashes of
// the worked example (§7), the payloads built from read-back column texts.
func TestBundleHash_Vectors(t *testing.T) {
	vectorB := wirePayload(
		wireColumn{name: "amount", kind: KindNumeric, text: "1234567890.1234567890"},
		wireColumn{name: "count", kind: KindInt4, text: "2147483647"},
		wireColumn{name: "enabled", kind: KindBool, text: "true"},
		wireColumn{name: "id", kind: KindText, text: "n-1"},
		wireColumn{name: "large_count", kind: KindInt8, text: "9007199254740993"},
		wireColumn{name: "ratio", kind: KindFloat4, text: "1.2345678806304932"},
		wireColumn{name: "score", kind: KindFloat8, text: "4.9406564584124654e-324"},
		wireColumn{name: "small_count", kind: KindInt2, text: "-32768"},
	)
	post := wirePayload(
		wireColumn{name: "author_id", kind: KindUUID, text: annID},
		wireColumn{name: "body", kind: KindText, text: "Tab\there \"quoted\" é €"},
		wireColumn{name: "id", kind: KindUUID, text: postID},
		wireColumn{name: "score", kind: KindNumeric, text: "-0.5"},
		wireColumn{name: "title", kind: KindText, text: "Hello"},
	)
	tests := []struct {
		name string
		rows []HashRow
		hash string
		size int64
	}{
		{"vector B", []HashRow{{Schema: "business", Table: "numeric_values", Key: CanonicalKey("id", "n-1"),
			Op: "INSERT", Version: 1, Payload: vectorB}},
			"92fe0879f22de1e60f1bec5655f94cc641389e2ba5624666402a2a5cdd7150e3", 311},
		{"vector C", []HashRow{users(4, "DELETE", nil)},
			"353abf1d6fb0e04889327d75278438526f0fa1868c489fb6385b050f60251f8b", 156},
		{"vector D", []HashRow{
			{Schema: "business", Table: "posts", Key: CanonicalKey("id", postID), Op: "INSERT", Version: 4, Payload: post},
			users(4, "DELETE", nil),
		}, "6e786150ebdd49ae747ae8a4f2abd71d696440ede84ad3d4c91691c832b9a83c", 471},
		{"§7 bundle 1", []HashRow{users(1, "INSERT", annWire("ann@example.com", "Ann", "3"))},
			"2f7b2f65081f9904a2ef24a28138d4c58abca00cc41dfc5ebcbf90c1f1c57af7", 263},
		{"§7 bundle 2", []HashRow{users(2, "UPDATE", annWire("ann@example.com", "Ann Lee", "4"))},
			"090ec5fe1f8b552188a629f09afffc720ee145a5cf22aa6e875733f15d670388", -1},
		{"§7 bundle 3", []HashRow{users(3, "UPDATE", annWire("ann@work.example", "Ann Lee", "4"))},
			"5cb4db83979ca754e8a3b1e46b7656eea77c18e6a885f0396764180411742034", -1},
	}
	for _, tt := range tests {
		hash, size := BundleHash(tt.rows)
		if hash != tt.hash || (tt.size >= 0 && size != tt.size) {
			t.Errorf("%s: BundleHash = %s, %d bytes; want %s, %d bytes", tt.name, hash, size, tt.hash, tt.size)
		}
	}
}

// TestBundleHash_StreamsLargeBundles: a bundle far larger than the hash buffer hashes to the
// SHA-256 of its whole canonical array, which jcs agrees is canonical.
func TestBundleHash_StreamsLargeBundles(t *testing.T) {
	rows := make([]HashRow, 5000)
	for i := range rows {
		rows[i] = users(int64(9), "UPDATE", annWire("ann@example.com", strings.Repeat("n", i%50), "4"))
	}
	rows[17].Payload, rows[17].Op = nil, "DELETE"

	var whole []byte
	whole = append(whole, '[')
	for i, r := range rows {
		if i > 0 {
			whole = append(whole, ',')
		}
		obj := `{"table":` + string(jcs.AppendString(nil, r.Table)) + `,"schema":"business","row_version":"9","row_ordinal":"` +
			strconv.Itoa(i) + `","op":"` + r.Op + `","key":` + string(r.Key) + `,"payload":` + string(appendObject(nil, r.Payload)) + `}`
		whole = append(whole, obj...)
	}
	whole = append(whole, ']')
	canon := canonical(t, string(whole))
	sum := sha256.Sum256(canon)

	hash, size := BundleHash(rows)
	if want := hex.EncodeToString(sum[:]); hash != want || size != int64(len(canon)) {
		t.Fatalf("BundleHash = %s, %d bytes; want %s, %d bytes", hash, size, want, len(canon))
	}
	if size < 4*hashFlushSize {
		t.Fatalf("bundle of %d bytes does not exercise the streaming flush", size)
	}
}

func TestHash_EmptyInput(t *testing.T) {
	empty := sha256.Sum256([]byte("[]"))
	want := hex.EncodeToString(empty[:])
	if got := RequestHash(nil); got != want {
		t.Errorf("RequestHash(nil) = %s, want %s", got, want)
	}
	if got, size := BundleHash(nil); got != want || size != 2 {
		t.Errorf("BundleHash(nil) = %s, %d; want %s, 2", got, size, want)
	}
}

func TestCanonicalKey(t *testing.T) {
	tests := []struct{ column, value, want string }{
		{"id", annID, `{"id":"` + annID + `"}`},
		{"id", "a\"b\\c\n", `{"id":"a\"b\\c\n"}`},
		{"k", "é/€", `{"k":"é/€"}`},
	}
	for _, tt := range tests {
		if got := string(CanonicalKey(tt.column, tt.value)); got != tt.want {
			t.Errorf("CanonicalKey(%q, %q) = %s, want %s", tt.column, tt.value, got, tt.want)
		}
	}
}

func BenchmarkBundleHash(b *testing.B) {
	for _, n := range []int{100, 10000} {
		rows := make([]HashRow, n)
		for i := range rows {
			rows[i] = users(int64(i+1), "UPDATE", annWire("ann@example.com", "Ann Lee", "4"))
		}
		_, size := BundleHash(rows)
		b.Run("rows="+strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				BundleHash(rows)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
