// Command etcd is etcd's own server main, built at the version that
// k8s.io/kubernetes pins, so that the API server and its store always match.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
