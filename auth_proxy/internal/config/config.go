// Package config loads the proxy's config.json (rendered by the operator from a
// SandboxPool's spec.authProxy) and rejects malformed input before anything listens.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
)

// Header is one header a rule injects; {secret} in Value is replaced by the
// content of SecretFile (trailing newline trimmed), or, with OAuthProvider, by the
// OAuth access token of the sandbox's thread user for that provider, fetched from the
// runtime (see AgentAuth).
type Header struct {
	Name          string `json:"name"`
	Value         string `json:"value"`
	SecretFile    string `json:"secretFile"`
	OAuthProvider string `json:"oauthProvider,omitempty"`
}

// AgentAuth is where user-scoped OAuth tokens come from: the runtime's
// GET TokenURL?provider=P, authenticated with the proxy token (ProxyTokenFile) for the
// thread the sandbox is claimed for (ThreadIDFile). The URL is fixed (TokenURL) or, when
// the runtime depends on who claims the sandbox, read from TokenURLFile (the operator
// writes it with the claim's thread id and proxy token). The files are re-read when they
// change, so a warm Pod bound to a thread later needs no restart.
type AgentAuth struct {
	TokenURL       string `json:"tokenURL,omitempty"`
	TokenURLFile   string `json:"tokenURLFile,omitempty"`
	ThreadIDFile   string `json:"threadIdFile"`
	ProxyTokenFile string `json:"proxyTokenFile"`
}

// ValidTokenURL reports whether u is an http(s) URL with a host.
func ValidTokenURL(u string) error {
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return fmt.Errorf("%q must be an http(s) URL", u)
	}
	return nil
}

// Rule injects headers into requests to matching hosts (and path prefix).
type Rule struct {
	Name        string   `json:"name"`
	Hosts       []string `json:"hosts"`
	PathPrefix  string   `json:"pathPrefix,omitempty"`
	Headers     []Header `json:"headers"`
	Placeholder string   `json:"placeholder,omitempty"`
}

// Allow is the default-deny allow list.
type Allow struct {
	Hosts []string `json:"hosts"`
	CIDRs []string `json:"cidrs"`
	Ports []int    `json:"ports"`
}

// Config is the whole config.json.
type Config struct {
	Listen            string     `json:"listen"`
	AdminListen       string     `json:"adminListen"`
	CACertFile        string     `json:"caCertFile"`
	CAKeyFile         string     `json:"caKeyFile"`
	UpstreamCAFile    string     `json:"upstreamCAFile,omitempty"`
	SecretPollSeconds float64    `json:"secretPollSeconds,omitempty"`
	Rules             []Rule     `json:"rules"`
	Allow             Allow      `json:"allow"`
	Passthrough       []string   `json:"passthrough"`
	DenyCIDRs         []string   `json:"denyCidrs"`
	AgentAuth         *AgentAuth `json:"agentAuth,omitempty"`
}

// DefaultDenyCIDRs are metadata, private, CGNAT, ULA and loopback ranges.
var DefaultDenyCIDRs = []string{
	"169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
	"100.64.0.0/10", "127.0.0.0/8", "fd00::/8", "fe80::/10", "::1/128",
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(raw)
}

// Parse decodes (unknown fields rejected), fills defaults and validates.
func Parse(raw []byte) (*Config, error) {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:15001"
	}
	if c.AdminListen == "" {
		c.AdminListen = "127.0.0.1:15021"
	}
	if c.DenyCIDRs == nil {
		c.DenyCIDRs = DefaultDenyCIDRs
	}
	if c.SecretPollSeconds <= 0 {
		c.SecretPollSeconds = 2
	}
	return &c, c.Validate()
}

