package deploytest

import (
	"os/exec"
	"testing"
)

// TestAlerts_PromtoolChecksRulesAndTheirUnitTests runs Debian's promtool on the shipped rules:
// `check rules` (syntax, PromQL, templates) and `test rules` on alerts_test.yml, which feeds
// the rules series shaped as a node exports them and expects each alert at its time.
func TestAlerts_PromtoolChecksRulesAndTheirUnitTests(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	dir := deployFile(t, "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v in deploy/prometheus: %v\n%s", args, err, out)
		}
	}
}
