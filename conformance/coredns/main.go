// Command coredns is CoreDNS (github.com/coredns/coredns, the version of the image the
// conformance suite's base manifests run) with only the plugins the suite's Corefile uses
// (forward, log, errors, whoami) plus health and ready: CoreDNS's documented way of
// building with a chosen plugin set, a small fraction of the full build. The pod runner
// runs it for the suite's coredns pod (UDPRoute backend), whose Ready the suite's setup
// waits for.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/whoami"
)

func main() {
	coremain.Run()
}
