package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoBinaries means no directory holding PostgreSQL's initdb and postgres was found.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries found")

// debianBinGlob is where Debian and Ubuntu install each major version; it is not on PATH.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// findBinDir returns the directory holding initdb and postgres: explicit if given, else the
// first candidate that has both.
func findBinDir(ctx context.Context, explicit string) (string, error) {
	if explicit != "" {
		if err := checkBinDir(explicit); err != nil {
			return "", fmt.Errorf("%w: BinDir: %w", ErrNoBinaries, err)
		}
		return explicit, nil
	}
	for _, dir := range candidateBinDirs(ctx) {
		if checkBinDir(dir) == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w: looked for initdb on PATH, in `pg_config --bindir` and in %s; "+
		"install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql) or set Config.BinDir",
		ErrNoBinaries, debianBinGlob)
}

// candidateBinDirs lists the places to look, best first. A lookup that fails adds nothing.
func candidateBinDirs(ctx context.Context) []string {
	var dirs []string
	if path, err := exec.LookPath("initdb"); err == nil {
		// Resolve links such as /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb, so
		// that postgres is taken from the same installation as initdb.
		if real, err := filepath.EvalSymlinks(path); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	if out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	// Glob fails only on a malformed pattern, and this one is constant.
	debian, _ := filepath.Glob(debianBinGlob)
	sortNewestFirst(debian)
	return append(dirs, debian...)
}

// sortNewestFirst orders /usr/lib/postgresql/<version>/bin paths by version, newest first.
func sortNewestFirst(binDirs []string) {
	slices.SortFunc(binDirs, func(a, b string) int { return slices.Compare(majorVersion(b), majorVersion(a)) })
}

// majorVersion reads the version from a /usr/lib/postgresql/<version>/bin path as numbers
// ("9.6" → [9 6], "15" → [15]) so that 15 sorts above 9.6; a part that is not a number sorts lowest.
func majorVersion(binDir string) []int {
	var version []int
	for part := range strings.SplitSeq(filepath.Base(filepath.Dir(binDir)), ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			n = -1
		}
		version = append(version, n)
	}
	return version
}

// checkBinDir reports why dir cannot serve as BinDir, or nil.
func checkBinDir(dir string) error {
	for _, name := range []string{"initdb", "postgres"} {
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("%s is not an executable file", path)
		}
	}
	return nil
}
