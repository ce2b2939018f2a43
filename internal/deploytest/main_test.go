package deploytest

import (
	"testing"

	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.Options{Template: servertest.Template})
}
