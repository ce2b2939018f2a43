// Package auth verifies the Bearer JWTs of the v0 sync protocol and mints development tokens.
//
// A token names a user (claim sub) and, for the v0 protocol, one of the user's devices, the
// source (claim did); docs/protocol-v0.md §1.3 is the contract. v1 takes the source from a header
// (docs/protocol-v1.md §2.2), so did is optional here and Identity.RequireSource checks it for
// v0. Both are at most MaxIdentityBytes of UTF-8 without control characters, and a token with a
// crit header is refused. Tokens are signed either with a shared HMAC secret
// (HS256/384/512, the reference server's only mode) or with asymmetric keys published at a JWKS
// URL (RS*, PS*, ES*). The token's alg picks the key source, and only algorithms of configured
// sources are accepted, so "none" and key-confusion tricks are always rejected.
//
// The package knows nothing about HTTP handlers or the rest of pulsesync: the httpapi middleware
// turns its errors into 401 responses.
package auth
