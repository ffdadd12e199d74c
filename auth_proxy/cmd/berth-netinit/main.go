// Command berth-netinit is the sandbox Pod's init container: it installs the
// iptables rules that send all outbound TCP (except the proxy's) to the proxy.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"

	"github.com/berth-dev/berth/auth_proxy/internal/netinit"
)

func main() {
	var o netinit.Options
	flag.IntVar(&o.ProxyUID, "proxy-uid", 1337, "UID of the proxy; its traffic is not redirected")
	flag.IntVar(&o.ProxyPort, "proxy-port", 15001, "port the proxy listens on")
	flag.BoolVar(&o.DNSAllow, "dns-allow", false, "do not redirect TCP port 53 (DNS over TCP)")
	flag.IntVar(&o.AdminPort, "admin-port", 15021, "loopback port of the proxy's admin server, reachable only by the proxy UID (0 = leave open)")
	flag.StringVar(&o.IPv6, "ipv6", "reject", "IPv6 TCP of other UIDs: reject (when ip6tables exists) or off")
	dry := flag.Bool("dry-run", false, "print the commands without running them")
	flag.Parse()
	_, err6 := exec.LookPath("ip6tables")
	cmds, err := netinit.Plan(o, err6 == nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-netinit:", err)
		os.Exit(2)
	}
	if *dry {
		for _, c := range cmds {
			fmt.Println(c.String())
		}
		return
	}
	logf := func(s string) { fmt.Println("berth-netinit:", s) }
	if err := netinit.Apply(cmds, netinit.ExecRunner, logf); err != nil {
		fmt.Fprintln(os.Stderr, "berth-netinit:", err)
		os.Exit(1)
	}
	fmt.Printf("berth-netinit: outbound TCP of every UID but %d now goes to 127.0.0.1:%d\n", o.ProxyUID, o.ProxyPort)
}
