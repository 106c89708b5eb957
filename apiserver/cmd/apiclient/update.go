package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/client"
)

// update runs "update status" or an update action, and prints the status for a person or, with
// --json, as the API gave it.
func update(ctx context.Context, c *client.Client, args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: update needs status, %s", errUsage, strings.Join(apitypes.UpdateActions(), ", "))
	}
	what := args[0]
	fs := flag.NewFlagSet("update "+what, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print the API's answer")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: update %s: %v", errUsage, what, err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: update %s takes no arguments", errUsage, what)
	}
	var st apitypes.UpdateStatus
	var err error
	switch {
	case what == "status":
		st, err = c.UpdateStatus(ctx)
	case slices.Contains(apitypes.UpdateActions(), what):
		st, err = c.UpdateAction(ctx, what)
	default:
		return fmt.Errorf("%w: update: unknown %q; want status, %s", errUsage, what, strings.Join(apitypes.UpdateActions(), ", "))
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(out, st)
	}
	return printUpdateStatus(out, st)
}

func printUpdateStatus(w io.Writer, st apitypes.UpdateStatus) error {
	stamp := func(t time.Time) string { return t.Format(time.RFC3339) }
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-11s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	line("state", "%s", st.State)
	r := st.Running
	running := fmt.Sprintf("%s (slot %s", orDash(r.Version), orDash(string(r.Slot)))
	if r.Entry != "" {
		running += ", " + r.Entry
	}
	if r.OnTrial {
		running += ", on trial"
	}
	line("running", "%s)", running)
	line("available", "%s", orNone(st.Available))
	if ch := st.Chosen; ch != nil {
		s := ch.Version
		if !ch.WaveOpensAt.IsZero() {
			s += " (wave opens " + stamp(ch.WaveOpensAt) + ")"
		}
		line("chosen", "%s", s)
		if ch.Notes != "" {
			line("notes", "%s", strings.ReplaceAll(strings.TrimSpace(ch.Notes), "\n", "\n"+strings.Repeat(" ", 12)))
		}
	}
	if s := st.Staged; s != nil {
		line("staged", "%s (slot %s)", s.Version, s.Slot)
	}
	if a := st.Activated; a != nil {
		line("activated", "%s (slot %s): the next boot, on trial", a.Version, a.Slot)
	}
	if a := st.LastAttempt; a != nil {
		s := a.Action
		if a.Version != "" {
			s += " " + a.Version
		}
		if !a.Time.IsZero() {
			s += " at " + stamp(a.Time)
		}
		if a.Error != "" {
			s += ": failed: " + a.Error
		} else {
			s += ": ok"
		}
		line("last", "%s", s)
	}
	if rb := st.Rollback; rb != nil {
		line("rollback", "%s (slot %s) at %s: %s", rb.Version, rb.Slot, stamp(rb.Time), rb.Reason)
	}
	if st.BytesDownloaded > 0 {
		line("downloaded", "%d bytes", st.BytesDownloaded)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
