// Command timesync is the time service: it keeps the clock on the NTP servers the apiserver renders
// into contract.TimeConfig from settings.ntp, and writes its state to contract.TimeState.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/timesync"
)

func main() {
	config := flag.String("config", contract.TimeConfig, "the servers, one \"server <host>\" line each")
	state := flag.String("state", contract.TimeState, "where the state is written for GET /time")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "timesync: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	servers, err := timesync.ReadConfig(*config)
	if err != nil {
		// The apiserver renders the file, so this is a bug; restarting would not fix it, and the
		// state tells the operator what is wrong.
		log.Error("reading the configuration", "err", err)
		st := contract.TimeStatus{State: contract.TimeError, Error: err.Error(), Servers: []string{}, Updated: time.Now()}
		if err := timesync.WriteState(*state, st); err != nil {
			log.Error("writing the state", "err", err)
		}
		<-ctx.Done()
		return
	}
	timesync.New(timesync.Config{Servers: servers, StatePath: *state, Log: log}).Run(ctx)
}
