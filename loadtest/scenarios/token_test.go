package scenarios

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestCredential_MintsHS256WithSubDidExp(t *testing.T) {
	p := Params{TokenTTL: 0}.withDefaults()
	c := newCredential(p, "load-user-3", "load-dev-9")
	now := time.Now()
	h, err := c.bearer(now)
	if err != nil {
		t.Fatal(err)
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		t.Fatalf("header %q lacks the Bearer scheme", h)
	}
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(DevSecret), nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil || !parsed.Valid {
		t.Fatalf("token does not verify with the shared secret: %v", err)
	}
	exp, _ := claims.GetExpirationTime()
	if claims["sub"] != "load-user-3" || claims["did"] != "load-dev-9" || exp == nil || exp.Unix() != now.Add(time.Hour).Unix() {
		t.Errorf("claims = %v, want sub load-user-3, did load-dev-9, exp now+1h", claims)
	}
	if again, _ := c.bearer(now.Add(50 * time.Minute)); again != h {
		t.Error("token re-minted with more than a tenth of its lifetime left")
	}
	if renewed, _ := c.bearer(now.Add(55 * time.Minute)); renewed == h {
		t.Error("token not re-minted with less than a tenth of its lifetime left")
	}
}
