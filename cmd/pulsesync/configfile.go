package main

import (
	"fmt"
	"maps"
	"os"
	"strings"

	"github.com/alecthomas/kong"
	"go.yaml.in/yaml/v3"
)

// configFile is the path of a YAML file of settings. Its keys are the flags' names and its
// values what the flags would be given (scalars, or a list for a comma-separated setting):
//
//	database-url: postgres://sync@db/app
//	tables: [business.users, business.posts]
//	max-body: 64MiB
//	heartbeat: 20s
type configFile string

// BeforeResolve reads the file, once kong knows its path from the flag or PULSESYNC_CONFIG,
// and adds it as the source of the settings neither a flag nor a variable set.
func (configFile) BeforeResolve(ctx *kong.Context, trace *kong.Path) error {
	// The flag's own field is only filled in after resolving: ask kong for what it parsed.
	path, _ := ctx.FlagValue(trace.Flag).(configFile)
	if path == "" {
		return nil
	}
	values, err := readConfigFile(string(path), settingNames(ctx.Model.Node))
	if err != nil {
		return err
	}
	ctx.AddResolver(values)
	return nil
}

// settingNames are the flags of node and its subcommands: one file serves every command, each
// taking the keys it knows.
func settingNames(node *kong.Node) map[string]bool {
	names := map[string]bool{}
	for _, f := range node.Flags {
		names[f.Name] = true
	}
	for _, child := range node.Children {
		maps.Copy(names, settingNames(child))
	}
	return names
}

// notSettings are flags that are not settings: a file naming them is a mistake.
var notSettings = map[string]bool{"config": true, "help": true, "version": true}

// readConfigFile loads path and checks every key is a setting of some command, so that a
// misspelt one is an error rather than silently ignored.
func readConfigFile(path string, settings map[string]bool) (fileValues, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config / PULSESYNC_CONFIG: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("--config / PULSESYNC_CONFIG: %s: not a YAML mapping of settings: %w", path, err)
	}
	values := make(fileValues, len(doc))
	for key, v := range doc {
		if !settings[key] || notSettings[key] {
			return nil, fmt.Errorf("--config / PULSESYNC_CONFIG: %s: %q is not a setting", path, key)
		}
		text, err := settingText(v)
		if err != nil {
			return nil, fmt.Errorf("--config / PULSESYNC_CONFIG: %s: %s: %w", path, key, err)
		}
		values[key] = text
	}
	return values, nil
}

// settingText renders a file value as the flag's text: a scalar as written, a list joined
// with commas. Nested mappings are refused: every setting is flat.
func settingText(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case map[string]any:
		return "", fmt.Errorf("a mapping is not a setting's value")
	case []any:
		items := make([]string, len(v))
		for i, item := range v {
			text, err := settingText(item)
			if err != nil {
				return "", err
			}
			items[i] = text
		}
		return strings.Join(items, ","), nil
	}
	return fmt.Sprint(v), nil
}

// fileValues are the settings of a config file by flag name. As a kong resolver it yields to
// the environment: kong gives resolvers precedence over variables, and the order operators
// expect is flag, variable, file, default.
type fileValues map[string]string

// Validate is part of kong.Resolver; the keys were checked when the file was read.
func (fileValues) Validate(*kong.Application) error { return nil }

// Resolve returns the file's value for flag unless one of its variables is set.
func (v fileValues) Resolve(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
	for _, env := range flag.Envs {
		if _, ok := os.LookupEnv(env); ok {
			return nil, nil
		}
	}
	text, ok := v[flag.Name]
	if !ok {
		return nil, nil
	}
	return text, nil
}
