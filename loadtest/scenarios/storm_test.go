package scenarios

import (
	"strings"
	"testing"
)

func TestParseDownloadCounts_SumsByAnsweredFrom(t *testing.T) {
	text := `# HELP pulsesync_downloads_total Plain downloads by where the answer came from.
# TYPE pulsesync_downloads_total counter
pulsesync_downloads_total{answered_from="database"} 1200
pulsesync_downloads_total{answered_from="memory"} 35
pulsesync_downloads_total{answered_from="database",node="b"} 34 1700000000000
pulsesync_downloads_totally{answered_from="database"} 999
pulsesync_http_requests_total{code="200",route="/sync/download"} 1269
`
	c, err := parseDownloadCounts(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if c != (downloadCounts{memory: 35, database: 1234}) {
		t.Errorf("parsed %+v, want memory 35, database 1234", c)
	}
	for _, bad := range []string{
		"pulsesync_http_requests_total 3\n",                       // no download counter at all
		"pulsesync_downloads_total{answered_from=\"memory\"} x\n", // not a number
		"pulsesync_downloads_total{answered_from=\"memory\"} \n",  // no value
		"pulsesync_downloads_total{answered_from=\"memory\" 3\n",  // unclosed labels
	} {
		if _, err := parseDownloadCounts(strings.NewReader(bad)); err == nil {
			t.Errorf("parseDownloadCounts(%q) accepted it", bad)
		}
	}
}

func TestStormUsers_CoversTheDevicesUsers(t *testing.T) {
	for _, c := range []struct{ users, perUser, devices, want int }{
		{users: 200, perUser: 10, devices: 2000, want: 200},
		{users: 200, perUser: 10, devices: 15, want: 2}, // devices 1–10 user 1, 11–15 user 2
		{users: 3, perUser: 1, devices: 10, want: 3},    // devices wrap around the users
	} {
		if got := stormUsers(Params{Users: c.users, DevicesPerUser: c.perUser}, c.devices); got != c.want {
			t.Errorf("stormUsers(users %d, %d per user, %d devices) = %d, want %d", c.users, c.perUser, c.devices, got, c.want)
		}
	}
}
