// Command node-ready is the boot health gate's look at a Kubernetes node: it asks the API server,
// with the kubelet's own credentials, whether this machine's Node is registered and Ready. It
// prints the node's name and exits 0 when it is, prints why not and exits 1 otherwise (2 for a
// usage error). With --pods it asks instead whether every pod bound to the node has ended as the
// API server sees it (the shutdown's wait for the kubelet's last reports): it prints how many
// pods there are and exits 0 when they have, prints those that have not and exits 1 otherwise.
// The system init runs it rather than linking it in: TLS would double the size of
// PID 1 on every image, and only Kubernetes nodes install this program.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/k8snode"
)

func main() {
	kubeconfig := flag.String("kubeconfig", contract.KubeletKubeconfig, "the kubelet's kubeconfig, written by its TLS bootstrapping")
	root := flag.String("root", "/", "where the machine's files are (tests)")
	pods := flag.Bool("pods", false, "whether the node's pods have all ended, instead of whether it is Ready")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "node-ready: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	c := k8snode.Checker{Kubeconfig: *kubeconfig, Root: *root}
	if *pods {
		node, left, err := c.Unsettled(context.Background())
		switch {
		case err != nil:
			fmt.Println(strings.ReplaceAll(err.Error(), "\n", " "))
			os.Exit(1)
		case len(left) > 0:
			fmt.Printf("node %s: %d pods not ended: %s\n", node, len(left), strings.Join(left, ", "))
			os.Exit(1)
		}
		fmt.Printf("node %s: every pod ended\n", node)
		return
	}
	node, err := c.Check(context.Background())
	if err != nil {
		// One line: the init records it as the boot's reason.
		fmt.Println(strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
	fmt.Println(node)
}
