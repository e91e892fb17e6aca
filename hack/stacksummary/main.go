// Command stacksummary prints a one-line-per-layer table of the stacks that
// `strata profile render -o json` writes to its standard input. The demo
// uses it; it needs nothing but Go.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
)

type layer struct {
	Name, Profile, ProfileVersion, Kind, Source, Package, Version, Namespace string
}

type stack struct {
	Cluster           string
	KubernetesVersion string
	Layers            []layer
}

func main() {
	var stacks []stack
	if err := json.NewDecoder(os.Stdin).Decode(&stacks); err != nil {
		fmt.Fprintln(os.Stderr, "stacksummary:", err)
		os.Exit(1)
	}
	for _, s := range stacks {
		fmt.Printf("cluster %s (kubernetes %s)\n", s.Cluster, s.KubernetesVersion)
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  #\tLAYER\tKIND\tSOURCE\tVERSION\tNAMESPACE\tPROFILE")
		for i, l := range s.Layers {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s %s\t%s\t%s\t%s %s\n", i+1, l.Name, l.Kind, l.Source, l.Package, l.Version, l.Namespace, l.Profile, l.ProfileVersion)
		}
		tw.Flush()
	}
}
