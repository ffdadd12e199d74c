package config

import (
	"strings"
	"testing"
)

func parseWith(t *testing.T, agentAuth string) error {
	t.Helper()
	raw := `{"listen":"127.0.0.1:15001","adminListen":"127.0.0.1:15021","caCertFile":"/c","caKeyFile":"/k",
	"rules":[{"name":"cal","hosts":["api.test"],"headers":[{"name":"Authorization","value":"Bearer {secret}","oauthProvider":"cal"}]}],
	"allow":{"hosts":[],"cidrs":[],"ports":[443]},"passthrough":[],"denyCidrs":[]` + agentAuth + `}`
	_, err := Parse([]byte(raw))
	return err
}

func TestAgentAuthTokenURLOrFile(t *testing.T) {
	files := `"threadIdFile":"/a/thread-id","proxyTokenFile":"/a/proxy-token"`
	cases := []struct {
		block, wantErr string
	}{
		{`,"agentAuth":{"tokenURL":"http://rt.ns.svc:8000/v2/auth/sandbox/token",` + files + `}`, ""},
		{`,"agentAuth":{"tokenURLFile":"/a/token-url",` + files + `}`, ""},
		{`,"agentAuth":{"tokenURL":"http://rt/x","tokenURLFile":"/a/token-url",` + files + `}`, "not both"},
		{`,"agentAuth":{` + files + `}`, "tokenURL or tokenURLFile is required"},
		{`,"agentAuth":{"tokenURL":"ftp://rt/x",` + files + `}`, "must be an http(s) URL"},
		{`,"agentAuth":{"tokenURLFile":"/a/token-url"}`, "threadIdFile and agentAuth.proxyTokenFile are required"},
		{``, "needs agentAuth"},
	}
	for _, c := range cases {
		err := parseWith(t, c.block)
		if c.wantErr == "" && err != nil {
			t.Errorf("%s: unexpected error %v", c.block, err)
		}
		if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: err = %v, want %q", c.block, err, c.wantErr)
		}
	}
}
