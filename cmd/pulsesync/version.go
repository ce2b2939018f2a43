package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version overrides the module version when set at build time with -ldflags "-X main.version=…"
// (release builds from a tarball have no module version of their own).
var version string

// versionCmd prints the version line.
type versionCmd struct{}

// Run prints what --version prints.
func (versionCmd) Run(e *runEnv) error {
	_, err := fmt.Fprintln(e.stdout, versionLine())
	return err
}

// versionLine names the build: the module version (or the -X override), the VCS revision and
// its time, and whether the tree had uncommitted changes, all from the binary's build info.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	v := version
	if v == "" && ok {
		v = info.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	parts := []string{"pulsesync " + v}
	if !ok {
		return parts[0]
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += "+modified"
		}
		parts = append(parts, "revision "+rev)
	}
	if at := settings["vcs.time"]; at != "" {
		parts = append(parts, "committed "+at)
	}
	parts = append(parts, info.GoVersion)
	return strings.Join(parts, ", ")
}
