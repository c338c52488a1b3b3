package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped by the Makefile.
var (
	Version   = "dev"
	Commit    = ""
	BuildTime = ""
)

// Info is the build's identity.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildTime string `json:"build_time"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// Get returns the build's identity.
func Get() Info {
	i := Info{Version: Version, Commit: Commit, BuildTime: BuildTime, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && i.Commit == "":
				i.Commit = s.Value
			case s.Key == "vcs.time" && i.BuildTime == "":
				i.BuildTime = s.Value
			}
		}
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	if i.BuildTime == "" {
		i.BuildTime = "unknown"
	}
	return i
}

func (i Info) String() string {
	return fmt.Sprintf("sentinel %s (commit %s, built %s, %s, %s/%s)", i.Version, i.Commit, i.BuildTime, i.GoVersion, i.OS, i.Arch)
}
