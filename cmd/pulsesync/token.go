package main

import (
	"fmt"
	"time"

	"github.com/pulsesync/pulsesync/httpapi/auth"
)

// tokenCmd mints an HS256 token for scripts and tests.
type tokenCmd struct {
	Secret string        `name:"secret" env:"PULSESYNC_JWT_SECRET,JWT_SECRET" placeholder:"SECRET" help:"HMAC secret (required)"`
	Sub    string        `name:"sub" required:"" help:"user id (the sub claim)"`
	Did    string        `name:"did" required:"" help:"device id (the did claim)"`
	TTL    time.Duration `name:"ttl" default:"1h" help:"lifetime; 0 = no exp claim (refused unless the server allows it)"`
}

// Run prints the token.
func (cmd *tokenCmd) Run(e *runEnv) error {
	switch {
	case cmd.Secret == "":
		return usageError{"--secret / PULSESYNC_JWT_SECRET: no secret given"}
	case cmd.TTL < 0:
		return usageError{"--ttl must not be negative"}
	}
	token, err := auth.Mint([]byte(cmd.Secret), cmd.Sub, cmd.Did, cmd.TTL)
	if err != nil {
		return fmt.Errorf("mint token: %w", err)
	}
	_, err = fmt.Fprintln(e.stdout, token)
	return err
}
