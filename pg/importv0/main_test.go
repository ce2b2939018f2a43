package importv0_test

import (
	"testing"

	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
)

// Every database is a clone of the server's template: the migrated sync schemas and the demo
// tables. A source database replaces its sync schema with the reference's.
func TestMain(m *testing.M) { pgtest.Main(m, pgtest.Options{Template: servertest.Template}) }
