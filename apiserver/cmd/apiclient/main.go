// Command apiclient talks to Ballast's host API:
//
//	apiclient [global flags] get [PREFIX]                 e.g. get settings.motd, get os
//	apiclient [global flags] set KEY=VALUE ...            e.g. set motd=hi network.hostname=node-1
//	apiclient [global flags] set --json '{"motd":"hi"}'
//	apiclient [global flags] apply -f FILE|-              TOML or JSON, with a [settings] table
//	apiclient [global flags] raw -m METHOD -u URI [-d DATA]
//	apiclient [global flags] logs [-f] [SERVICE]
//	apiclient [global flags] network [--json]
//	apiclient [global flags] reboot
//
// Global flags: --socket PATH (the local API, default /run/api.sock), or --endpoint
// https://host:port with --pki DIR (ca.pem, client.pem, client-key.pem) for the remote API.
//
// set and apply stage the change, then commit and apply it. Failures exit 1 with the server's
// message; usage errors exit 2.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/apiserver/userdata"
)

const usage = `usage: apiclient [--socket PATH | --endpoint https://HOST:PORT --pki DIR] COMMAND
  get [PREFIX]                 print settings and OS info, or the part under PREFIX (settings.motd, os, network)
  set KEY=VALUE ...            change settings (keys like motd, network.hostname) and apply them
  set --json JSON              the same, from a JSON object of settings keys
  apply -f FILE|-              apply a settings document: TOML or JSON with a [settings] table
  raw -m METHOD -u URI [-d DATA]   send one request and print the answer
  logs [-f] [SERVICE]          print a service's log (-f: keep following); without SERVICE, list them
  network [--json]             the network's live state: addresses, routes, leases, DNS, host name
  reboot                       reboot the host
`

// maxApply bounds an apply document, like the API bounds a request body.
const maxApply = 1 << 20

// errUsage marks errors in the command line, which exit 2 like flag's own.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "apiclient: %v\n%s", err, usage)
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "apiclient: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, out io.Writer) error {
	global := flag.NewFlagSet("apiclient", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	socket := global.String("socket", client.DefaultSocket, "API socket")
	endpoint := global.String("endpoint", "", "remote API, https://host:port")
	pkiDir := global.String("pki", "", "directory with ca.pem, client.pem and client-key.pem for --endpoint")
	if err := global.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if global.NArg() == 0 {
		return fmt.Errorf("%w: no command", errUsage)
	}
	c, err := newClient(*socket, *endpoint, *pkiDir)
	if err != nil {
		return err
	}
	defer c.Close()
	cmd, rest := global.Arg(0), global.Args()[1:]
	switch cmd {
	case "get":
		if len(rest) > 1 {
			return fmt.Errorf("%w: get takes at most one prefix", errUsage)
		}
		prefix := ""
		if len(rest) == 1 {
			prefix = rest[0]
		}
		v, err := c.Get(ctx, prefix)
		if err != nil {
			return err
		}
		return printJSON(out, v)
	case "set":
		return set(ctx, c, rest)
	case "apply":
		return apply(ctx, c, rest, stdin, out)
	case "raw":
		return raw(ctx, c, rest, out)
	case "logs":
		return logs(ctx, c, rest, out)
	case "network":
		return network(ctx, c, rest, out)
	case "reboot":
		if len(rest) != 0 {
			return fmt.Errorf("%w: reboot takes no arguments", errUsage)
		}
		return c.Reboot(ctx)
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

func newClient(socket, endpoint, pkiDir string) (*client.Client, error) {
	if endpoint == "" {
		if pkiDir != "" {
			return nil, fmt.Errorf("%w: --pki goes with --endpoint", errUsage)
		}
		return client.New(socket), nil
	}
	if pkiDir == "" {
		return nil, fmt.Errorf("%w: --endpoint needs --pki DIR: the remote API only serves clients with a certificate", errUsage)
	}
	cfg, err := client.LoadPKI(pkiDir)
	if err != nil {
		return nil, err
	}
	return client.NewRemote(endpoint, cfg)
}

func set(ctx context.Context, c *client.Client, args []string) error {
	fs := flag.NewFlagSet("set", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	js := fs.String("json", "", "JSON object of settings keys")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: set: %v", errUsage, err)
	}
	if *js != "" {
		if fs.NArg() != 0 {
			return fmt.Errorf("%w: set takes --json or KEY=VALUE pairs, not both", errUsage)
		}
		if err := c.Patch(ctx, []byte(*js)); err != nil {
			return err
		}
		_, err := c.CommitAndApply(ctx)
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: set needs KEY=VALUE", errUsage)
	}
	_, err := c.Set(ctx, fs.Args())
	return err
}

// apply reads a settings document (user data's format) and applies it whole. It is checked here
// first, so that a mistake is reported with its line.
func apply(ctx context.Context, c *client.Client, args []string, stdin io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("f", "", "TOML or JSON settings document; - for standard input")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: apply: %v", errUsage, err)
	}
	if *file == "" || fs.NArg() != 0 {
		return fmt.Errorf("%w: apply needs -f FILE or -f -", errUsage)
	}
	var r io.Reader = stdin
	name := "standard input"
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		r, name = f, *file
	}
	data, err := io.ReadAll(io.LimitReader(r, maxApply+1))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	s, err := userdata.ParseLimit(name, data, maxApply)
	if err != nil {
		return err
	}
	res, err := c.Apply(ctx, s)
	if err != nil {
		return err
	}
	return printJSON(out, res)
}

func raw(ctx context.Context, c *client.Client, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("raw", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	method := fs.String("m", "GET", "HTTP method")
	uri := fs.String("u", "", "request URI, e.g. /settings")
	data := fs.String("d", "", "request body")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: raw: %v", errUsage, err)
	}
	if *uri == "" || fs.NArg() != 0 {
		return fmt.Errorf("%w: raw needs -u URI", errUsage)
	}
	var body []byte
	if *data != "" {
		body = []byte(*data)
	}
	b, err := c.Do(ctx, *method, *uri, body)
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}

func logs(ctx context.Context, c *client.Client, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	follow := fs.Bool("f", false, "keep printing what the service writes")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: logs: %v", errUsage, err)
	}
	switch fs.NArg() {
	case 0:
		if *follow {
			return fmt.Errorf("%w: logs -f needs a service", errUsage)
		}
		b, err := c.Do(ctx, "GET", "/logs", nil)
		if err != nil {
			return err
		}
		var list struct{ Services []string }
		if err := json.Unmarshal(b, &list); err != nil {
			return fmt.Errorf("GET /logs: %w", err)
		}
		for _, s := range list.Services {
			fmt.Fprintln(out, s)
		}
		return nil
	case 1:
	default:
		return fmt.Errorf("%w: logs takes one service", errUsage)
	}
	rc, err := c.Logs(ctx, fs.Arg(0), *follow)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(out, rc)
	if ctx.Err() != nil {
		return nil // interrupted while following: the normal way out
	}
	return err
}

func printJSON(out io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = out.Write(append(b, '\n'))
	return err
}
