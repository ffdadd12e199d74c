package netinit

import (
	"errors"
	"strings"
	"testing"
)

func TestPlanRedirectsEverythingButProxyAndLoopback(t *testing.T) {
	cmds, err := Plan(Options{ProxyUID: 1337, ProxyPort: 15001, AdminPort: 15021}, false)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range cmds {
		lines = append(lines, c.String())
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"-A BERTH_OUTPUT -m owner --uid-owner 1337 -j RETURN",
		"-A BERTH_OUTPUT -d 127.0.0.0/8 -j RETURN",
		"-A BERTH_OUTPUT -p tcp -j REDIRECT --to-ports 15001",
		"-A OUTPUT -p tcp -j BERTH_OUTPUT",
		"iptables -w 5 -A BERTH_ADMIN -m owner --uid-owner 1337 -j RETURN",
		"iptables -w 5 -A OUTPUT -p tcp -d 127.0.0.0/8 --dport 15021 -j BERTH_ADMIN",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "--dport 53") || strings.Contains(got, "ip6tables") {
		t.Errorf("unexpected rules:\n%s", got)
	}
	// The owner RETURN must come before the REDIRECT.
	if strings.Index(got, "--uid-owner") > strings.Index(got, "REDIRECT") {
		t.Error("REDIRECT precedes the proxy's exemption")
	}
	cmds, _ = Plan(Options{ProxyUID: 1337, ProxyPort: 15001, DNSAllow: true}, true)
	var all []string
	for _, c := range cmds {
		all = append(all, c.String())
	}
	if s := strings.Join(all, "\n"); !strings.Contains(s, "--dport 53 -j RETURN") || !strings.Contains(s, "ip6tables -w 5 -A BERTH_OUTPUT6 -p tcp --syn -j REJECT") {
		t.Errorf("dns/ipv6 plan:\n%s", s)
	}
	if _, err := Plan(Options{ProxyUID: 1337, ProxyPort: 0}, false); err == nil {
		t.Error("port 0 accepted")
	}
	if _, err := Plan(Options{ProxyUID: 1337, ProxyPort: 1, IPv6: "maybe"}, false); err == nil {
		t.Error("bad --ipv6 accepted")
	}
}

func TestApplyIsIdempotentAndReportsErrors(t *testing.T) {
	cmds, _ := Plan(Options{ProxyUID: 1337, ProxyPort: 15001}, false)
	exists := map[string]bool{}
	var ran []string
	run := func(tool string, args []string) ([]byte, error) {
		key := strings.Join(args, " ")
		if strings.Contains(key, " -L ") || strings.Contains(key, " -C ") {
			if exists[key] {
				return nil, nil
			}
			return []byte("No chain/target/match by that name."), errors.New("exit status 1")
		}
		ran = append(ran, key)
		return nil, nil
	}
	if err := Apply(cmds, run, func(string) {}); err != nil {
		t.Fatal(err)
	}
	first := len(ran)
	for _, c := range cmds {
		if c.Check != nil {
			exists[strings.Join(c.Check, " ")] = true
		}
	}
	ran = nil
	if err := Apply(cmds, run, func(string) {}); err != nil {
		t.Fatal(err)
	}
	if len(ran) != first-2 {
		t.Errorf("second run must skip creating the chain and the jump: %d vs %d", len(ran), first)
	}
	fail := func(tool string, args []string) ([]byte, error) {
		return []byte("iptables v1.8.9: can't initialize iptables table `nat': Permission denied"), errors.New("exit status 3")
	}
	err := Apply(cmds, fail, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "Permission denied") || !strings.Contains(err.Error(), "NET_ADMIN") {
		t.Errorf("error must carry the tool's message: %v", err)
	}
}
