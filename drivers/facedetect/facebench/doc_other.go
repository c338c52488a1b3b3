//go:build !opencv

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "facebench: no detector in this build (build with -tags opencv)")
	os.Exit(1)
}
