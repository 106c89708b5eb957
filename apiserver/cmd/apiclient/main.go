// Command apiclient talks to Ballast's host API:
//
//	apiclient [global flags] get [PREFIX]                 e.g. get settings.motd, get os
//	apiclient [global flags] set KEY=VALUE ...            e.g. set motd=hi network.hostname=node-1
//	apiclient [global flags] set --json '{"motd":"hi"}'
//	apiclient [global flags] apply -f FILE|-              TOML or JSON, with a [settings] table
//	apiclient [global flags] raw -m METHOD -u URI [-d DATA]
//	apiclient [global flags] logs [-f] [-n LINES] [SOURCE]  kernel, init or a service
//	apiclient [global flags] logs --bundle > host.tar.gz
//	apiclient [global flags] time [--json]
//	apiclient [global flags] network [--json]
//	apiclient [global flags] update status|check|apply|activate|cancel [--json]
//	apiclient [global flags] reboot
//	apiclient [global flags] report [--json] [hardening]
//	apiclient [global flags] report boot [--acknowledge-recovery-key]
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
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/apiserver/userdata"
)

const usage = `usage: apiclient [--socket PATH | --endpoint https://HOST:PORT --pki DIR] COMMAND
  get [PREFIX]                 print settings and OS info, or the part under PREFIX (settings.motd, os,
                               network, updates)
  set KEY=VALUE ...            change settings (keys like motd, network.hostname) and apply them
  set --json JSON              the same, from a JSON object of settings keys
  apply -f FILE|-              apply a settings document: TOML or JSON with a [settings] table
  raw -m METHOD -u URI [-d DATA]   send one request and print the answer
  logs [-f] [-n N] [SOURCE]    print a log: kernel, init or a service, earlier boots first
                               (-f: keep following; -n: the last N lines); without SOURCE, list them
  logs --bundle                write a support bundle (gzip'd tar: logs, redacted settings, state)
  time [--json]                print the time service's state and the clock
  network [--json]             the network's live state: addresses, routes, leases, DNS, host name
  services [--json]            the system services and the containers, with their state
  exec NAME -- CMD [ARG...]    run a command in a running host container (a terminal when
                               stdin is one); exits with the command's status
  update status [--json]       the update agent's state: the version running, the versions
                               available, the one chosen, staged or activated, the last attempt
  update check|apply|activate|cancel [--json]
                               check: pick the newest version this host may take now (waves,
                               version lock); apply: download it and write the other slot (waits
                               until done); activate: boot it next, on trial; cancel: undo a
                               staged or activated update. Prints the state each leaves.
  reboot                       reboot the host
  report [--json] [hardening]  the hardening report: each check with what the host shows; exits 1
                               when a check fails (expected failures, such as a dev image's
                               shell, are listed with their reason but do not count)
  report boot                  the boot report, as JSON: Secure Boot, lockdown, the TPM's
                               measurements, how /local was opened, and /local's recovery key
                               until it is acknowledged
  report boot --acknowledge-recovery-key
                               say the recovery key is kept safe: the host deletes its copy and
                               never shows it again
`

// maxApply bounds an apply document, like the API bounds a request body.
const maxApply = 1 << 20