// Validate reports the first problem found, naming the field.
func (c *Config) Validate() error {
	var errs []error
	host, _, err := net.SplitHostPort(c.AdminListen)
	if err != nil {
		errs = append(errs, fmt.Errorf("adminListen: %w", err))
	} else if ip, perr := netip.ParseAddr(host); perr != nil || !ip.IsLoopback() {
		errs = append(errs, fmt.Errorf("adminListen %q: must be a loopback address (the admin port is never reachable from the Pod IP)", c.AdminListen))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %w", err))
	}
	if c.CACertFile == "" || c.CAKeyFile == "" {
		errs = append(errs, errors.New("caCertFile and caKeyFile are required"))
	}
	seen := map[string]bool{}
	for i, r := range c.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name is required", where))
		} else if seen[r.Name] {
			errs = append(errs, fmt.Errorf("%s.name %q is duplicated", where, r.Name))
		}
		seen[r.Name] = true
		if len(r.Hosts) == 0 {
			errs = append(errs, fmt.Errorf("%s.hosts must not be empty", where))
		}
		for _, h := range r.Hosts {
			if err := ValidHostPattern(h); err != nil {
				errs = append(errs, fmt.Errorf("%s.hosts: %w", where, err))
			}
		}
		if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
			errs = append(errs, fmt.Errorf("%s.pathPrefix %q must start with /", where, r.PathPrefix))
		}
		if len(r.Headers) == 0 {
			errs = append(errs, fmt.Errorf("%s.headers must not be empty", where))
		}
		for j, h := range r.Headers {
			if h.Name == "" || strings.ContainsAny(h.Name, " :\r\n") {
				errs = append(errs, fmt.Errorf("%s.headers[%d].name %q is not a header name", where, j, h.Name))
			}
			if strings.Contains(h.Value, "{secret}") && h.SecretFile == "" && h.OAuthProvider == "" {
				errs = append(errs, fmt.Errorf("%s.headers[%d]: value uses {secret} but neither secretFile nor oauthProvider is set", where, j))
			}
			if h.SecretFile != "" && h.OAuthProvider != "" {
				errs = append(errs, fmt.Errorf("%s.headers[%d]: set secretFile or oauthProvider, not both", where, j))
			}
			if h.OAuthProvider != "" && !strings.Contains(h.Value, "{secret}") {
				errs = append(errs, fmt.Errorf("%s.headers[%d]: oauthProvider needs {secret} in value (e.g. \"Bearer {secret}\")", where, j))
			}
			if h.OAuthProvider != "" && c.AgentAuth == nil {
				errs = append(errs, fmt.Errorf("%s.headers[%d]: oauthProvider %q needs agentAuth (tokenURL or tokenURLFile, threadIdFile, proxyTokenFile)", where, j, h.OAuthProvider))
			}
		}
	}
	if a := c.AgentAuth; a != nil {
		switch {
		case a.TokenURL != "" && a.TokenURLFile != "":
			errs = append(errs, errors.New("agentAuth: set tokenURL or tokenURLFile, not both"))
		case a.TokenURLFile != "":
		case a.TokenURL == "":
			errs = append(errs, errors.New("agentAuth: tokenURL or tokenURLFile is required"))
		default:
			if err := ValidTokenURL(a.TokenURL); err != nil {
				errs = append(errs, fmt.Errorf("agentAuth.tokenURL %w", err))
			}
		}
		if a.ThreadIDFile == "" || a.ProxyTokenFile == "" {
			errs = append(errs, errors.New("agentAuth.threadIdFile and agentAuth.proxyTokenFile are required"))
		}
	}
	for _, h := range append(append([]string{}, c.Allow.Hosts...), c.Passthrough...) {
		if err := ValidHostPattern(h); err != nil {
			errs = append(errs, fmt.Errorf("allow.hosts/passthrough: %w", err))
		}
	}
	for _, p := range c.Allow.Ports {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("allow.ports: %d is not a port", p))
		}
	}
	for _, s := range append(append([]string{}, c.Allow.CIDRs...), c.DenyCIDRs...) {
		if _, err := netip.ParsePrefix(s); err != nil {
			errs = append(errs, fmt.Errorf("cidr %q: %w", s, err))
		}
	}
	return errors.Join(errs...)
}

// ValidHostPattern accepts "name", "*.suffix" and "*" (every host).
func ValidHostPattern(p string) error {
	if p == "*" {
		return nil
	}
	rest := strings.TrimPrefix(p, "*.")
	if rest == "" || strings.ContainsAny(rest, "*/: ") {
		return fmt.Errorf("host pattern %q: use a name, *.suffix or *", p)
	}
	return nil
}
