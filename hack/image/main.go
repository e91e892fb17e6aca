// Command image builds the container image of the Strata manager without
// a container engine: a static linux build of strata, Strata's own packs
// under /packs and the build machine's CA bundle, on an empty base, run as
// a non-root user. It writes a tarball (`docker load`-able) and/or pushes
// the image to a registry.
//
//	go run ./hack/image [-o bin/strata-image.tar] [-push REGISTRY/REPO:TAG] [-plain-http]
package main

import (
	"flag"
	"fmt"
	"os"

	"strata.dev/strata/hack/image/build"
)

func main() {
	var (
		out, push, tag, version string
		plainHTTP               bool
	)
	flag.StringVar(&out, "o", "bin/strata-image.tar", "tarball to write; empty writes none")
	flag.StringVar(&push, "push", "", "reference to push the image to, e.g. registry.example/strata:v0.1.0")
	flag.StringVar(&tag, "tag", "strata:v0.1.0-dev", "name of the image in the tarball (the Helm chart's default)")
	flag.StringVar(&version, "version", "v0.1.0-dev", "Strata version stamped into the binary")
	flag.BoolVar(&plainHTTP, "plain-http", false, "push over HTTP (a registry on loopback)")
	flag.Parse()
	img, err := build.Image(build.Options{Root: ".", Version: version})
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	if out != "" {
		if err := build.WriteTarball(img, tag, out); err != nil {
			fmt.Fprintln(os.Stderr, "image:", err)
			os.Exit(1)
		}
		fmt.Printf("wrote %s (%s): docker load -i %s\n", out, tag, out)
	}
	if push != "" {
		if err := build.Push(img, push, plainHTTP); err != nil {
			fmt.Fprintln(os.Stderr, "image:", err)
			os.Exit(1)
		}
		fmt.Printf("pushed %s\n", push)
	}
}
