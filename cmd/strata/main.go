// Command strata is the Strata command line: offline pack and profile tools,
// one-shot deploys, the local management plane and the manager.
package main

import (
	"os"

	"strata.dev/strata/internal/cli"
)

func main() {
	os.Exit(cli.Execute(os.Args[1:]))
}
