package main

import (
	"fmt"
	"io"

	"github.com/sentinel-edge/sentinel/internal/buildinfo"
)

func init() { register("version", "print build information", cmdVersion) }

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "version [--json]", stdout, stderr)
	asJSON := fs.Bool("json", false, "print as JSON")
	if code := parse(fs, args, stdout); code >= 0 {
		return code
	}
	bi := buildinfo.Get()
	if *asJSON {
		fmt.Fprintf(stdout, `{"version":%q,"commit":%q,"build_time":%q,"go_version":%q,"os":%q,"arch":%q}`+"\n",
			bi.Version, bi.Commit, bi.BuildTime, bi.GoVersion, bi.OS, bi.Arch)
		return exitOK
	}
	fmt.Fprintln(stdout, bi.String())
	return exitOK
}
