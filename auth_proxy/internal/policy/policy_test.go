package policy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-dev/berth/auth_proxy/internal/config"
)

func testPolicy(t *testing.T) *Policy {
	t.Helper()
	c, err := config.Parse([]byte(`{
	  "caCertFile": "x", "caKeyFile": "y",
	  "rules": [
	    {"name": "openai", "hosts": ["api.openai.com", "*.openai.azure.com"], "pathPrefix": "/v1/",
	     "headers": [{"name": "Authorization", "value": "Bearer {secret}", "secretFile": "/s/k"}]},
	    {"name": "openai-any", "hosts": ["api.openai.com"],
	     "headers": [{"name": "X-Other", "value": "static"}]}
	  ],
	  "allow": {"hosts": ["pypi.org", "*.pythonhosted.org"], "cidrs": ["10.1.0.0/16"]},
	  "passthrough": ["github.com"]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	return New(c)
}

func TestMatchHost(t *testing.T) {
	cases := []struct {
		pattern, host string
		want          bool
	}{
		{"api.openai.com", "api.openai.com", true},
		{"api.openai.com", "API.OpenAI.com.", true},
		{"api.openai.com", "xapi.openai.com", false},
		{"*.openai.azure.com", "eu.openai.azure.com", true},
		{"*.openai.azure.com", "a.b.openai.azure.com", true},
		{"*.openai.azure.com", "openai.azure.com", false},
		{"*.openai.azure.com", "evilopenai.azure.com", false},
		{"*", "anything.example", true},
		{"*", "", false},
		{"::1", "[::1]", true},
	}
	for _, c := range cases {
		if got := MatchHost(c.pattern, c.host); got != c.want {
			t.Errorf("MatchHost(%q, %q) = %v, want %v", c.pattern, c.host, got, c.want)
		}
	}
}

var noIP netip.Addr

func TestDecideByName(t *testing.T) {
	p := testPolicy(t)
	for host, by := range map[string]string{
		"api.openai.com": "rule openai", "x.openai.azure.com": "rule openai",
		"files.pythonhosted.org": "allow.hosts", "github.com": "passthrough", "10.1.2.3": "allow.cidrs",
	} {
		d := p.Decide(host, 443, noIP)
		if !d.Allowed || d.By != by {
			t.Errorf("%s: got %+v, want allowed by %s", host, d, by)
		}
	}
	if d := p.Decide("github.com", 443, noIP); !d.Passthrough {
		t.Errorf("github.com must be passthrough: %+v", d)
	}
	d := p.Decide("evil.example", 443, netip.MustParseAddr("198.18.0.1"))
	if d.Allowed || !strings.Contains(d.Reason, `"evil.example"`) || !strings.Contains(d.Reason, "allow.hosts") {
		t.Errorf("evil.example: %+v", d)
	}
	if d := p.Decide("pypi.org", 8443, noIP); d.Allowed || !strings.Contains(d.Reason, "allow.ports") {
		t.Errorf("port 8443 must be denied by the default ports: %+v", d)
	}
	if d := p.Decide("10.2.0.1", 443, noIP); d.Allowed || !strings.Contains(d.Reason, "allow.cidrs") {
		t.Errorf("10.2.0.1: %+v", d)
	}
	if d := p.Decide("", 443, noIP); d.Allowed {
		t.Errorf("no host must be denied: %+v", d)
	}
	// A name that is not listed but resolves into allow.cidrs (a cluster Service) is allowed.
	if d := p.Decide("svc.ns.svc.cluster.local", 443, netip.MustParseAddr("10.1.0.9")); !d.Allowed || d.By != "allow.cidrs" {
		t.Errorf("name in allow.cidrs: %+v", d)
	}
}

func TestDecideDeniesMetadataAndInternal(t *testing.T) {
	p := testPolicy(t)
	for _, ip := range []string{"169.254.169.254", "10.9.9.9", "192.168.1.1", "127.0.0.1", "::ffff:169.254.169.254", "fd00::1"} {
		d := p.Decide("api.openai.com", 443, netip.MustParseAddr(ip))
		if d.Allowed || !strings.Contains(d.Reason, "denyCidrs") {
			t.Errorf("%s must be denied: %+v", ip, d)
		}
	}
	if d := p.Decide("169.254.169.254", 80, noIP); d.Allowed {
		t.Errorf("metadata IP literal must be denied: %+v", d)
	}
	if d := p.Decide("api.openai.com", 443, netip.MustParseAddr("10.1.0.5")); !d.Allowed {
		t.Errorf("allow.cidrs must override the deny list: %+v", d)
	}
	if d := p.Decide("api.openai.com", 443, netip.MustParseAddr("198.18.0.1")); !d.Allowed {
		t.Errorf("public address must pass: %+v", d)
	}
}

func TestRuleFor(t *testing.T) {
	p := testPolicy(t)
	if r := p.RuleFor("api.openai.com", "/v1/chat"); r == nil || r.Name != "openai" {
		t.Errorf("got %v", r)
	}
	if r := p.RuleFor("api.openai.com", "/v2/x"); r == nil || r.Name != "openai-any" {
		t.Errorf("path outside the prefix falls to the next rule, got %v", r)
	}
	if r := p.RuleFor("pypi.org", "/v1/"); r != nil {
		t.Errorf("no rule for pypi.org, got %v", r)
	}
}

func TestConfigRejectsBadInput(t *testing.T) {
	for name, raw := range map[string]string{
		"public admin":  `{"caCertFile":"a","caKeyFile":"b","adminListen":"0.0.0.0:15021"}`,
		"unknown field": `{"caCertFile":"a","caKeyFile":"b","bogus":1}`,
		"bad cidr":      `{"caCertFile":"a","caKeyFile":"b","allow":{"cidrs":["10.0.0.0/99"]}}`,
		"bad glob":      `{"caCertFile":"a","caKeyFile":"b","allow":{"hosts":["a.*.com"]}}`,
		"secret no file": `{"caCertFile":"a","caKeyFile":"b","rules":[{"name":"r","hosts":["h"],
			"headers":[{"name":"A","value":"{secret}"}]}]}`,
		"no ca": `{}`,
	} {
		if _, err := config.Parse([]byte(raw)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