// errUsage marks errors in the command line, which exit 2 like flag's own.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	var code exitCode
	switch {
	case errors.As(err, &code):
		os.Exit(int(code))
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
		return set(ctx, c, rest, out)
	case "apply":
		return apply(ctx, c, rest, stdin, out)
	case "raw":
		return raw(ctx, c, rest, out)
	case "logs":
		return logs(ctx, c, rest, out)
	case "time":
		return showTime(ctx, c, rest, out)
	case "report":
		return hardeningReport(ctx, c, rest, out)
	case "network":
		return network(ctx, c, rest, out)
	case "services":
		return services(ctx, c, rest, out)
	case "exec":
		return execCmd(ctx, c, rest, stdin, out)
	case "update":
		return update(ctx, c, rest, out)
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

// set prints what the running kernel leaves to the next boot, so nobody takes a stored setting for
// one in effect.
func set(ctx context.Context, c *client.Client, args []string, out io.Writer) error {
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
	} else {
		if fs.NArg() == 0 {
			return fmt.Errorf("%w: set needs KEY=VALUE", errUsage)
		}
		patch, err := client.PatchFromPairs(fs.Args())
		if err != nil {
			return err
		}
		if err := c.Patch(ctx, patch); err != nil {
			return err
		}
	}
	res, err := c.CommitAndApplyTx(ctx, "")
	for _, n := range res.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
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
	follow := fs.Bool("f", false, "keep printing what is written")
	lines := fs.Int("n", 0, "only the last N lines")
	bundle := fs.Bool("bundle", false, "write a support bundle to standard output")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: logs: %v", errUsage, err)
	}
	if *lines < 0 {
		return fmt.Errorf("%w: logs -n wants a number of lines", errUsage)
	}
	if *bundle {
		if *follow || *lines != 0 || fs.NArg() != 0 {
			return fmt.Errorf("%w: logs --bundle takes nothing else", errUsage)
		}
		rc, err := c.Bundle(ctx)
		if err != nil {
			return err
		}
		defer rc.Close()
		if _, err := io.Copy(out, rc); err != nil {
			return fmt.Errorf("support bundle: %w", err)
		}
		return nil
	}
	switch fs.NArg() {
	case 0:
		if *follow || *lines != 0 {
			return fmt.Errorf("%w: logs -f and -n need a source", errUsage)
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
		return fmt.Errorf("%w: logs takes one source", errUsage)
	}
	rc, err := c.LogTail(ctx, fs.Arg(0), *lines, *follow)
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

// showTime prints GET /time for a person, or as it came with --json.
func showTime(ctx context.Context, c *client.Client, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("time", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print the API's answer")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: time: %v", errUsage, err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: time takes no arguments", errUsage)
	}
	t, err := c.Time(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(out, t)
	}
	stamp := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	line := func(label, format string, args ...any) {
		fmt.Fprintf(out, "%-11s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	line("state", "%s", t.State)
	if t.Error != "" {
		line("error", "%s", t.Error)
	}
	if len(t.Servers) > 0 {
		line("servers", "%s", strings.Join(t.Servers, ", "))
	}
	if s := t.LastSync; s != nil {
		line("server", "%s (%s), stratum %d, reference %s", s.Server, s.Address, s.Stratum, s.ReferenceID)
		line("offset", "%+.6f s (delay %.6f s, jitter %.6f s, root distance %.6f s)", s.OffsetSeconds, s.DelaySeconds, s.JitterSeconds, s.RootDistanceSeconds)
		line("last sync", "%s", stamp(s.Time))
	}
	if s := t.LastStep; s != nil {
		line("last step", "%+.6f s at %s", s.Seconds, stamp(s.Time))
	}
	if t.PollSeconds > 0 {
		next := ""
		if t.NextPoll != nil {
			next = ", next at " + stamp(*t.NextPoll)
		}
		line("poll", "every %g s%s", t.PollSeconds, next)
	}
	line("clock", "%s", stamp(t.Clock))
	k := t.Kernel
	sync := "not synchronised"
	if k.Synchronised {
		sync = "synchronised"
	}
	line("kernel", "%s (max error %.6f s, estimated error %.6f s, frequency %+.3f ppm)", sync, k.MaxErrorSeconds, k.EstErrorSeconds, k.FrequencyPPM)
	return nil
}

func hardeningReport(ctx context.Context, c *client.Client, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	ack := fs.Bool("acknowledge-recovery-key", false, "boot: the recovery key is kept; delete the host's copy")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: report: %v", errUsage, err)
	}
	name := "hardening"
	if fs.NArg() > 0 {
		// Flags may follow the report's name too: report boot --acknowledge-recovery-key.
		name = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return fmt.Errorf("%w: report: %v", errUsage, err)
		}
		if fs.NArg() != 0 {
			return fmt.Errorf("%w: report takes one report's name", errUsage)
		}
	}
	switch {
	case name == "boot":
		return bootReport(ctx, c, *ack, out)
	case name != "hardening":
		return fmt.Errorf("%w: report knows two reports, hardening and boot", errUsage)
	case *ack:
		return fmt.Errorf("%w: --acknowledge-recovery-key goes with report boot", errUsage)
	}
	rep, err := c.Hardening(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := printJSON(out, rep); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		for _, ch := range rep.Checks {
			line := ch.Observed
			if ch.Reason != "" {
				line += " — " + ch.Reason
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(ch.Status), ch.ID, line)
		}
		tw.Flush()
		fmt.Fprintf(out, "%d passed, %d failed, %d expected failures\n", rep.Passed, rep.Failed, rep.ExpectedFail)
	}
	if rep.Failed > 0 {
		return fmt.Errorf("hardening report: %d checks failed", rep.Failed)
	}
	return nil
}

// bootReport prints the boot report, or acknowledges the recovery key it shows.
func bootReport(ctx context.Context, c *client.Client, ack bool, out io.Writer) error {
	if ack {
		if err := c.AcknowledgeRecoveryKey(ctx); err != nil {
			return err
		}
		_, err := fmt.Fprintln(out, "recovery key acknowledged: the host deleted its copy and will not show it again")
		return err
	}
	rep, err := c.BootReport(ctx)
	if err != nil {
		return err
	}
	return printJSON(out, rep)
}

func printJSON(out io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = out.Write(append(b, '\n'))
	return err
}
