package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pulsesync/pulsesync/httpapi/auth"
)

// tokenCommand mints an HS256 token for scripts and tests.
func tokenCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token", "Mint an HS256 token signed with JWT_SECRET (or --secret).", stderr)
	secret := fs.String("secret", os.Getenv("JWT_SECRET"), "HMAC secret (env JWT_SECRET)")
	sub := fs.String("sub", "", "user id (the sub claim), required")
	did := fs.String("did", "", "device id (the did claim), required")
	ttl := fs.Duration("ttl", time.Hour, "lifetime; 0 = no exp claim (refused unless the server allows it)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *secret == "":
		return usageError{"no secret: set JWT_SECRET or --secret"}
	case *sub == "" || *did == "":
		return usageError{"--sub and --did are required"}
	case *ttl < 0:
		return usageError{"--ttl must not be negative"}
	}
	token, err := auth.Mint([]byte(*secret), *sub, *did, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, token)
	return nil
}
