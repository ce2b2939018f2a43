package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/pulsesync/pulsesync/loadtest"
	"github.com/pulsesync/pulsesync/loadtest/scenarios"
)

// spreadOverNodes returns the scenario registry with the scenarios, in name order, pointed at
// the nodes in turn: with two nodes the push test's listeners (scenario "listeners") are served
// by node 1 and its uploaders by node 2, so every push crosses the fan-out. It also returns
// which node each scenario got, for the summary.
func spreadOverNodes(names []string, overrides scenarios.Params, urls []string) (loadtest.Registry, string) {
	regs := make([]loadtest.Registry, len(urls))
	for i, u := range urls {
		o := overrides
		o.URL = u
		regs[i] = scenarios.Registry(o)
	}
	names = slices.Sorted(slices.Values(names))
	nodeOf := make(map[string]int, len(names))
	var placed []string
	for i, name := range names {
		nodeOf[name] = i % len(urls)
		placed = append(placed, fmt.Sprintf("%s → node %d", name, i%len(urls)+1))
	}
	reg := loadtest.Registry{}
	for exec := range regs[0] {
		reg[exec] = func(env *loadtest.Env, raw json.RawMessage) (loadtest.Exec, error) {
			return regs[nodeOf[env.Scenario]][exec](env, raw)
		}
	}
	return reg, strings.Join(placed, ", ")
}
