// Command etcd is the stock etcd server (go.etcd.io/etcd/server/v3), built for
// the signalbox e2e test stack at the version Kubernetes pins in ../../go.mod.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
