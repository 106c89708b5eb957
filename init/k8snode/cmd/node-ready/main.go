// Command node-ready is the boot health gate's look at a Kubernetes node: it asks the API server,
// with the kubelet's own credentials, whether this machine's Node is registered and Ready. It
// prints the node's name and exits 0 when it is, prints why not and exits 1 otherwise (2 for a
// usage error). The system init runs it rather than linking it in: TLS would double the size of
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
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "node-ready: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	node, err := k8snode.Checker{Kubeconfig: *kubeconfig, Root: *root}.Check(context.Background())
	if err != nil {
		// One line: the init records it as the boot's reason.
		fmt.Println(strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
	fmt.Println(node)
}
