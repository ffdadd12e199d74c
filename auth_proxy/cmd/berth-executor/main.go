// Command berth-executor runs inside the sandbox container: `install` copies
// the binary into a shared volume (from the agent image's init container), and
// `serve` exposes the executor API, optionally running the user's command as a child.
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
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-dev/berth/auth_proxy/internal/executor"
)

const usage = `usage:
  berth-executor install --to DIR
  berth-executor serve [--addr :8790] [--token-hash-file FILE] [-- COMMAND ARGS...]`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "install":
		err = install(os.Args[2:])
	case "serve":
		err = serve(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-executor:", err)
		os.Exit(1)
	}
}

// install copies this executable to DIR/berth-executor atomically.
func install(args []string) error {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	to := fs.String("to", "", "directory to copy the executor into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("install: --to DIR is required")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src, err := os.Open(self)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := os.MkdirAll(*to, 0o755); err != nil {
		return err
	}
	dst := filepath.Join(*to, "berth-executor")
	tmp, err := os.CreateTemp(*to, ".berth-executor-*")
	if err != nil {
		return err
	}
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	fmt.Println("berth-executor: installed", dst)
	return nil
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", ":8790", "listen address (the Pod IP; the token guards it)")
	hashFile := fs.String("token-hash-file", "/berth/meta/executor-token-sha256", "file holding hex sha256 of the claim token; empty = refuse all")
	if err := fs.Parse(args); err != nil {
		return err
	}
	child := fs.Args()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: (&executor.Server{TokenHashFile: *hashFile}).Handler(), ReadHeaderTimeout: 30 * time.Second}
	log.Info("executor listening", "addr", ln.Addr().String(), "tokenHashFile", *hashFile)
	var proc *exec.Cmd
	if len(child) > 0 {
		proc = exec.Command(child[0], child[1:]...)
		proc.Stdin, proc.Stdout, proc.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := proc.Start(); err != nil {
			log.Error("user command did not start; executor keeps serving", "command", child, "error", err.Error())
			proc = nil
		} else {
			go func() {
				err := proc.Wait()
				log.Info("user command exited; executor keeps serving", "command", child, "exitCode", proc.ProcessState.ExitCode(), "error", fmt.Sprint(err))
			}()
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	if proc != nil && proc.ProcessState == nil {
		_ = proc.Process.Signal(syscall.SIGTERM)
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
