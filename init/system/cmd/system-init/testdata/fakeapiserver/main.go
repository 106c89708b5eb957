// Command fakeapiserver stands in for the apiserver in the system init's namespace test: it
// takes the real flags (with the real defaults), waits for the boot modules, renders /etc/motd, answers GET /os on the socket, and leaves an orphan
// behind for PID 1 to reap.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/marker"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "orphan":
			time.Sleep(200 * time.Millisecond)
			return
		case "spawn":
			// Start the orphan and leave it: its parent is gone at once, so it goes to PID 1.
			if _, err := os.StartProcess("/proc/self/exe", []string{"fakeapiserver", "orphan"}, &os.ProcAttr{}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			return
		}
	}
	sock := flag.String("socket", contract.APISocket, "")
	flag.String("datastore", "", "")
	flag.String("etc", "", "")
	flag.String("os-release", "", "")
	bootModules := flag.String("boot-modules", "", "")
	flag.Parse()

	// As the real one does for a seed volume: it waits for the boot modules, which the system
	// init must announce.
	if *bootModules != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := marker.Wait(ctx, *bootModules)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}

	p, err := os.StartProcess("/proc/self/exe", []string{"fakeapiserver", "spawn"}, &os.ProcAttr{})
	if err == nil {
		_, err = p.Wait()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}

	time.Sleep(300 * time.Millisecond) // not ready at once
	// Like the real one, it renders the motd before it answers.
	if err := os.WriteFile("/etc/motd", []byte("Welcome to the namespace test\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Remove(*sock)
	l, err := net.Listen("unix", *sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.HandleFunc("GET /os", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"id":"ballast"}`) })
	fmt.Fprintln(os.Stderr, http.Serve(l, nil))
	os.Exit(1)
}
