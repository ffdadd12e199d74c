// Command berth-auth-proxy is the sandbox Pod's egress proxy: it injects
// credentials into allowed requests so secrets never enter the sandbox.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/berth-dev/berth/auth_proxy/internal/audit"
	"github.com/berth-dev/berth/auth_proxy/internal/certs"
	"github.com/berth-dev/berth/auth_proxy/internal/config"
	"github.com/berth-dev/berth/auth_proxy/internal/inject"
	"github.com/berth-dev/berth/auth_proxy/internal/proxy"
	"github.com/berth-dev/berth/auth_proxy/internal/secrets"
	"github.com/berth-dev/berth/auth_proxy/internal/usertoken"
)

func main() {
	cfgPath := flag.String("config", "/berth/proxy/config.json", "path of config.json")
	probe := flag.String("probe", "", "healthz or readyz: query the running proxy's admin server and exit 0 when healthy (for exec probes; the admin port is loopback-only and, with berth-netinit, proxy-UID-only)")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if *probe != "" {
		if err := runProbe(*cfgPath, *probe); err != nil {
			fmt.Fprintln(os.Stderr, "berth-auth-proxy probe:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*cfgPath, log); err != nil {
		fmt.Fprintln(os.Stderr, "berth-auth-proxy:", err)
		os.Exit(1)
	}
}

func runProbe(cfgPath, what string) error {
	if what != "healthz" && what != "readyz" {
		return fmt.Errorf("--probe must be healthz or readyz, got %q", what)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://" + cfg.AdminListen + "/" + what)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", what, resp.StatusCode, body)
	}
	return nil
}

func run(cfgPath string, log *slog.Logger) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	ca, err := certs.Load(cfg.CACertFile, cfg.CAKeyFile)
	if err != nil {
		return err
	}
	roots, err := certs.ReadPool(cfg.UpstreamCAFile)
	if err != nil {
		return fmt.Errorf("upstreamCAFile: %w", err)
	}
	store := secrets.NewStore(proxy.SecretFiles(cfg))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go store.Watch(ctx, time.Duration(cfg.SecretPollSeconds*float64(time.Second)))

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	admin, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		return err
	}
	var source inject.Secrets = store
	if cfg.AgentAuth != nil {
		// User-scoped OAuth tokens come from the runtime, cached until shortly before expiry.
		source = usertoken.New(*cfg.AgentAuth, store, &http.Client{Timeout: 10 * time.Second}, 30*time.Second)
	}
	p := proxy.New(proxy.Options{Config: cfg, CA: ca, Secrets: source, Audit: audit.New(os.Stdout), UpstreamRoots: roots, Log: log})
	adminSrv := &http.Server{Handler: proxy.AdminHandler(cfg, store), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = adminSrv.Serve(admin) }()
	log.Info("listening", "proxy", ln.Addr().String(), "admin", admin.Addr().String(), "rules", len(cfg.Rules))
	errc := make(chan error, 1)
	go func() { errc <- p.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
	}
	_ = ln.Close()
	_ = adminSrv.Close()
	p.Close()
	return nil
}
