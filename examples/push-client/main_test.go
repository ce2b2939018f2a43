package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestClientsGuideQuotesThisFile keeps docs/clients.md honest: its Go snippet must be a part of
// this compiled example, character for character.
func TestClientsGuideQuotesThisFile(t *testing.T) {
	doc, err := os.ReadFile("../../docs/clients.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) == 0 {
		t.Fatal("docs/clients.md quotes no Go code")
	}
	for _, b := range blocks {
		if !strings.Contains(string(src), string(b[1])) {
			t.Errorf("docs/clients.md quotes Go code that examples/push-client/main.go does not hold:\n%s", b[1])
		}
	}
}
