// Package netinit builds and applies the iptables rules of the sandbox Pod's
// init container: every outbound TCP connection of every UID except the
// proxy's, except to loopback, is REDIRECTed to the proxy port.
package netinit

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Chain is the nat chain netinit owns; re-running flushes and refills it.
const Chain = "BERTH_OUTPUT"

// Filter6Chain is the ip6tables filter chain used with IPv6 "reject".
const Filter6Chain = "BERTH_OUTPUT6"

// AdminChain is the filter chain that keeps the proxy's admin port to the proxy UID.
const AdminChain = "BERTH_ADMIN"

// Options are the command-line flags.
type Options struct {
	ProxyUID  int
	ProxyPort int
	DNSAllow  bool   // leave TCP/53 alone (DNS over TCP to the cluster resolver)
	AdminPort int    // loopback port only the proxy UID may connect to (0 = none)
	IPv6      string // "reject" (default) or "off"
}

// Cmd is one iptables invocation; Check, when set, runs first and Cmd runs only if it fails.
type Cmd struct {
	Tool  string
	Args  []string
	Check []string
}

func (c Cmd) String() string { return c.Tool + " " + strings.Join(c.Args, " ") }

// Plan returns the commands in order. Pure, so the rule set is unit-tested.
func Plan(o Options, haveIP6 bool) ([]Cmd, error) {
	if o.ProxyUID < 0 || o.ProxyPort < 1 || o.ProxyPort > 65535 {
		return nil, fmt.Errorf("invalid --proxy-uid %d or --proxy-port %d", o.ProxyUID, o.ProxyPort)
	}
	uid, port := strconv.Itoa(o.ProxyUID), strconv.Itoa(o.ProxyPort)
	ipt := func(args ...string) Cmd {
		return Cmd{Tool: "iptables", Args: append([]string{"-w", "5", "-t", "nat"}, args...)}
	}
	cmds := []Cmd{
		{Tool: "iptables", Args: []string{"-w", "5", "-t", "nat", "-N", Chain}, Check: []string{"-w", "5", "-t", "nat", "-L", Chain, "-n"}},
		ipt("-F", Chain),
		ipt("-A", Chain, "-m", "owner", "--uid-owner", uid, "-j", "RETURN"),
		ipt("-A", Chain, "-d", "127.0.0.0/8", "-j", "RETURN"),
		ipt("-A", Chain, "-o", "lo", "-j", "RETURN"),
	}
	if o.DNSAllow {
		cmds = append(cmds, ipt("-A", Chain, "-p", "tcp", "--dport", "53", "-j", "RETURN"))
	}
	cmds = append(cmds,
		ipt("-A", Chain, "-p", "tcp", "-j", "REDIRECT", "--to-ports", port),
		Cmd{Tool: "iptables", Args: []string{"-w", "5", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-j", Chain},
			Check: []string{"-w", "5", "-t", "nat", "-C", "OUTPUT", "-p", "tcp", "-j", Chain}},
	)
	if o.AdminPort < 0 || o.AdminPort > 65535 {
		return nil, fmt.Errorf("invalid --admin-port %d", o.AdminPort)
	}
	if o.AdminPort > 0 {
		// The admin server listens on loopback, which every container of the Pod shares:
		// only the proxy UID (its exec probes included) may reach it.
		f := func(args ...string) Cmd { return Cmd{Tool: "iptables", Args: append([]string{"-w", "5"}, args...)} }
		admin := strconv.Itoa(o.AdminPort)
		cmds = append(cmds,
			Cmd{Tool: "iptables", Args: []string{"-w", "5", "-N", AdminChain}, Check: []string{"-w", "5", "-L", AdminChain, "-n"}},
			f("-F", AdminChain),
			f("-A", AdminChain, "-m", "owner", "--uid-owner", uid, "-j", "RETURN"),
			f("-A", AdminChain, "-p", "tcp", "--syn", "-j", "REJECT", "--reject-with", "tcp-reset"),
			Cmd{Tool: "iptables", Args: []string{"-w", "5", "-A", "OUTPUT", "-p", "tcp", "-d", "127.0.0.0/8", "--dport", admin, "-j", AdminChain},
				Check: []string{"-w", "5", "-C", "OUTPUT", "-p", "tcp", "-d", "127.0.0.0/8", "--dport", admin, "-j", AdminChain}},
		)
	}
	switch o.IPv6 {
	case "", "reject":
		if !haveIP6 {
			break
		}
		f6 := func(args ...string) Cmd { return Cmd{Tool: "ip6tables", Args: append([]string{"-w", "5"}, args...)} }
		cmds = append(cmds,
			Cmd{Tool: "ip6tables", Args: []string{"-w", "5", "-N", Filter6Chain}, Check: []string{"-w", "5", "-L", Filter6Chain, "-n"}},
			f6("-F", Filter6Chain),
			f6("-A", Filter6Chain, "-m", "owner", "--uid-owner", uid, "-j", "RETURN"),
			f6("-A", Filter6Chain, "-o", "lo", "-j", "RETURN"),
		)
		if o.DNSAllow {
			cmds = append(cmds, f6("-A", Filter6Chain, "-p", "tcp", "--dport", "53", "-j", "RETURN"))
		}
		cmds = append(cmds,
			// --syn: only new outbound connections; replies of inbound ones (the executor
			// answering the runtime over IPv6) pass.
			f6("-A", Filter6Chain, "-p", "tcp", "--syn", "-j", "REJECT", "--reject-with", "tcp-reset"),
			Cmd{Tool: "ip6tables", Args: []string{"-w", "5", "-A", "OUTPUT", "-p", "tcp", "-j", Filter6Chain},
				Check: []string{"-w", "5", "-C", "OUTPUT", "-p", "tcp", "-j", Filter6Chain}},
		)
	case "off":
	default:
		return nil, fmt.Errorf("--ipv6 must be reject or off, got %q", o.IPv6)
	}
	return cmds, nil
}

// Runner executes one command and returns combined output.
type Runner func(tool string, args []string) ([]byte, error)

// ExecRunner runs the real binaries.
func ExecRunner(tool string, args []string) ([]byte, error) {
	var out bytes.Buffer
	cmd := exec.Command(tool, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// Apply runs the plan, printing each command; the first failure is returned
// with the tool's own message.
func Apply(cmds []Cmd, run Runner, log func(string)) error {
	for _, c := range cmds {
		if c.Check != nil {
			if _, err := run(c.Tool, c.Check); err == nil {
				log("exists: " + c.String())
				continue
			}
		}
		log("run: " + c.String())
		if out, err := run(c.Tool, c.Args); err != nil {
			msg := strings.TrimSpace(string(out))
			if errors.Is(err, exec.ErrNotFound) {
				msg = c.Tool + " is not installed in this image"
			}
			return fmt.Errorf("%s failed: %v: %s (needs root with NET_ADMIN and NET_RAW)", c, err, msg)
		}
	}
	return nil
}
