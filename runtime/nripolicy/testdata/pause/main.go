// Command pause waits for SIGTERM or SIGINT: the process of the CRI test's image, both as the
// pod sandbox and as its containers.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
