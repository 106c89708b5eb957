// Command apiclient talks to Ballast's host API:
//
//	apiclient [--socket PATH] get [PREFIX]            e.g. get settings.motd, get os
//	apiclient [--socket PATH] set KEY=VALUE ...       e.g. set motd=hi network.hostname=node-1
//	apiclient [--socket PATH] set --json '{"motd":"hi"}'
//	apiclient [--socket PATH] raw -m METHOD -u URI [-d DATA]
//
// set stages the change and commits and applies it. Failures exit 1 with the server's message.
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
)

const usage = `usage: apiclient [--socket PATH] COMMAND
  get [PREFIX]                 print settings and OS info, or the part under PREFIX (settings.motd, os)
  set KEY=VALUE ...            change settings (keys like motd, network.hostname) and apply them
  set --json JSON              the same, from a JSON object of settings keys
  raw -m METHOD -u URI [-d DATA]   send one request and print the answer
`

// errUsage marks errors in the command line, which exit 2 like flag's own.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "apiclient: %v\n%s", err, usage)
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "apiclient: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	global := flag.NewFlagSet("apiclient", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	socket := global.String("socket", client.DefaultSocket, "API socket")
	if err := global.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if global.NArg() == 0 {
		return fmt.Errorf("%w: no command", errUsage)
	}
	c := client.New(*socket)
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
		fs := flag.NewFlagSet("set", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		js := fs.String("json", "", "JSON object of settings keys")
		if err := fs.Parse(rest); err != nil {
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
	case "raw":
		fs := flag.NewFlagSet("raw", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		method := fs.String("m", "GET", "HTTP method")
		uri := fs.String("u", "", "request URI, e.g. /settings")
		data := fs.String("d", "", "request body")
		if err := fs.Parse(rest); err != nil {
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
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

func printJSON(out io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = out.Write(append(b, '\n'))
	return err
}
