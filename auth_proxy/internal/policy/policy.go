// Package policy decides, per destination, whether egress is allowed, whether it
// is tunnelled untouched (passthrough) and which injection rule applies. It is
// pure: no I/O, so every decision is unit-tested.
package policy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/berth-dev/berth/auth_proxy/internal/config"
)

// Policy is the compiled form of the config's rules, allow list and deny list.
type Policy struct {
	rules       []config.Rule
	allowHosts  []string
	passthrough []string
	allowCIDRs  []netip.Prefix
	denyCIDRs   []netip.Prefix
	ports       map[int]bool
}

// Decision is the outcome for one destination.
type Decision struct {
	Allowed     bool
	Passthrough bool
	// By names what allowed it ("rule openai", "passthrough", "allow.hosts", "allow.cidrs").
	By string
	// Reason explains a denial and names the missing allow rule; it is safe to show.
	Reason string
}

// New compiles a validated config.
func New(c *config.Config) *Policy {
	p := &Policy{rules: c.Rules, allowHosts: c.Allow.Hosts, passthrough: c.Passthrough, ports: map[int]bool{}}
	for _, s := range c.Allow.CIDRs {
		p.allowCIDRs = append(p.allowCIDRs, netip.MustParsePrefix(s).Masked())
	}
	for _, s := range c.DenyCIDRs {
		p.denyCIDRs = append(p.denyCIDRs, netip.MustParsePrefix(s).Masked())
	}
	ports := c.Allow.Ports
	if len(ports) == 0 {
		ports = []int{443, 80}
	}
	for _, port := range ports {
		p.ports[port] = true
	}
	return p
}

// NormalizeHost lowercases and strips a trailing dot and IPv6 brackets.
func NormalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// MatchHost matches a host against "name", "*.suffix" (one or more labels) or "*".
func MatchHost(pattern, host string) bool {
	pattern, host = NormalizeHost(pattern), NormalizeHost(host)
	if pattern == "*" {
		return host != ""
	}
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+suffix) && len(host) > len(suffix)+1
	}
	return pattern == host
}

func matchAny(patterns []string, host string) bool {
	for _, p := range patterns {
		if MatchHost(p, host) {
			return true
		}
	}
	return false
}

func inAny(prefixes []netip.Prefix, ip netip.Addr) (netip.Prefix, bool) {
	ip = ip.Unmap()
	for _, p := range prefixes {
		if p.Contains(ip) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// IsPassthrough reports whether host is tunnelled without interception.
func (p *Policy) IsPassthrough(host string) bool { return host != "" && matchAny(p.passthrough, host) }

// hostAllowedBy names the entry that allows host by name, or "".
func (p *Policy) hostAllowedBy(host string) string {
	if host == "" {
		return ""
	}
	if p.IsPassthrough(host) {
		return "passthrough"
	}
	for _, r := range p.rules {
		if matchAny(r.Hosts, host) {
			return "rule " + r.Name
		}
	}
	if matchAny(p.allowHosts, host) {
		return "allow.hosts"
	}
	return ""
}

// Decide checks one destination: the port, then the host name (rule,
// passthrough or allow.hosts), then the address the proxy will dial: an address
// in allow.cidrs is allowed (also for names not listed), an address in the deny
// list (metadata, internal ranges) is refused unless allow.cidrs contains it.
// host may be an IP literal or "" (no SNI/Host); ip may be invalid (not known yet).
func (p *Policy) Decide(host string, port int, ip netip.Addr) Decision {
	if !p.ports[port] {
		return Decision{Reason: fmt.Sprintf("port %d is not in allow.ports (destination %s)", port, hostOr(host))}
	}
	if lit, err := netip.ParseAddr(host); err == nil && !ip.IsValid() {
		ip = lit
	}
	ip = ip.Unmap()
	_, inAllowCIDR := inAny(p.allowCIDRs, ip)
	by := p.hostAllowedBy(host)
	if by == "" {
		if inAllowCIDR {
			return Decision{Allowed: true, By: "allow.cidrs"}
		}
		if _, err := netip.ParseAddr(host); err == nil || host == "" {
			also := ""
			if deny, ok := inAny(p.denyCIDRs, ip); ok {
				also = fmt.Sprintf(" (and it is in denyCidrs %s)", deny)
			}
			return Decision{Reason: fmt.Sprintf("address %s is not allowed: no allow.cidrs entry contains it%s", ip, also)}
		}
		return Decision{Reason: fmt.Sprintf("host %q is not allowed: no rule, passthrough or allow.hosts entry matches it (add it to allow.hosts)", host)}
	}
	if deny, ok := inAny(p.denyCIDRs, ip); ok && !inAllowCIDR {
		return Decision{Reason: fmt.Sprintf("address %s of %s is in denyCidrs %s (add it to allow.cidrs to permit)", ip, hostOr(host), deny)}
	}
	return Decision{Allowed: true, Passthrough: by == "passthrough", By: by}
}

func hostOr(h string) string {
	if h == "" {
		return "(no host name)"
	}
	return h
}

// RuleFor returns the first rule matching host and path, or nil.
func (p *Policy) RuleFor(host, path string) *config.Rule {
	for i := range p.rules {
		r := &p.rules[i]
		if matchAny(r.Hosts, host) && strings.HasPrefix(path, r.PathPrefix) {
			return r
		}
	}
	return nil
}
