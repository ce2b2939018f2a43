package wire

import (
	"testing"

	"github.com/pulsesync/pulsesync/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, pgtest.Options{}) }
