package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken is wrapped by every error of Verifier.Verify. The full message is safe to show
// a client, for example "invalid token: token has invalid claims: token is expired"; it never
// contains the token, the secret or key material. The jwt/v5 sentinels stay reachable with
// errors.Is (jwt.ErrTokenExpired, jwt.ErrTokenSignatureInvalid, …).
var ErrInvalidToken = errors.New("invalid token")

// hmacAlgs are the algorithms of Config.Secret, all three accepted like the reference does.
var hmacAlgs = []string{"HS256", "HS384", "HS512"}

// defaultJWKSRefresh is how often the JWKS is fetched when Config.JWKSRefresh is zero.
const defaultJWKSRefresh = 5 * time.Minute

// ErrNoSource is what Identity.RequireSource returns for a token without a did claim. Its
// message is the one v0 clients have always seen for such a token.
var ErrNoSource = fmt.Errorf("%w: %w: %w", ErrInvalidToken, jwt.ErrTokenInvalidClaims, errDidRequired)

// Identity is who a valid token speaks for. User and Source are at most MaxIdentityBytes of
// UTF-8 without control characters.
type Identity struct {
	User    string    // claim sub: the user id, verbatim
	Source  string    // claim did: the device's source id, verbatim; "" when the token has none
	Expires time.Time // claim exp; zero when the token has none (only with Config.AllowNoExp)
}

// RequireSource returns ErrNoSource when the token named no source (claim did). The v0
// protocol takes the source from the token; v1 takes it from a header and does not call this.
func (id Identity) RequireSource() error {
	if id.Source == "" {
		return ErrNoSource
	}
	return nil
}

// Config says which keys sign valid tokens. At least one of Secret and JWKSURL must be set; the
// zero value of every other field means its documented default.
type Config struct {
	// Secret is the shared HMAC secret of HS256/HS384/HS512 tokens; empty disables HMAC.
	Secret []byte
	// JWKSURL is an http(s) URL of a JWK Set with the RSA and EC public keys of RS*, PS* and ES*
	// tokens; empty disables them. A token is checked with the key whose kid equals the kid in
	// its header (a key without kid serves tokens without one).
	JWKSURL string
	// JWKSRefresh is how often the JWK Set is fetched again; 0 means 5 minutes.
	JWKSRefresh time.Duration
	// AllowNoExp accepts tokens without an exp claim, which then never expire. The reference
	// server accepts them; production should not (docs/protocol-v0.md §10.3 #7).
	AllowNoExp bool
	// HTTPClient fetches the JWK Set; nil means a private client with a 10 s timeout.
	HTTPClient *http.Client
	// Logger receives JWKS refresh failures and skipped keys; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.JWKSRefresh == 0 {
		c.JWKSRefresh = defaultJWKSRefresh
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	if len(c.Secret) == 0 && c.JWKSURL == "" {
		return errors.New("no key source: set a secret or a jwks url")
	}
	if c.JWKSRefresh < 0 {
		return fmt.Errorf("jwks refresh interval %v is negative", c.JWKSRefresh)
	}
	if c.JWKSURL != "" {
		u, err := url.Parse(c.JWKSURL)
		if err != nil {
			return fmt.Errorf("parse jwks url: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("jwks url must be an absolute http or https url")
		}
	}
	return nil
}

// Verifier checks tokens. It is safe for concurrent use; Verify takes no lock and does no I/O
// except when a token names a JWKS key the cache does not know.
type Verifier struct {
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc // v.key, bound once so Verify does not allocate a method value
	hmacKey any         // []byte copy of Config.Secret, boxed once; nil when HMAC is off
	jwks    *keySource  // nil without a JWKS URL
}

// NewVerifier checks cfg and, with a JWKS URL, fetches the key set once using ctx (failing if
// that fetch fails or yields no usable key) and starts refreshing it in the background until
// Close. Only algorithms of configured key sources are accepted; exp is required unless
// cfg.AllowNoExp, and no clock leeway is granted.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("auth config: %w", err)
	}
	cfg = cfg.withDefaults()

	v := &Verifier{}
	var algs []string
	if len(cfg.Secret) > 0 {
		v.hmacKey = slices.Clone(cfg.Secret)
		algs = append(algs, hmacAlgs...)
	}
	if cfg.JWKSURL != "" {
		jwks, err := newKeySource(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("load jwks: %w", err)
		}
		v.jwks = jwks
		algs = append(algs, rsaAlgs...)
		algs = append(algs, ecAlgs...)
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(algs)}
	if !cfg.AllowNoExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	v.parser = jwt.NewParser(opts...)
	v.keyFunc = v.key
	return v, nil
}

// Verify checks token's signature and claims and returns whose it is: sub must be a non-empty
// string, did a string if present (see Identity.RequireSource), both valid identities (at most
// MaxIdentityBytes of UTF-8 without control characters), exp (required unless
// Config.AllowNoExp) in the future and nbf, if present, not in the future. A token whose header
// has a crit member is refused: it names extensions that must be understood, and this verifier
// understands none (RFC 7515 §4.1.11). Every error wraps ErrInvalidToken. ctx only bounds the wait for a JWKS
// refresh triggered by an unknown kid.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	c, err := v.parse(token)
	if err != nil && v.jwks != nil && errors.Is(err, errUnknownKey) {
		// A rotated key may be published already: refresh (rate limited) and try once more.
		if done := v.jwks.refreshForUnknownKid(); done != nil {
			select {
			case <-done:
				c, err = v.parse(token)
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
	}
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	id := Identity{User: c.sub, Source: c.did}
	if c.exp != nil {
		id.Expires = c.exp.Time
	}
	return id, nil
}

func (v *Verifier) parse(token string) (*claims, error) {
	c := new(claims)
	if _, err := v.parser.ParseWithClaims(token, c, v.keyFunc); err != nil {
		return nil, err
	}
	return c, nil
}

// key is the jwt.Keyfunc: the parser has already limited alg to the configured families, so
// only the key source of alg's family is consulted. It runs before the signature is checked,
// which is where the header's crit is refused.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	if _, ok := t.Method.(*jwt.SigningMethodHMAC); ok {
		return v.hmacKey, nil
	}
	kid, _ := t.Header["kid"].(string)
	return v.jwks.key(kid, t.Method.Alg())
}

// Close stops the background JWKS refresh and waits for it. Verify keeps working with the
// last keys fetched. Close is idempotent.
func (v *Verifier) Close() {
	if v.jwks != nil {
		v.jwks.close()
	}
}
